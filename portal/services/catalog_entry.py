"""Catalog entries: parsing with issues and field paths, canonical JSON, and the fast path for clean files.

The marshmallow schemas (`portal.schemas.catalog`) say what a valid entry is; this module turns raw JSON
into the canonical entry plus every problem found, each with a field path such as `vllm.maxModelLen`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from marshmallow import Schema, ValidationError, fields

from portal.errors import InvalidInput
from portal.schemas.catalog import (
    INT64_RANGE,
    KV_CACHE_DTYPES,
    MAX_ID_LENGTH,
    MAX_MODEL_LEN,
    MAX_NUM_SEQS,
    MAX_TENSOR_PARALLEL,
    QUANTITY_RE,
    SAFE_ID_RE,
    VOLUME_SOURCES,
    CatalogEntrySchema,
)

CatalogEntry = dict[str, Any]
"""An entry is a plain dict in the §3.2 JSON shape (the output of `entry_to_json`)."""

Severity = Literal["error", "warning"]

_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY_SCHEMA = CatalogEntrySchema()


@dataclass(frozen=True)
class Issue:
    """One problem found in a catalog entry or file; `field` is a path such as `vllm.maxModelLen`."""

    file: str | None
    line: int | None
    field: str | None
    message: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape used by `GET /catalog/status` and validation answers."""
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }

    def __str__(self) -> str:
        where = self.file or "<entry>"
        if self.line is not None:
            where += f":{self.line}"
        prefix = f"{self.field}: " if self.field else ""
        return f"{where}: {self.severity}: {prefix}{self.message}"


def has_errors(issues: list[Issue]) -> bool:
    """True when any issue is an error (warnings do not make an entry invalid)."""
    return any(issue.severity == "error" for issue in issues)


# --- parsing -------------------------------------------------------------------------------------


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not path:
        return key
    if _IDENTIFIER_RE.match(key):
        return f"{path}.{key}"
    return f'{path}["{key}"]'


def _strip_unknown(schema: Schema, data: Any, path: str, issues: list[Issue]) -> Any:
    """Copy of `data` without keys the schema does not know, each reported as a warning."""
    if not isinstance(data, dict):
        return data
    known = schema.fields
    by_lower = {name.lower(): name for name in known}
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        name = key if key in known else None
        if name is None and isinstance(key, str):
            # The original (Go encoding/json) matched keys case-insensitively; keep such files
            # working but say how the key should be spelled.
            candidate = by_lower.get(key.lower())
            if candidate is not None and candidate not in data and candidate not in cleaned:
                name = candidate
                issues.append(
                    Issue(
                        None,
                        None,
                        _child_path(path, str(key)),
                        f'read as "{candidate}"; spell it that way',
                        "warning",
                    )
                )
        if name is None:
            issues.append(Issue(None, None, _child_path(path, str(key)), "unknown field ignored", "warning"))
            continue
        cleaned[name] = _strip_field(known[name], value, _child_path(path, name), issues)
    return cleaned


def _strip_field(field: fields.Field[Any], value: Any, path: str, issues: list[Issue]) -> Any:
    if isinstance(field, fields.Nested) and isinstance(field.schema, Schema):
        return _strip_unknown(field.schema, value, path, issues)
    if isinstance(field, fields.List) and isinstance(value, list):
        inner = field.inner
        if isinstance(inner, fields.Nested) and isinstance(inner.schema, Schema):
            return [_strip_unknown(inner.schema, item, _child_path(path, i), issues) for i, item in enumerate(value)]
    return value


def _flatten_messages(messages: Any, path: str, out: list[Issue]) -> None:
    if isinstance(messages, dict):
        for key, sub in messages.items():
            # `_schema` holds errors of a whole object (validates_schema without a field name).
            child = path if key == "_schema" else _child_path(path, key)
            _flatten_messages(sub, child, out)
    elif isinstance(messages, list):
        for item in messages:
            _flatten_messages(item, path, out)
    else:
        out.append(Issue(None, None, path or None, str(messages), "error"))


