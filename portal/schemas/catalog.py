"""Catalog entry schema (reference §3.2): strict parsing, issues with field paths, canonical JSON."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from portal.errors import InvalidInput

CatalogEntry = dict[str, Any]
"""An entry is a plain dict in the §3.2 JSON shape (the output of `entry_to_json`)."""

Severity = Literal["error", "warning"]

MAX_ID_LENGTH = 128
SAFE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
SAFE_ID_RE = re.compile(SAFE_ID_PATTERN)
# The Kubernetes quantity grammar (same as the CRD's pattern) minus the sign: a negative request or
# limit is always a mistake, and the API server refuses it anyway.
QUANTITY_RE = re.compile(
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
MAX_MODEL_LEN = 10_000_000
MAX_TENSOR_PARALLEL = 1024
_INT64 = (-(2**63), 2**63 - 1)
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


# --- strict fields -------------------------------------------------------------------------------
# marshmallow coerces by default ("1" → 1, "yes" → True); catalog files are JSON, so a value of the
# wrong JSON type is a mistake worth reporting, as the original (Go, typed structs) did.


class StrictFloat(fields.Float):
    """A JSON number (int or float, never a string or bool), finite."""

    def _validated(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid", input=value)
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("special")
        return super()._validated(value)


class StrictBoolean(fields.Boolean):
    """Only JSON `true` / `false`."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)


class StringMap(fields.Dict):
    """A {string: string} object; errors are keyed by the map key (not marshmallow's key/value split)."""

    def __init__(self, *, value_validator: Callable[[str], Any] | None = None, **kwargs: Any) -> None:
        values = fields.String(validate=value_validator) if value_validator else fields.String()
        super().__init__(keys=fields.String(validate=validate.Length(min=1)), values=values, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        try:
            return super()._deserialize(value, attr, data, **kwargs)  # type: ignore[no-untyped-call]
        except ValidationError as err:
            if not isinstance(err.messages, dict):
                raise
            flat: dict[str, list[str]] = {}
            for key, parts in err.messages.items():
                messages: list[str] = []
                if isinstance(parts, dict):
                    for part in ("key", "value"):
                        messages.extend(str(m) for m in parts.get(part, []))
                else:
                    messages.append(str(parts))
                flat[str(key)] = messages
            raise ValidationError(flat, valid_data=err.valid_data) from None


def _quantity(value: str) -> bool:
    if not QUANTITY_RE.match(value):
        raise ValidationError(f'{value!r} is not a valid Kubernetes quantity (e.g. "1", "500m", "16Gi").')
    return True


def _name(**kwargs: Any) -> fields.String:
    """A required, non-empty string (Kubernetes refuses empty names)."""
    return fields.String(required=True, validate=validate.Length(min=1), **kwargs)


# --- schemas (JSON names exactly as §3.2) ----------------------------------------------------------


class _Base(Schema):
    class Meta:
        # Unknown keys are collected as warnings by `parse_entry` before loading; the API may also
        # use these schemas directly, where dropping them quietly is the right default.
        unknown = EXCLUDE


class CatalogKeyRefSchema(_Base):
    """Reference to one key of a Secret or ConfigMap."""

    name = _name()
    key = _name()
    optional = StrictBoolean()


class CatalogEnvSourceSchema(_Base):
    """Where an environment variable's value comes from."""

    secretKeyRef = fields.Nested(CatalogKeyRefSchema)
    configMapKeyRef = fields.Nested(CatalogKeyRefSchema)

    @validates_schema
    def _one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "secretKeyRef" in data and "configMapKeyRef" in data:
            raise ValidationError("only one of secretKeyRef or configMapKeyRef may be set.")


class CatalogEnvVarSchema(_Base):
    """An environment variable of the model container."""

    name = _name()
    value = fields.String()
    valueFrom = fields.Nested(CatalogEnvSourceSchema)

    @validates_schema
    def _value_or_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("value") and data.get("valueFrom"):
            raise ValidationError("value and valueFrom cannot both be set.")


class CatalogStorageSchema(_Base):
    """KServe storage spec passthrough (`storageKey` is an alias of `key`)."""

    key = fields.String()
    path = fields.String()
    schemaPath = fields.String()
    storageKey = fields.String()


class CatalogVllmSchema(_Base):
    """vLLM engine options turned into command-line arguments (§4.2)."""

    tensorParallelSize = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_TENSOR_PARALLEL))
    dtype = fields.String()
    gpuMemoryUtilization = StrictFloat(validate=validate.Range(min=0, max=1, min_inclusive=False))
    maxModelLen = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_MODEL_LEN))
    trustRemoteCode = StrictBoolean()
    extraArgs = fields.List(fields.String())


