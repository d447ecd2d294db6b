"""GPU profiles: what a GPU model offers (memory, dtypes, labels) and how to find it on a node.

The file is a JSON array (an object ``{"profiles": [...]}`` is accepted too) of entries with the
fields of the service we replace — ``name`` (required), ``description``, ``memoryGB`` (nominal, as
printed on the box), ``vendor``, ``deviceId``, ``features`` (compared case-insensitively),
``labels`` — plus ours:

- ``totalMemoryGiB``: memory as the runtime sees it (``torch.cuda.mem_get_info`` total), when measured;
- ``activationOverheadGiB``: vLLM's profiled activation peak on this GPU, either one number or a map
  per model kind (``{"dense": 0.7, "moe": 7.4, "multimodal": 2.1}``); ``nonTorchGiB`` likewise one number;
- ``vllmVersion``: the vLLM release the runtime uses on this GPU (keys the default utilization);
- ``resourceName`` (``nvidia.com/gpu``, ``amd.com/gpu``), ``productLabels`` (values of the node label
  ``nvidia.com/gpu.product`` / ``amd.com/gpu.product`` naming this GPU), ``gpusPerNode``.

When ``totalMemoryGiB`` is absent the runtime memory is derived from the nominal size:
``memoryGB * 10^9 / 2^30 - 0.35 GiB``. Vendors' "GB" is loose (CUDA reports 79.25 GiB for an "80 GB"
A100, 22.05 GiB for a "24 GB" L4, 44.39 GiB for a "48 GB" L40S, 14.74 GiB for a "16 GB" T4: sources
in ``portal/data/README.md``); reading it as decimal GB minus a small reserve never over-states any
of them, which is the safe side for a fit verdict.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

GIB = 2**30
DERIVED_MEMORY_RESERVE_GIB = 0.35
BUNDLED_FILE = "gpu-profiles.json"

MODEL_KINDS = ("dense", "moe", "multimodal")
VENDOR_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu", "intel": "gpu.intel.com/i915"}
PRODUCT_LABEL_KEYS = (
    "nvidia.com/gpu.product",
    "amd.com/gpu.product",
    "amd.com/gpu.product-name",
    "beta.amd.com/gpu.product-name",
)
NVIDIA_MEMORY_LABEL = "nvidia.com/gpu.memory"  # MiB, set by GPU feature discovery
_MEMORY_MATCH_TOLERANCE = 0.03

_FIELDS = (
    "name",
    "description",
    "memoryGB",
    "vendor",
    "deviceId",
    "features",
    "labels",
    "totalMemoryGiB",
    "activationOverheadGiB",
    "nonTorchGiB",
    "vllmVersion",
    "resourceName",
    "productLabels",
    "gpusPerNode",
)


class ProfileFileError(ValueError):
    """A GPU profile file that cannot be used; the message names file, entry and field."""


@dataclass(frozen=True)
class GpuProfile:
    """One GPU model as configured by the operator."""

    name: str
    memory_gb: float
    description: str | None = None
    vendor: str | None = None
    device_id: str | None = None
    features: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    total_memory_gib: float | None = None
    activation_overhead_gib: Mapping[str, float] | None = field(default=None, hash=False)
    non_torch_gib: float | None = None
    vllm_version: str | None = None
    resource_name: str | None = None
    product_labels: tuple[str, ...] = ()
    gpus_per_node: int | None = None

    @property
    def runtime_memory_gib(self) -> float:
        """Memory as the runtime sees it: measured, else derived from the nominal GB (module docstring)."""
        if self.total_memory_gib is not None:
            return self.total_memory_gib
        return derived_memory_gib(self.memory_gb)

    @property
    def memory_is_measured(self) -> bool:
        """True when ``totalMemoryGiB`` was given rather than derived."""
        return self.total_memory_gib is not None

    @property
    def effective_resource_name(self) -> str | None:
        """``resourceName``, else the vendor's usual device-plugin resource."""
        if self.resource_name:
            return self.resource_name
        return VENDOR_RESOURCES.get((self.vendor or "").strip().lower())

    def has_feature(self, feature: str) -> bool:
        """Case-insensitive feature test (``bf16``, ``fp8`` …)."""
        wanted = feature.strip().lower()
        return any(f.lower() == wanted for f in self.features)

    def activation_overhead_for(self, kind: str) -> float | None:
        """The profile's activation override for a model kind, if any (``"*"`` applies to all kinds)."""
        if self.activation_overhead_gib is None:
            return None
        value = self.activation_overhead_gib.get(kind)
        return value if value is not None else self.activation_overhead_gib.get("*")

    def to_dict(self) -> dict[str, Any]:
        """JSON form in the file's field names, optional fields omitted when unset."""
        memory: float | int = int(self.memory_gb) if float(self.memory_gb).is_integer() else self.memory_gb
        out: dict[str, Any] = {"name": self.name, "memoryGB": memory}
        if self.description is not None:
            out["description"] = self.description
        if self.vendor is not None:
            out["vendor"] = self.vendor
        if self.device_id is not None:
            out["deviceId"] = self.device_id
        if self.features:
            out["features"] = list(self.features)
        if self.labels:
            out["labels"] = dict(self.labels)
        if self.total_memory_gib is not None:
            out["totalMemoryGiB"] = self.total_memory_gib
        if self.activation_overhead_gib is not None:
            act = dict(self.activation_overhead_gib)
            out["activationOverheadGiB"] = act["*"] if list(act) == ["*"] else act
        if self.non_torch_gib is not None:
            out["nonTorchGiB"] = self.non_torch_gib
        if self.vllm_version is not None:
            out["vllmVersion"] = self.vllm_version
        resource = self.effective_resource_name
        if resource is not None:
            out["resourceName"] = resource
        if self.product_labels:
            out["productLabels"] = list(self.product_labels)
        if self.gpus_per_node is not None:
            out["gpusPerNode"] = self.gpus_per_node
        out["runtimeMemoryGiB"] = round(self.runtime_memory_gib, 2)
        return out