def _cross_checks(entry: CatalogEntry) -> list[Issue]:
    issues: list[Issue] = []
    volume_names = {v.get("name") for v in entry.get("volumes", []) if isinstance(v, dict)}
    for i, mount in enumerate(entry.get("volumeMounts", [])):
        name = mount.get("name") if isinstance(mount, dict) else None
        if name and name not in volume_names:
            # A warning, not an error: KServe may inject volumes of its own, but usually this is a typo
            # and the pod would be refused.
            issues.append(
                Issue(None, None, f"volumeMounts[{i}].name", f'no volume named "{name}" in volumes', "warning")
            )
    # The CRD declares env (by name) and volumeMounts (by mountPath) as list-maps, and pods refuse
    # duplicate volume names: the API server would reject the InferenceService.
    unique_keys = (
        ("env", "name", "environment variable"),
        ("volumeMounts", "mountPath", "mount path"),
        ("volumes", "name", "volume name"),
    )
    for list_name, key, label in unique_keys:
        seen: set[str] = set()
        for i, item in enumerate(entry.get(list_name, [])):
            value = item.get(key)
            if value in seen:
                issues.append(Issue(None, None, f"{list_name}[{i}].{key}", f'duplicate {label} "{value}"', "error"))
            seen.add(value)
    return issues


def parse_entry(data: Any) -> tuple[CatalogEntry, list[Issue]]:
    """Validate raw JSON data; return the canonical entry (best effort if invalid) and its issues."""
    if not isinstance(data, dict):
        return {}, [Issue(None, None, None, "a catalog entry must be a JSON object", "error")]
    issues: list[Issue] = []
    cleaned = _strip_unknown(_ENTRY_SCHEMA, data, "", issues)
    try:
        loaded: dict[str, Any] = _ENTRY_SCHEMA.load(cleaned)
    except ValidationError as err:
        _flatten_messages(err.messages, "", issues)
        valid = err.valid_data if isinstance(err.valid_data, dict) else {}
        return entry_to_json(valid), issues
    entry = entry_to_json(loaded)
    issues.extend(_cross_checks(entry))
    return entry, issues


def load_entry(data: Any) -> CatalogEntry:
    """Parse an entry or raise InvalidInput with the field errors in `details.fields`."""
    entry, issues = parse_entry(data)
    if has_errors(issues):
        errors: dict[str, list[str]] = {}
        for issue in issues:
            if issue.severity == "error":
                errors.setdefault(issue.field or "_entry", []).append(issue.message)
        raise InvalidInput(
            "invalid catalog entry",
            code="invalid_catalog_entry",
            details={"fields": errors, "warnings": [i.to_dict() for i in issues if i.severity == "warning"]},
        )
    return entry


# --- canonical serialisation ---------------------------------------------------------------------


def _put_str(out: dict[str, Any], src: Mapping[str, Any], key: str, *, always: bool = False) -> None:
    value = src.get(key)
    if isinstance(value, str) and value:
        out[key] = value
    elif always:
        out[key] = value if isinstance(value, str) else ""