class CatalogTolerationSchema(_Base):
    """A pod toleration, checked with the same rules as the Kubernetes API server."""

    key = fields.String()
    operator = fields.String(validate=validate.OneOf(["Exists", "Equal"]))
    value = fields.String()
    effect = fields.String(validate=validate.OneOf(["", "NoSchedule", "PreferNoSchedule", "NoExecute"]))
    tolerationSeconds = fields.Integer(strict=True, validate=validate.Range(min=_INT64[0], max=_INT64[1]))

    @validates_schema
    def _kubernetes_rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        operator = data.get("operator") or "Equal"
        if not data.get("key") and operator != "Exists":
            raise ValidationError("operator must be Exists when key is empty.", "operator")
        if operator == "Exists" and data.get("value"):
            raise ValidationError("value must be empty when operator is Exists.", "value")
        if "tolerationSeconds" in data and data.get("effect") != "NoExecute":
            raise ValidationError("tolerationSeconds requires effect NoExecute.", "tolerationSeconds")


class CatalogResourcesSchema(_Base):
    """Container resource requests and limits; quantities are strings such as "16Gi"."""

    requests = StringMap(value_validator=_quantity)
    limits = StringMap(value_validator=_quantity)


class CatalogVolumeMountSchema(_Base):
    """Where a volume is mounted in the model container."""

    name = _name()
    mountPath = _name()
    readOnly = StrictBoolean()
    subPath = fields.String()


class CatalogPvcSourceSchema(_Base):
    """A PersistentVolumeClaim volume source."""

    claimName = _name()
    readOnly = StrictBoolean()


class CatalogSecretSourceSchema(_Base):
    """A Secret volume source."""

    secretName = _name()
    optional = StrictBoolean()


class CatalogConfigMapSourceSchema(_Base):
    """A ConfigMap volume source."""

    name = _name()
    optional = StrictBoolean()


_VOLUME_SOURCES = ("persistentVolumeClaim", "secret", "configMap")


class CatalogVolumeSchema(_Base):
    """A pod volume; exactly one source."""

    name = _name()
    persistentVolumeClaim = fields.Nested(CatalogPvcSourceSchema)
    secret = fields.Nested(CatalogSecretSourceSchema)
    configMap = fields.Nested(CatalogConfigMapSourceSchema)

    @validates_schema
    def _one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Without a source Kubernetes silently makes an emptyDir, which is never what an entry meant.
        if sum(1 for source in _VOLUME_SOURCES if source in data) != 1:
            raise ValidationError("exactly one of persistentVolumeClaim, secret or configMap is required.")


class CatalogEntrySchema(_Base):
    """A model catalog entry (reference §3.2), JSON names exactly."""

    id = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=MAX_ID_LENGTH),
            validate.Regexp(
                SAFE_ID_PATTERN,
                error="must be lowercase letters, digits, '.', '_' or '-', starting with a letter or digit.",
            ),
        ],
        metadata={
            "description": "Unique id; also the file name `<id>.json`.",
            "example": "qwen2.5-1.5b-instruct",
        },
    )
    displayName = fields.String(metadata={"example": "Qwen2.5 1.5B Instruct"})
    hfModelId = fields.String(metadata={"example": "Qwen/Qwen2.5-1.5B-Instruct"})
    servedModelName = fields.String()
    storageUri = fields.String(metadata={"example": "pvc://venus-model-storage/Qwen/Qwen2.5-1.5B-Instruct"})
    runtime = fields.String(metadata={"description": "KServe ServingRuntime; default vllm-runtime."})
    env = fields.List(fields.Nested(CatalogEnvVarSchema))
    storage = fields.Nested(CatalogStorageSchema)
    vllm = fields.Nested(CatalogVllmSchema)
    nodeSelector = StringMap()
    tolerations = fields.List(fields.Nested(CatalogTolerationSchema))
    resources = fields.Nested(CatalogResourcesSchema)
    volumeMounts = fields.List(fields.Nested(CatalogVolumeMountSchema))
    volumes = fields.List(fields.Nested(CatalogVolumeSchema))


_ENTRY_SCHEMA = CatalogEntrySchema()


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
    ("tensorParallelSize", "dtype", "gpuMemoryUtilization", "maxModelLen", "trustRemoteCode", "extraArgs")
)
_TOLERATION_KEYS = frozenset(("key", "operator", "value", "effect", "tolerationSeconds"))
_EFFECTS = frozenset(("NoSchedule", "PreferNoSchedule", "NoExecute"))
_REF_KEYS = frozenset(("name", "key", "optional"))
_ENV_KEYS = frozenset(("name", "value", "valueFrom"))
_ENV_SOURCE_KEYS = frozenset(("secretKeyRef", "configMapKeyRef"))
_VOLUME_KEYS = frozenset(("name", *_VOLUME_SOURCES))
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
    for key, limit in (("tensorParallelSize", MAX_TENSOR_PARALLEL), ("maxModelLen", MAX_MODEL_LEN)):
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
    if "trustRemoteCode" in vllm:
        _flag(vllm["trustRemoteCode"])
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
            if type(seconds) is not int or tol.get("effect") != "NoExecute" or not _INT64[0] <= seconds <= _INT64[1]:
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
            _check_volumes(data.get("volumeMounts"), data.get("volumes"))
    except _Unusual:
        return None
    return data