def derived_memory_gib(memory_gb: float) -> float:
    """Runtime memory from a nominal size: decimal GB to GiB minus a 0.25 GiB reserve."""
    return max(memory_gb * 1e9 / GIB - DERIVED_MEMORY_RESERVE_GIB, 0.0)


class _EntryParser:
    """Validates one raw entry and reports errors naming file, index, name and field."""

    def __init__(self, file_label: str, index: int, raw: Mapping[str, Any]) -> None:
        self.file_label = file_label
        self.index = index
        self.raw = raw
        name = raw.get("name")
        self.name = name.strip() if isinstance(name, str) else None

    def fail(self, message: str) -> ProfileFileError:
        who = f"entry {self.index}" + (f' ("{self.name}")' if self.name else "")
        return ProfileFileError(f"{self.file_label}: {who}: {message}")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{key} must be a string")
        return value.strip() or None

    def positive_number(self, key: str) -> float | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(f"{key} must be a positive number")
        return float(value)

    def non_negative_number(self, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self.fail(f"{key} must be a number ≥ 0")
        return float(value)

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self.raw.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.fail(f"{key} must be a list of non-empty strings")
        return tuple(v.strip() for v in value)

    def parse(self) -> GpuProfile:
        unknown = [k for k in self.raw if k not in _FIELDS]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise self.fail(f"unknown field {key!r}{hint}")
        if not self.name:
            raise self.fail("name is required (a non-empty string)")
        memory = self.positive_number("memoryGB")
        if memory is None:
            raise self.fail("memoryGB must be a positive number")
        labels = self.raw.get("labels") or {}
        if not isinstance(labels, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise self.fail("labels must be an object of string values")
        act_raw = self.raw.get("activationOverheadGiB")
        activation: dict[str, float] | None = None
        if isinstance(act_raw, Mapping):
            bad = [k for k in act_raw if k not in MODEL_KINDS and k != "*"]
            if bad:
                raise self.fail(f"activationOverheadGiB: unknown model kind {bad[0]!r} (use {', '.join(MODEL_KINDS)})")
            activation = {k: self.non_negative_number(f"activationOverheadGiB.{k}", v) for k, v in act_raw.items()}
        elif act_raw is not None:
            activation = {"*": self.non_negative_number("activationOverheadGiB", act_raw)}
        non_torch_raw = self.raw.get("nonTorchGiB")
        non_torch = None if non_torch_raw is None else self.non_negative_number("nonTorchGiB", non_torch_raw)
        gpus = self.raw.get("gpusPerNode")
        if gpus is not None and (isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1):
            raise self.fail("gpusPerNode must be a whole number ≥ 1")
        return GpuProfile(
            name=self.name,
            memory_gb=memory,
            description=self.text("description"),
            vendor=self.text("vendor"),
            device_id=self.text("deviceId"),
            features=self.string_list("features"),
            labels=dict(labels),
            total_memory_gib=self.positive_number("totalMemoryGiB"),
            activation_overhead_gib=activation,
            non_torch_gib=non_torch,
            vllm_version=self.text("vllmVersion"),
            resource_name=self.text("resourceName"),
            product_labels=self.string_list("productLabels"),
            gpus_per_node=gpus,
        )


def parse_profiles(data: Any, *, file_label: str = "gpu profiles") -> list[GpuProfile]:
    """Validate parsed JSON (array, or ``{"profiles": [...]}``) into profiles sorted by lowercase name."""
    if isinstance(data, Mapping) and "profiles" in data:
        data = data["profiles"]
    if not isinstance(data, list):
        raise ProfileFileError(f"{file_label}: top level must be a JSON array of profiles")
    profiles: list[GpuProfile] = []
    seen: dict[str, tuple[int, str]] = {}
    for index, raw in enumerate(data):
        if not isinstance(raw, Mapping):
            raise ProfileFileError(f"{file_label}: entry {index}: must be an object")
        profile = _EntryParser(file_label, index, raw).parse()
        key = profile.name.lower()
        if key in seen:
            first_index, first_name = seen[key]
            raise ProfileFileError(
                f'{file_label}: entry {index} ("{profile.name}"): duplicate name, '
                f'entry {first_index} ("{first_name}") has the same name (names are case-insensitive)'
            )
        seen[key] = (index, profile.name)
        profiles.append(profile)
    return sorted(profiles, key=lambda p: p.name.lower())


def load_profiles(path: Path | None = None) -> list[GpuProfile]:
    """Load and validate a profile file; None loads the bundled ``portal/data/gpu-profiles.json``."""
    if path is None:
        label = BUNDLED_FILE
        try:
            text = resources.files("portal.data").joinpath(BUNDLED_FILE).read_text(encoding="utf-8")
        except OSError as exc:  # pragma: no cover - packaging error
            raise ProfileFileError(f"{label}: cannot read the bundled file: {exc}") from exc
    else:
        label = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileFileError(f"{label}: cannot read: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileFileError(f"{label}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return parse_profiles(data, file_label=label)


def find_profile(profiles: Iterable[GpuProfile], name: str) -> GpuProfile | None:
    """The profile with this name, compared case-insensitively."""
    wanted = name.strip().lower()
    return next((p for p in profiles if p.name.lower() == wanted), None)


def normalize_product(value: str) -> str:
    """Canonical product label: lowercase, spaces/underscores/hyphen runs → one hyphen."""
    return re.sub(r"[\s_\-]+", "-", value.strip().lower()).strip("-")


def _memory_sizes_gib(profile: GpuProfile) -> tuple[float, ...]:
    # The label reports nvidia-smi's total, which sits between the nominal size read as GiB
    # (H100: 80 → 79.6) and read as decimal GB (L4: 24 → 22.4); accept either, or the measured total.
    return (profile.runtime_memory_gib, profile.memory_gb, profile.memory_gb * 1e9 / GIB)


def _near(value: float, target: float) -> bool:
    return abs(value - target) <= _MEMORY_MATCH_TOLERANCE * value


def match_node(
    profiles: Sequence[GpuProfile], node_labels: Mapping[str, str], resource_name: str | None = None
) -> GpuProfile | None:
    """The profile describing a node's GPUs, from its product label, else its GPU memory label."""
    candidates = [p for p in profiles if resource_name is None or p.effective_resource_name in (None, resource_name)]
    products = {normalize_product(node_labels[k]) for k in PRODUCT_LABEL_KEYS if node_labels.get(k)}
    if products:
        for profile in candidates:
            if any(normalize_product(label) in products for label in profile.product_labels):
                return profile
    memory_label = node_labels.get(NVIDIA_MEMORY_LABEL)
    if memory_label is None:
        return None
    try:
        node_gib = float(memory_label) * 2**20 / GIB
    except ValueError:
        return None
    if node_gib <= 0:
        return None
    nvidia = [p for p in candidates if p.effective_resource_name in (None, "nvidia.com/gpu")]
    close = [p for p in nvidia if any(_near(node_gib, size) for size in _memory_sizes_gib(p))]
    # The memory label alone is ambiguous when two GPU models share a size (L4 and A10G).
    return close[0] if len(close) == 1 else None
