"""Which model architectures vLLM can serve, from a bundled copy of vLLM's model registry.

The data file (``portal/data/vllm-architectures.json``) has this shape::

    {
      "source": "<where the list came from>",
      "vllmVersion": "0.33.0",
      "architectures": {"LlamaForCausalLM": {"module": "llama", "class": "LlamaForCausalLM",
                                             "categories": ["text-generation"]}, ...},
      "previouslySupported": {"MllamaForConditionalGeneration": "0.10.2", ...},
      "removed": {"SomeArch": {"removedIn": "0.12.0"}}
    }

``previouslySupported`` mirrors vLLM's ``_PREVIOUSLY_SUPPORTED_MODELS``: the value is the **last**
vLLM release that still supported the architecture (vLLM says "was supported in vLLM until
v<version>"). ``removed`` is optional and ours: use it when the release that dropped an
architecture is known. Both maps may name the same architecture.

A model is supported when one of its ``config.architectures`` strings is a registered name,
compared exactly as vLLM does (the service we replace tested substrings, so
``MyLlamaForCausalLMX`` passed). ``ArchitectureRegistry`` is built from the parsed data, so a
list refreshed from GitHub (``parse_registry_source`` on vLLM's ``registry.py``) plugs in the same way.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

BUNDLED_FILE = "vllm-architectures.json"

# Dict names in registry.py that are aggregates or not category lists.
_SKIPPED_REGISTRY_DICTS = frozenset({"_VLLM_MODELS", "_PREVIOUSLY_SUPPORTED_MODELS"})
_REGISTRY_DICT_RE = re.compile(r"^_([A-Z0-9_]+)_MODELS$")


@dataclass(frozen=True)
class Architecture:
    """One registered architecture name and the vLLM class implementing it."""

    name: str
    module: str
    class_name: str
    categories: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {name, module, className, categories}."""
        return {
            "name": self.name,
            "module": self.module,
            "className": self.class_name,
            "categories": list(self.categories),
        }


@dataclass(frozen=True)
class RemovedArchitecture:
    """An architecture vLLM used to serve: last release with it and/or the release that dropped it."""

    name: str
    last_supported_in: str | None = None
    removed_in: str | None = None

    @property
    def message(self) -> str:
        """Human sentence, e.g. "X was supported until vLLM 0.10.2 and has since been removed"."""
        if self.removed_in and self.last_supported_in:
            return (
                f"{self.name} was supported until vLLM {self.last_supported_in} and removed in vLLM {self.removed_in}"
            )
        if self.removed_in:
            return f"{self.name} was removed in vLLM {self.removed_in}"
        return f"{self.name} was supported until vLLM {self.last_supported_in} and has since been removed"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {name, lastSupportedIn, removedIn, message}."""
        return {
            "name": self.name,
            "lastSupportedIn": self.last_supported_in,
            "removedIn": self.removed_in,
            "message": self.message,
        }


@dataclass(frozen=True)
class RegistrySource:
    """Where an architecture list came from."""

    source: str
    vllm_version: str | None
    note: str | None = None
    fetched_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {source, vllmVersion, note, fetchedAt?}."""
        out: dict[str, Any] = {"source": self.source, "vllmVersion": self.vllm_version, "note": self.note}
        if self.fetched_at is not None:
            out["fetchedAt"] = self.fetched_at
        return out


@dataclass(frozen=True)
class SupportVerdict:
    """Whether vLLM serves a model, judged from its ``config.architectures``."""

    supported: bool
    architectures: tuple[str, ...]
    matched: tuple[Architecture, ...]
    unsupported: tuple[str, ...]
    removed: tuple[RemovedArchitecture, ...]
    categories: tuple[str, ...]
    notes: tuple[str, ...]
    source: RegistrySource

    @property
    def matched_names(self) -> list[str]:
        """Names of the matched architectures, in the model's order."""
        return [a.name for a in self.matched]

    def to_dict(self) -> dict[str, Any]:
        """JSON form with camelCase keys."""
        return {
            "supported": self.supported,
            "architectures": list(self.architectures),
            "matchedArchitectures": self.matched_names,
            "matched": [a.to_dict() for a in self.matched],
            "unsupported": list(self.unsupported),
            "removed": [r.to_dict() for r in self.removed],
            "categories": list(self.categories),
            "notes": list(self.notes),
            "source": self.source.to_dict(),
        }


