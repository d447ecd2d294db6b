"""Catalog entry marshmallow schemas (reference §3.2) and the limits they enforce.

Parsing with issues, canonical JSON and the fast path live in `portal.services.catalog_entry`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

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
MAX_NUM_SEQS = 100_000
# vLLM's --kv-cache-dtype choices (vllm/config/cache.py CacheDType)
KV_CACHE_DTYPES = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc", "fp8_ds_mla", "bfloat16", "float16")
INT64_RANGE = (-(2**63), 2**63 - 1)


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
    kvCacheDtype = fields.String(validate=validate.OneOf(KV_CACHE_DTYPES))
    maxNumBatchedTokens = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_MODEL_LEN))
    maxNumSeqs = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_NUM_SEQS))
    enforceEager = StrictBoolean()
    extraArgs = fields.List(fields.String())


class CatalogTolerationSchema(_Base):
    """A pod toleration, checked with the same rules as the Kubernetes API server."""

    key = fields.String()
    operator = fields.String(validate=validate.OneOf(["Exists", "Equal"]))
    value = fields.String()
    effect = fields.String(validate=validate.OneOf(["", "NoSchedule", "PreferNoSchedule", "NoExecute"]))
    tolerationSeconds = fields.Integer(strict=True, validate=validate.Range(min=INT64_RANGE[0], max=INT64_RANGE[1]))

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


VOLUME_SOURCES = ("persistentVolumeClaim", "secret", "configMap")


class CatalogVolumeSchema(_Base):
    """A pod volume; exactly one source."""

    name = _name()
    persistentVolumeClaim = fields.Nested(CatalogPvcSourceSchema)
    secret = fields.Nested(CatalogSecretSourceSchema)
    configMap = fields.Nested(CatalogConfigMapSourceSchema)

    @validates_schema
    def _one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Without a source Kubernetes silently makes an emptyDir, which is never what an entry meant.
        if sum(1 for source in VOLUME_SOURCES if source in data) != 1:
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