def _put_present(out: dict[str, Any], src: Mapping[str, Any], key: str) -> None:
    # Pointer semantics: a present number or bool is written even when 0 / false.
    if key in src and src[key] is not None:
        out[key] = src[key]


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _key_ref(src: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_str(out, src, "name", always=True)
    _put_str(out, src, "key", always=True)
    _put_present(out, src, "optional")
    return out


def _env_var(src: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_str(out, src, "name", always=True)
    _put_str(out, src, "value")
    source = src.get("valueFrom")
    if isinstance(source, Mapping):
        value_from = {
            ref: _key_ref(source[ref])
            for ref in ("secretKeyRef", "configMapKeyRef")
            if isinstance(source.get(ref), Mapping)
        }
        if value_from:
            out["valueFrom"] = value_from
    return out


def _toleration(src: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("key", "operator", "value", "effect"):
        _put_str(out, src, key)
    _put_present(out, src, "tolerationSeconds")
    return out


def _volume_mount(src: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_str(out, src, "name", always=True)
    _put_str(out, src, "mountPath", always=True)
    _put_present(out, src, "readOnly")
    _put_str(out, src, "subPath")
    return out


def _volume(src: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_str(out, src, "name", always=True)
    sources = (
        ("persistentVolumeClaim", "claimName", "readOnly"),
        ("secret", "secretName", "optional"),
        ("configMap", "name", "optional"),
    )
    for source, name_key, flag in sources:
        value = src.get(source)
        if isinstance(value, Mapping):
            item: dict[str, Any] = {}
            _put_str(item, value, name_key, always=True)
            _put_present(item, value, flag)
            out[source] = item
    return out


def entry_to_json(entry: Mapping[str, Any]) -> CatalogEntry:
    """The §3.2 serialisation: a fresh dict in field order, empty optional fields omitted."""
    out: CatalogEntry = {}
    _put_str(out, entry, "id", always=True)
    for key in ("displayName", "hfModelId", "servedModelName", "storageUri", "runtime"):
        _put_str(out, entry, key)
    env = [_env_var(item) for item in _dicts(entry.get("env"))]
    if env:
        out["env"] = env
    storage_src = entry.get("storage")
    if isinstance(storage_src, Mapping):
        storage: dict[str, Any] = {}
        for key in ("key", "path", "schemaPath", "storageKey"):
            _put_str(storage, storage_src, key)
        if storage:
            out["storage"] = storage
    vllm_src = entry.get("vllm")
    if isinstance(vllm_src, Mapping):
        vllm: dict[str, Any] = {}
        _put_present(vllm, vllm_src, "tensorParallelSize")
        _put_str(vllm, vllm_src, "dtype")
        _put_present(vllm, vllm_src, "gpuMemoryUtilization")
        _put_present(vllm, vllm_src, "maxModelLen")
        _put_present(vllm, vllm_src, "trustRemoteCode")
        _put_str(vllm, vllm_src, "kvCacheDtype")
        _put_present(vllm, vllm_src, "maxNumBatchedTokens")
        _put_present(vllm, vllm_src, "maxNumSeqs")
        _put_present(vllm, vllm_src, "enforceEager")
        extra = [a for a in vllm_src.get("extraArgs") or [] if isinstance(a, str)]
        if extra:
            vllm["extraArgs"] = extra
        if vllm:
            out["vllm"] = vllm
    node_selector = _str_map(entry.get("nodeSelector"))
    if node_selector:
        out["nodeSelector"] = node_selector
    tolerations = [_toleration(item) for item in _dicts(entry.get("tolerations"))]
    if tolerations:
        out["tolerations"] = tolerations
    resources_src = entry.get("resources")
    if isinstance(resources_src, Mapping):
        resources = {k: _str_map(resources_src.get(k)) for k in ("requests", "limits")}
        resources = {k: v for k, v in resources.items() if v}
        if resources:
            out["resources"] = resources
    mounts = [_volume_mount(item) for item in _dicts(entry.get("volumeMounts"))]
    if mounts:
        out["volumeMounts"] = mounts
    volumes = [_volume(item) for item in _dicts(entry.get("volumes"))]
    if volumes:
        out["volumes"] = volumes
    return out


# --- fast path -----------------------------------------------------------------------------------
# Loading 10,000 files through marshmallow costs seconds. Almost every file is clean, so a plain-Python
# check accepts the common case and everything unusual (unknown or mis-cased keys, empty optional
# values, anything invalid) falls back to `parse_entry`, which produces the issues. The contract,
# checked by tests: when `fast_entry(data)` returns an entry, `parse_entry(data)` gives the same entry
# (equal as dicts) and no issues at all.

_TOP_STRINGS = ("displayName", "hfModelId", "servedModelName", "storageUri", "runtime")
_TOP_KEYS = frozenset(
    (
        "id",
        *_TOP_STRINGS,
        "env",
        "storage",
        "vllm",
        "nodeSelector",
        "tolerations",
        "resources",
        "volumeMounts",
        "volumes",
    )
)
_STORAGE_KEYS = frozenset(("key", "path", "schemaPath", "storageKey"))
_VLLM_KEYS = frozenset(
    (
        "tensorParallelSize",
        "dtype",
        "gpuMemoryUtilization",
        "maxModelLen",
        "trustRemoteCode",
        "kvCacheDtype",
        "maxNumBatchedTokens",
        "maxNumSeqs",
        "enforceEager",
        "extraArgs",
    )
)
_TOLERATION_KEYS = frozenset(("key", "operator", "value", "effect", "tolerationSeconds"))
_EFFECTS = frozenset(("NoSchedule", "PreferNoSchedule", "NoExecute"))
_REF_KEYS = frozenset(("name", "key", "optional"))
_ENV_KEYS = frozenset(("name", "value", "valueFrom"))
_ENV_SOURCE_KEYS = frozenset(("secretKeyRef", "configMapKeyRef"))
_VOLUME_KEYS = frozenset(("name", *VOLUME_SOURCES))
_PVC_KEYS = frozenset(("claimName", "readOnly"))
_MOUNT_KEYS = frozenset(("name", "mountPath", "readOnly", "subPath"))
_RESOURCE_KEYS = frozenset(("requests", "limits"))


class _Unusual(Exception):
    """The data needs the full parser (it may still be valid)."""


def _text(value: Any) -> str:
    if type(value) is not str or not value:
        raise _Unusual
    return value


def _flag(value: Any) -> None:
    if type(value) is not bool:
        raise _Unusual


def _obj(value: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if type(value) is not dict or not value or not allowed.issuperset(value):
        raise _Unusual
    return value


def _items(value: Any) -> list[Any]:
    if type(value) is not list or not value:
        raise _Unusual
    return value


def _check_ref(ref: Any) -> None:
    ref = _obj(ref, _REF_KEYS)
    _text(ref.get("name"))
    _text(ref.get("key"))
    if "optional" in ref:
        _flag(ref["optional"])


def _check_env(env: Any) -> None:
    names: set[str] = set()
    for raw_var in _items(env):
        var = _obj(raw_var, _ENV_KEYS)
        name = _text(var.get("name"))
        if name in names:
            raise _Unusual
        names.add(name)
        if "value" in var:
            _text(var["value"])
        if "valueFrom" in var:
            if "value" in var:
                raise _Unusual
            source = _obj(var["valueFrom"], _ENV_SOURCE_KEYS)
            if len(source) != 1:
                raise _Unusual
            for ref in source.values():
                _check_ref(ref)


def _check_vllm(vllm: Any) -> None:
    vllm = _obj(vllm, _VLLM_KEYS)
    for key, limit in (
        ("tensorParallelSize", MAX_TENSOR_PARALLEL),
        ("maxModelLen", MAX_MODEL_LEN),
        ("maxNumBatchedTokens", MAX_MODEL_LEN),
        ("maxNumSeqs", MAX_NUM_SEQS),
    ):
        if key in vllm:
            value = vllm[key]
            if type(value) is not int or not 1 <= value <= limit:
                raise _Unusual
    if "dtype" in vllm:
        _text(vllm["dtype"])
    if "gpuMemoryUtilization" in vllm:
        value = vllm["gpuMemoryUtilization"]
        if type(value) is not float or not 0 < value <= 1:
            raise _Unusual
    for key in ("trustRemoteCode", "enforceEager"):
        if key in vllm:
            _flag(vllm[key])
    if "kvCacheDtype" in vllm and vllm["kvCacheDtype"] not in KV_CACHE_DTYPES:
        raise _Unusual
    if "extraArgs" in vllm:
        for arg in _items(vllm["extraArgs"]):
            if type(arg) is not str:
                raise _Unusual


def _check_string_map(value: Any, quantities: bool = False) -> None:
    if type(value) is not dict or not value:
        raise _Unusual
    for key, item in value.items():
        if not key or type(item) is not str:
            raise _Unusual
        if quantities and not QUANTITY_RE.match(item):
            raise _Unusual


def _check_tolerations(tolerations: Any) -> None:
    for raw_tol in _items(tolerations):
        tol = _obj(raw_tol, _TOLERATION_KEYS)
        for key in ("key", "value"):
            if key in tol:
                _text(tol[key])
        operator = tol.get("operator", "Equal")
        if operator not in ("Exists", "Equal") or ("key" not in tol and operator != "Exists"):
            raise _Unusual
        if operator == "Exists" and "value" in tol:
            raise _Unusual
        if "effect" in tol and (type(tol["effect"]) is not str or tol["effect"] not in _EFFECTS):
            raise _Unusual
        if "tolerationSeconds" in tol:
            seconds = tol["tolerationSeconds"]
            if (
                type(seconds) is not int
                or tol.get("effect") != "NoExecute"
                or not INT64_RANGE[0] <= seconds <= INT64_RANGE[1]
            ):
                raise _Unusual


def _check_volumes(mounts: Any, volumes: Any) -> None:
    volume_names: set[str] = set()
    if volumes is not None:
        for raw_volume in _items(volumes):
            volume = _obj(raw_volume, _VOLUME_KEYS)
            name = _text(volume.get("name"))
            if name in volume_names or len(volume) != 2:
                raise _Unusual
            volume_names.add(name)
            if "persistentVolumeClaim" in volume:
                source = _obj(volume["persistentVolumeClaim"], _PVC_KEYS)
                _text(source.get("claimName"))
                if "readOnly" in source:
                    _flag(source["readOnly"])
            else:
                kind = "secret" if "secret" in volume else "configMap"
                label = "secretName" if kind == "secret" else "name"
                source = _obj(volume[kind], frozenset((label, "optional")))
                _text(source.get(label))
                if "optional" in source:
                    _flag(source["optional"])
    if mounts is not None:
        paths: set[str] = set()
        for raw_mount in _items(mounts):
            mount = _obj(raw_mount, _MOUNT_KEYS)
            if _text(mount.get("name")) not in volume_names:
                raise _Unusual  # a warning the full parser reports
            path = _text(mount.get("mountPath"))
            if path in paths:
                raise _Unusual
            paths.add(path)
            if "readOnly" in mount:
                _flag(mount["readOnly"])
            if "subPath" in mount:
                _text(mount["subPath"])


def fast_entry(data: Any) -> CatalogEntry | None:
    """`data` itself when it is a clean, canonical entry (the common case); None means "use parse_entry"."""
    try:
        if type(data) is not dict or not _TOP_KEYS.issuperset(data):
            return None
        entry_id = _text(data.get("id"))
        if len(entry_id) > MAX_ID_LENGTH or not SAFE_ID_RE.match(entry_id):
            return None
        for key in _TOP_STRINGS:
            if key in data:
                _text(data[key])
        if "env" in data:
            _check_env(data["env"])
        if "storage" in data:
            storage = _obj(data["storage"], _STORAGE_KEYS)
            for value in storage.values():
                _text(value)
        if "vllm" in data:
            _check_vllm(data["vllm"])
        if "nodeSelector" in data:
            _check_string_map(data["nodeSelector"])
        if "tolerations" in data:
            _check_tolerations(data["tolerations"])
        if "resources" in data:
            resources = _obj(data["resources"], _RESOURCE_KEYS)
            for value in resources.values():
                _check_string_map(value, quantities=True)
        if "volumeMounts" in data or "volumes" in data:
            if data.get("volumeMounts", []) is None or data.get("volumes", []) is None:
                raise _Unusual  # an explicit null is an error the full parser reports
            _check_volumes(data.get("volumeMounts"), data.get("volumes"))
    except _Unusual:
        return None
    return data