@dataclass(frozen=True)
class ArchitectureRegistry:
    """An immutable set of architectures (bundled or refreshed) with lookups."""

    architectures: Mapping[str, Architecture]
    removed: Mapping[str, RemovedArchitecture]
    source: RegistrySource
    _by_lower: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_data(
        cls, data: Mapping[str, Any], *, source: str = "bundled", fetched_at: str | None = None
    ) -> ArchitectureRegistry:
        """Build a registry from the JSON data format described in the module docstring."""
        raw_archs = data.get("architectures")
        if not isinstance(raw_archs, Mapping):
            raise ValueError("architecture data: 'architectures' must be an object")
        archs: dict[str, Architecture] = {}
        for name, entry in raw_archs.items():
            if not isinstance(entry, Mapping):
                raise ValueError(f"architecture data: {name!r} must be an object")
            categories = entry.get("categories") or []
            archs[str(name)] = Architecture(
                name=str(name),
                module=str(entry.get("module", "")),
                class_name=str(entry.get("class", name)),
                categories=tuple(str(c) for c in categories),
            )
        removed: dict[str, RemovedArchitecture] = {}
        for name, last in (data.get("previouslySupported") or {}).items():
            removed[str(name)] = RemovedArchitecture(str(name), last_supported_in=str(last))
        for name, info in (data.get("removed") or {}).items():
            removed_in = info.get("removedIn") if isinstance(info, Mapping) else info
            prev = removed.get(str(name))
            removed[str(name)] = RemovedArchitecture(
                str(name),
                last_supported_in=prev.last_supported_in if prev else None,
                removed_in=str(removed_in) if removed_in is not None else None,
            )
        by_lower: dict[str, list[str]] = {}
        for name in archs:
            by_lower.setdefault(name.lower(), []).append(name)
        version = data.get("vllmVersion")
        note = data.get("source")
        return cls(
            architectures=archs,
            removed=removed,
            source=RegistrySource(
                source=source,
                vllm_version=str(version) if version is not None else None,
                note=str(note) if note is not None else None,
                fetched_at=fetched_at,
            ),
            _by_lower={k: tuple(v) for k, v in by_lower.items()},
        )

    def categories(self) -> list[str]:
        """Every category present, sorted."""
        return sorted({c for a in self.architectures.values() for c in a.categories})

    def list_architectures(self, category: str | None = None, search: str | None = None) -> list[Architecture]:
        """Architectures sorted by name, optionally filtered by category and a case-insensitive search."""
        cat = category.strip().lower() if category and category.strip() else None
        needle = search.strip().lower() if search and search.strip() else None
        out = []
        for arch in self.architectures.values():
            if cat is not None and cat not in (c.lower() for c in arch.categories):
                continue
            if needle is not None and not any(needle in s.lower() for s in (arch.name, arch.module, arch.class_name)):
                continue
            out.append(arch)
        return sorted(out, key=lambda a: a.name)

    def lookup(self, name: str) -> Architecture | None:
        """Exact (case-sensitive) match, else a case-insensitive match when it is unique."""
        exact = self.architectures.get(name)
        if exact is not None:
            return exact
        candidates = self._by_lower.get(name.lower(), ())
        return self.architectures[candidates[0]] if len(candidates) == 1 else None

    def check(self, architectures: Iterable[str]) -> SupportVerdict:
        """Judge a model's ``config.architectures`` list (exact names, as vLLM matches them)."""
        given = tuple(a for a in architectures if isinstance(a, str) and a)
        matched: list[Architecture] = []
        unsupported: list[str] = []
        removed: list[RemovedArchitecture] = []
        notes: list[str] = []
        for name in given:
            arch = self.architectures.get(name)
            if arch is not None:
                matched.append(arch)
                continue
            unsupported.append(name)
            gone = self.removed.get(name)
            if gone is not None:
                removed.append(gone)
                notes.append(gone.message)
                continue
            near = self.lookup(name)
            if near is not None:
                notes.append(f"{name} is not registered; vLLM matches names exactly (did you mean {near.name}?)")
        categories = sorted({c for a in matched for c in a.categories})
        if not given:
            notes.append("config.json lists no architectures")
        elif not matched and not removed:
            version = self.source.vllm_version or "this"
            notes.append(
                f"no architecture is registered in vLLM {version}; vLLM may still run the model "
                "through its Transformers backend (--model-impl transformers) if the Transformers "
                "class is compatible"
            )
        return SupportVerdict(
            supported=bool(matched),
            architectures=given,
            matched=tuple(matched),
            unsupported=tuple(unsupported),
            removed=tuple(removed),
            categories=tuple(categories),
            notes=tuple(notes),
            source=self.source,
        )


