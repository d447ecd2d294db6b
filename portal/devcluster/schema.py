"""Pruning, defaulting and validation of custom resources against the real KServe CRD schemas.

A write of a custom resource goes through the same three steps as in the API server:

1. **prune** - fields the structural schema does not declare are dropped and reported as
   warnings (``unknown field "spec.predictor.foo"``); subtrees marked
   ``x-kubernetes-preserve-unknown-fields`` keep them, ``x-kubernetes-embedded-resource``
   keeps ``apiVersion``/``kind``/``metadata``; ``metadata`` is pruned to the ObjectMeta fields;
2. **default** - ``null`` in a non-nullable field is dropped (or replaced by its ``default``),
   then absent fields that declare a ``default`` receive it;
3. **validate** - ``type`` (``x-kubernetes-int-or-string`` accepts both), ``required``,
   ``enum``, ``pattern``, ``format`` (int32, int64, date-time), length, item and value bounds,
   ``x-kubernetes-list-type`` set/map uniqueness, ``anyOf``/``allOf``/``oneOf``/``not``, and the
   ObjectMeta rules for ``metadata`` (DNS name, label keys and values, annotation keys).
   Each failure becomes a ``StatusCause`` dict: ``{"reason", "message", "field"}``.

Limits: CEL rules (``x-kubernetes-validations``) are not evaluated - the KServe CRDs declare none;
there is no validation ratcheting on update; messages follow the API server's wording but a few
rare ones (item counts, anyOf) are approximations.

The CRD YAML files are large (the InferenceService one is 2 MB, about 0.5 s to parse with
libyaml); each is parsed once per process and a JSON copy is kept in the user cache directory
(keyed by the file's hash), which loads in under 10 ms.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

CRD_DIR = Path(__file__).resolve().parent / "crds"
CRD_FILES: dict[str, str] = {
    "inferenceservices.serving.kserve.io": "serving.kserve.io_inferenceservices.yaml",
    "servingruntimes.serving.kserve.io": "serving.kserve.io_servingruntimes.yaml",
    "clusterservingruntimes.serving.kserve.io": "serving.kserve.io_clusterservingruntimes.yaml",
}
INFERENCE_SERVICE_CRD = "inferenceservices.serving.kserve.io"

OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)

_crd_lock = threading.Lock()
_crds: dict[str, dict[str, Any]] = {}


@dataclass(frozen=True)
class ValidationResult:
    """The object as it would be stored, plus what the API server would say about it."""

    pruned: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    causes: list[dict[str, str]] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the object would be accepted."""
        return not self.causes


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "model-manager" / "devcluster"


def _parse_yaml(raw: bytes) -> dict[str, Any]:
    # libyaml parses the 2 MB InferenceService CRD about twenty times faster than pure Python.
    parsed = yaml.load(raw, Loader=yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else yaml.safe_load(raw)
    if not isinstance(parsed, dict):
        raise ValueError("a CRD file must hold one mapping")
    return parsed


def _read_crd(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    cache = _cache_dir() / f"{path.stem}-{hashlib.sha256(raw).hexdigest()[:24]}.json"
    try:
        cached = json.loads(cache.read_bytes())
        if isinstance(cached, dict):
            return cached
    except (OSError, ValueError):
        pass
    crd = _parse_yaml(raw)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(crd, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError as exc:
        # A read-only home (a locked-down container) only costs the parse on the next start.
        log.debug("cannot cache %s as JSON: %s", path.name, exc)
    return crd


def load_crd(name: str) -> dict[str, Any]:
    """The CustomResourceDefinition `name` (e.g. `inferenceservices.serving.kserve.io`), parsed once."""
    with _crd_lock:
        crd = _crds.get(name)
        if crd is None:
            if name not in CRD_FILES:
                raise KeyError(f"unknown CRD {name!r}")
            crd = _read_crd(CRD_DIR / CRD_FILES[name])
            _crds[name] = crd
        return crd


def crd_version(name: str, version: str | None = None) -> dict[str, Any]:
    """One entry of the CRD's `spec.versions` (the storage version when `version` is None)."""
    versions: list[dict[str, Any]] = load_crd(name)["spec"]["versions"]
    for entry in versions:
        if entry["name"] == version or (version is None and entry.get("storage")):
            return entry
    raise KeyError(f"{name} has no version {version!r}")


def crd_schema(name: str, version: str | None = None) -> dict[str, Any]:
    """The `openAPIV3Schema` of one version of a CRD."""
    schema: dict[str, Any] = crd_version(name, version)["schema"]["openAPIV3Schema"]
    return schema


def format_warning(message: str) -> str:
    """A `Warning` response header value as the API server writes it: `299 - "<escaped message>"`."""
    escaped = message.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


# --------------------------------------------------------------------------- names and labels

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + r")*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(" + _QUALIFIED_NAME + r")?"

DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_DNS1123_LABEL}')"
)
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{_DNS1123_SUBDOMAIN}')"
)
_QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    f"'{_QUALIFIED_NAME}')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    f"used for validation is '{_LABEL_VALUE}')"
)