def load_bundled_data() -> dict[str, Any]:
    """The parsed bundled JSON (a fresh copy each call)."""
    text = resources.files("portal.data").joinpath(BUNDLED_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{BUNDLED_FILE}: top level must be an object")
    return data


@cache
def bundled_registry() -> ArchitectureRegistry:
    """The registry built from the bundled file, loaded once per process."""
    return ArchitectureRegistry.from_data(load_bundled_data(), source="bundled")


def supported_architectures(category: str | None = None, search: str | None = None) -> list[Architecture]:
    """Bundled architectures sorted by name, optionally filtered."""
    return bundled_registry().list_architectures(category=category, search=search)


def lookup_architecture(name: str) -> Architecture | None:
    """Find one bundled architecture by exact name (unique case-insensitive fallback)."""
    return bundled_registry().lookup(name)


def check_support(architectures: Iterable[str]) -> SupportVerdict:
    """Judge a model's ``config.architectures`` against the bundled registry."""
    return bundled_registry().check(architectures)


def registry_source() -> RegistrySource:
    """Where the bundled list came from."""
    return bundled_registry().source


def category_from_dict_name(dict_name: str) -> str | None:
    """``_TEXT_GENERATION_MODELS`` → ``text-generation``; None for names that are not category dicts."""
    if dict_name in _SKIPPED_REGISTRY_DICTS:
        return None
    m = _REGISTRY_DICT_RE.match(dict_name)
    if m is None:
        return None
    return m.group(1).lower().replace("_", "-")


def _str_constant(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def parse_registry_source(python_source: str) -> dict[str, Any]:
    """Extract architectures from vLLM's ``registry.py`` text with ``ast`` (never executed).

    Returns ``{"architectures": {name: {module, class, categories}}, "previouslySupported": {...}}``,
    the data format of the bundled file minus ``source``/``vllmVersion``. Every module-level
    ``_<CATEGORY>_MODELS = {"Arch": ("module", "Class"), ...}`` dict contributes its category
    (``_CROSS_ENCODER_MODELS`` → ``cross-encoder``). ``**spread`` entries are skipped: they re-list
    architectures already registered elsewhere, and the bundled list does not count them either.
    """
    try:
        tree = ast.parse(python_source)
    except SyntaxError as exc:
        raise ValueError(f"registry source is not valid Python: {exc.msg} (line {exc.lineno})") from exc
    architectures: dict[str, dict[str, Any]] = {}
    previously: dict[str, str] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target, value = stmt.targets[0], stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        else:
            continue
        if not isinstance(target, ast.Name) or not isinstance(value, ast.Dict):
            continue
        if target.id == "_PREVIOUSLY_SUPPORTED_MODELS":
            for key, val in zip(value.keys, value.values, strict=True):
                name, version = _str_constant(key), _str_constant(val)
                if name is not None and version is not None:
                    previously[name] = version
            continue
        category = category_from_dict_name(target.id)
        if category is None:
            continue
        for key, val in zip(value.keys, value.values, strict=True):
            name = _str_constant(key)  # None for **spread entries
            if name is None or not isinstance(val, ast.Tuple) or len(val.elts) != 2:
                continue
            module, class_name = _str_constant(val.elts[0]), _str_constant(val.elts[1])
            if module is None or class_name is None:
                continue
            entry = architectures.setdefault(name, {"module": module, "class": class_name, "categories": []})
            if category not in entry["categories"]:
                entry["categories"].append(category)
    if not architectures:
        raise ValueError("registry source defines no _<CATEGORY>_MODELS dicts")
    return {
        "architectures": dict(sorted(architectures.items())),
        "previouslySupported": previously,
    }