def _length_and_pattern_errors(value: str, limit: int, pattern: str, message: str) -> list[str]:
    """The API server's two checks on a name: at most `limit` characters, and matching `pattern`."""
    errors = []
    if len(value) > limit:
        errors.append(f"must be no more than {limit} characters")
    if not re.fullmatch(pattern, value):
        errors.append(message)
    return errors


def dns1123_label_errors(value: str) -> list[str]:
    """Why `value` is not an RFC 1123 label (namespace names), as the API server words it."""
    return _length_and_pattern_errors(value, 63, _DNS1123_LABEL, DNS1123_LABEL_MESSAGE)


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Why `value` is not an RFC 1123 subdomain (most object names), as the API server words it."""
    return _length_and_pattern_errors(value, 253, _DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MESSAGE)


def qualified_name_errors(value: str) -> list[str]:
    """Why `value` is not a valid label or annotation key."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
        prefix_errors = dns1123_subdomain_errors(prefix)
        if prefix_errors:
            return ["prefix part " + e for e in prefix_errors]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            f"for validation is '{_QUALIFIED_NAME}') with an optional DNS subdomain prefix and '/' (e.g. "
            "'example.com/MyName')"
        ]
    if not name:
        return ["name part must be non-empty"]
    errors = _length_and_pattern_errors(name, 63, _QUALIFIED_NAME, _QUALIFIED_NAME_MESSAGE)
    return ["name part " + e if e.startswith("must be no more") else e for e in errors]


def label_value_errors(value: str) -> list[str]:
    """Why `value` is not a valid label value."""
    return _length_and_pattern_errors(value, 63, _LABEL_VALUE, _LABEL_VALUE_MESSAGE)


def _quote(value: Any) -> str:
    """Go's `%q`/`%v` look for a value inside a message: strings quoted, numbers bare."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(_json_type(value))


def _invalid(field_path: str, value: Any, detail: str) -> dict[str, str]:
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {_quote(value)}: {detail}", "field": field_path}


def _required(field_path: str, detail: str = "") -> dict[str, str]:
    message = f"Required value: {detail}" if detail else "Required value"
    return {"reason": "FieldValueRequired", "message": message, "field": field_path}


def validate_object_meta(meta: Any, *, namespaced: bool, name_rule: str = "subdomain") -> list[dict[str, str]]:
    """The ObjectMeta checks every write goes through: name, namespace, labels and annotations."""
    if not isinstance(meta, dict):
        return [_required("metadata")] if meta is None else [_type_error("metadata", meta, "object")]
    causes: list[dict[str, str]] = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            causes.append(_required("metadata.name", "name or generateName is required"))
    elif not isinstance(name, str):
        causes.append(_type_error("metadata.name", name, "string"))
    else:
        check = dns1123_label_errors if name_rule == "label" else dns1123_subdomain_errors
        causes.extend(_invalid("metadata.name", name, e) for e in check(name))
    namespace = meta.get("namespace")
    if namespaced and isinstance(namespace, str) and namespace:
        causes.extend(_invalid("metadata.namespace", namespace, e) for e in dns1123_label_errors(namespace))
    for key in ("labels", "annotations"):
        causes.extend(_string_map_causes(meta.get(key), f"metadata.{key}", labels=key == "labels"))
    return causes


def _string_map_causes(value: Any, path: str, *, labels: bool) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [_type_error(path, value, "object")]
    causes: list[dict[str, str]] = []
    total = 0
    for key, item in value.items():
        causes.extend(_invalid(path, key, e) for e in qualified_name_errors(key))
        if not isinstance(item, str):
            causes.append(_type_error(f"{path}.{key}", item, "string"))
            continue
        total += len(key) + len(item)
        if labels:
            causes.extend(_invalid(path, item, e) for e in label_value_errors(item))
    if not labels and total > 256 * 1024:
        causes.append(
            {"reason": "FieldValueTooLong", "message": "Too long: must have at most 262144 bytes", "field": path}
        )
    return causes


# --------------------------------------------------------------------------- the structural walk

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_matches(value: Any, expected: str) -> bool:
    actual = _json_type(value)
    return actual == expected or (expected == "number" and actual == "integer")


def _type_error(path: str, value: Any, expected: str) -> dict[str, str]:
    actual = _json_type(value)
    return {
        "reason": "FieldValueInvalid",
        "message": f'Invalid value: "{actual}": {path} in body must be of type {expected}: "{actual}"',
        "field": path,
    }


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _go_map(item: dict[str, Any], keys: list[str]) -> str:
    inner = ", ".join(f'"{k}":{_quote(item.get(k))}' for k in sorted(keys))
    return "map[string]interface {}{" + inner + "}"


class _Walker:
    """One pass over one object: collects unknown fields and field errors."""

    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.causes: list[dict[str, str]] = []

    # ---- prune and default

    def normalize(self, value: Any, schema: dict[str, Any], path: str) -> Any:
        """A pruned and defaulted copy of `value`."""
        if isinstance(value, dict):
            return self._normalize_object(value, schema, path)
        if isinstance(value, list):
            items = schema.get("items")
            if isinstance(items, dict):
                return [self.normalize(v, items, f"{path}[{i}]") for i, v in enumerate(value)]
            return copy.deepcopy(value)
        return value

    def _normalize_object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> Any:
        props: dict[str, Any] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
        embedded = schema.get("x-kubernetes-embedded-resource") is True
        if not props and addl is None and not preserve and not embedded and schema.get("type") != "object":
            # The schema expects a scalar here; validation reports the type, pruning leaves it alone.
            return copy.deepcopy(value)
        out: dict[str, Any] = {}
        for key, child in value.items():
            child_path = _child(path, key)
            if key in props:
                sub = props[key]
                if child is None and not sub.get("nullable"):
                    if "default" in sub:
                        out[key] = self.normalize(copy.deepcopy(sub["default"]), sub, child_path)
                    continue
                out[key] = self.normalize(child, sub, child_path)
            elif embedded and key in ("apiVersion", "kind"):
                out[key] = child
            elif embedded and key == "metadata":
                out[key] = self.prune_object_meta(child, child_path)
            elif isinstance(addl, dict):
                if child is None and not addl.get("nullable"):
                    continue
                out[key] = self.normalize(child, addl, child_path)
            elif addl is True or preserve:
                out[key] = copy.deepcopy(child)
            else:
                self.unknown.append(child_path)
        for key, sub in props.items():
            if key not in out and key not in value and "default" in sub:
                out[key] = self.normalize(copy.deepcopy(sub["default"]), sub, _child(path, key))
        return out

    def prune_object_meta(self, meta: Any, path: str) -> Any:
        """`metadata` reduced to the ObjectMeta fields."""
        if not isinstance(meta, dict):
            return meta
        out = {}
        for key, value in meta.items():
            if key in OBJECT_META_FIELDS:
                out[key] = copy.deepcopy(value)
            else:
                self.unknown.append(_child(path, key))
        return out

    # ---- validate

    def validate(self, value: Any, schema: dict[str, Any], path: str) -> None:
        """Record a cause for every way `value` breaks `schema`."""
        if value is None and schema.get("nullable"):
            return
        if schema.get("x-kubernetes-int-or-string"):
            if isinstance(value, bool) or not isinstance(value, int | str):
                self.causes.append(_type_error(path, value, "integer,string"))
                return
        else:
            expected = schema.get("type")
            if expected and not _type_matches(value, expected):
                self.causes.append(_type_error(path, value, expected))
                return
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            supported = ", ".join(_quote(v) for v in enum)
            self.causes.append(
                {
                    "reason": "FieldValueNotSupported",
                    "message": f"Unsupported value: {_quote(value)}: supported values: {supported}",
                    "field": path,
                }
            )
        if isinstance(value, str):
            self._validate_string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._validate_number(value, schema, path)
        elif isinstance(value, list):
            self._validate_array(value, schema, path)
        elif isinstance(value, dict):
            self._validate_object(value, schema, path)
        self._validate_combinators(value, schema, path)

    def _validate_combinators(self, value: Any, schema: dict[str, Any], path: str) -> None:
        for sub in schema.get("allOf") or []:
            self.validate(value, sub, path)
        # anyOf on an int-or-string field only restates the two types; the flag already checked them.
        any_of = None if schema.get("x-kubernetes-int-or-string") else schema.get("anyOf")
        if any_of:
            trials = [self._trial(value, sub, path) for sub in any_of]
            if all(trials):
                self.causes.extend(trials[0])
        one_of = schema.get("oneOf")
        if one_of:
            passing = sum(1 for sub in one_of if not self._trial(value, sub, path))
            if passing != 1:
                self.causes.append(_invalid(path, value, f"{path} in body must match exactly one schema in oneOf"))
        negated = schema.get("not")
        if isinstance(negated, dict) and not self._trial(value, negated, path):
            self.causes.append(_invalid(path, value, f"{path} in body must not validate the schema (not)"))

    def _trial(self, value: Any, schema: dict[str, Any], path: str) -> list[dict[str, str]]:
        trial = _Walker()
        trial.validate(value, schema, path)
        return trial.causes

    def _validate_string(self, value: str, schema: dict[str, Any], path: str) -> None:
        max_length = schema.get("maxLength")
        if max_length is not None and len(value) > max_length:
            self.causes.append(
                {
                    "reason": "FieldValueTooLong",
                    "message": f"Too long: may not be more than {max_length} bytes",
                    "field": path,
                }
            )
        min_length = schema.get("minLength")
        if min_length is not None and len(value) < min_length:
            self.causes.append(_invalid(path, value, f"{path} in body should be at least {min_length} chars long"))
        pattern = schema.get("pattern")
        if pattern is not None and not re.search(pattern, value):
            self.causes.append(_invalid(path, value, f"{path} in body should match '{pattern}'"))
        if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
            self.causes.append(_invalid(path, value, f"{path} in body must be of type date-time: {_quote(value)}"))

    def _validate_number(self, value: float, schema: dict[str, Any], path: str) -> None:
        bounds = _INT_RANGES.get(schema.get("format", ""))
        if bounds and not bounds[0] <= value <= bounds[1]:
            self.causes.append(_invalid(path, value, f'{path} in body must be of type {schema["format"]}: "{value}"'))
        minimum = schema.get("minimum")
        if minimum is not None:
            if schema.get("exclusiveMinimum") and value <= minimum:
                self.causes.append(_invalid(path, value, f"{path} in body should be greater than {minimum}"))
            elif value < minimum:
                self.causes.append(
                    _invalid(path, value, f"{path} in body should be greater than or equal to {minimum}")
                )
        maximum = schema.get("maximum")
        if maximum is not None:
            if schema.get("exclusiveMaximum") and value >= maximum:
                self.causes.append(_invalid(path, value, f"{path} in body should be less than {maximum}"))
            elif value > maximum:
                self.causes.append(_invalid(path, value, f"{path} in body should be less than or equal to {maximum}"))
        multiple = schema.get("multipleOf")
        if multiple and not math.isclose(value / multiple, round(value / multiple)):
            self.causes.append(_invalid(path, value, f"{path} in body should be a multiple of {multiple}"))

    def _validate_array(self, value: list[Any], schema: dict[str, Any], path: str) -> None:
        min_items = schema.get("minItems")
        if min_items is not None and len(value) < min_items:
            self.causes.append(_invalid(path, len(value), f"{path} in body should have at least {min_items} items"))
        max_items = schema.get("maxItems")
        if max_items is not None and len(value) > max_items:
            self.causes.append(
                {
                    "reason": "FieldValueTooMany",
                    "message": f"Too many: {len(value)}: must have at most {max_items} items",
                    "field": path,
                }
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                self.validate(item, items, f"{path}[{i}]")
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set" or schema.get("uniqueItems"):
            seen: list[Any] = []
            for i, item in enumerate(value):
                if item in seen:
                    self.causes.append(
                        {
                            "reason": "FieldValueDuplicate",
                            "message": f"Duplicate value: {_quote(item)}",
                            "field": f"{path}[{i}]",
                        }
                    )
                seen.append(item)
        elif list_type == "map":
            keys: list[str] = schema.get("x-kubernetes-list-map-keys") or []
            seen_keys: set[str] = set()
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    continue
                identity = json.dumps([item.get(k) for k in keys])
                if identity in seen_keys:
                    self.causes.append(
                        {
                            "reason": "FieldValueDuplicate",
                            "message": f"Duplicate value: {_go_map(item, keys)}",
                            "field": f"{path}[{i}]",
                        }
                    )
                seen_keys.add(identity)

    def _validate_object(self, value: dict[str, Any], schema: dict[str, Any], path: str) -> None:
        for name in schema.get("required") or []:
            if name not in value:
                self.causes.append(_required(_child(path, name)))
        props: dict[str, Any] = schema.get("properties") or {}
        addl = schema.get("additionalProperties")
        for key, child in value.items():
            if key in props:
                self.validate(child, props[key], _child(path, key))
            elif isinstance(addl, dict):
                self.validate(child, addl, _child(path, key))
        if schema.get("x-kubernetes-embedded-resource"):
            for key in ("apiVersion", "kind"):
                if not value.get(key):
                    self.causes.append(_required(_child(path, key), "must not be empty"))
        min_props = schema.get("minProperties")
        if min_props is not None and len(value) < min_props:
            self.causes.append(
                _invalid(path, len(value), f"{path} in body should have at least {min_props} properties")
            )
        max_props = schema.get("maxProperties")
        if max_props is not None and len(value) > max_props:
            self.causes.append(_invalid(path, len(value), f"{path} in body should have at most {max_props} properties"))


def validate_custom_resource(
    obj: dict[str, Any],
    crd: str,
    version: str | None = None,
    *,
    strict: bool = False,
    namespaced: bool = True,
    check_metadata: bool = True,
) -> ValidationResult:
    """Prune, default and validate `obj` against version `version` of the CRD named `crd`.

    With `strict`, each unknown field is also a cause (the API server answers a Strict request
    with 400 BadRequest instead; `portal.devcluster` does that itself from `unknown_fields`).
    """
    schema = crd_schema(crd, version)
    walker = _Walker()
    props: dict[str, Any] = schema.get("properties") or {}
    pruned: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "metadata":
            pruned[key] = walker.prune_object_meta(value, "metadata")
        elif key in props:
            if value is None and not props[key].get("nullable"):
                continue
            pruned[key] = walker.normalize(value, props[key], key)
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            pruned[key] = copy.deepcopy(value)
        else:
            walker.unknown.append(key)
    for key, value in pruned.items():
        if key != "metadata":
            walker.validate(value, props[key], key)
    for name in schema.get("required") or []:
        if name not in pruned:
            walker.causes.append(_required(name))
    causes = list(walker.causes)
    if check_metadata:
        causes = validate_object_meta(pruned.get("metadata"), namespaced=namespaced) + causes
    if strict:
        causes.extend({"reason": "FieldValueInvalid", "message": "unknown field", "field": p} for p in walker.unknown)
    warnings = [f'unknown field "{path}"' for path in walker.unknown]
    return ValidationResult(pruned=pruned, warnings=warnings, causes=causes, unknown_fields=list(walker.unknown))


def validate_inference_service(obj: dict[str, Any], strict: bool = False) -> ValidationResult:
    """Check an InferenceService manifest as an API server with the KServe v1beta1 CRD would."""
    return validate_custom_resource(obj, INFERENCE_SERVICE_CRD, "v1beta1", strict=strict)


# --------------------------------------------------------------------------- KServe admission

KSERVE_VALIDATOR = "inferenceservice.kserve-webhook-server.validator"
_ISVC_NAME = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_PREDICTOR_IMPLEMENTATIONS = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
    "model",
)


def inference_service_admission(obj: dict[str, Any]) -> str | None:
    """What KServe's validating webhook objects to in an InferenceService, or None.

    Only the two checks a hand-written manifest commonly trips are emulated: the name must be a
    DNS-1035 label (KServe derives Service names from it), and the predictor must name exactly
    one model implementation (or custom containers).
    """
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not re.fullmatch(_ISVC_NAME, name):
        return (
            f'The InferenceService "{name}" is invalid: a InferenceService name must consist of lower case '
            "alphanumeric characters or '-', and must start with alphabetical character. (e.g. \"my-name\" "
            f"or \"abc-123\", regex used for validation is '{_ISVC_NAME}')"
        )
    predictor = (obj.get("spec") or {}).get("predictor") or {}
    chosen = [key for key in _PREDICTOR_IMPLEMENTATIONS if predictor.get(key) is not None]
    if len(chosen) > 1 or (not chosen and not predictor.get("containers")):
        names = ", ".join(_PREDICTOR_IMPLEMENTATIONS)
        return f"exactly one of [{names}] must be specified in PredictorSpec"
    return None
