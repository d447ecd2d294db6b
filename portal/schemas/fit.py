"""Schemas of the fit API: the what-if calculator's query and calibration requests."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from portal.services.fit import KV_CACHE_DTYPE_BYTES
from portal.services.fit_calculator import QUANTIZATION_BYTES_PER_WEIGHT, WhatIf

VERSION_PATTERN = r"^v?\d+\.\d+(\.\d+){0,2}([.+-]?[0-9A-Za-z.]+)?$"
KV_CACHE_DTYPES = ["auto", *KV_CACHE_DTYPE_BYTES]
DTYPES = ["auto", "bfloat16", "float16", "float32", "half"]


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


def _one_model(data: dict[str, Any]) -> None:
    if bool(data.get("hfModelId")) == bool(data.get("model")):
        raise ValidationError("give exactly one of hfModelId or model", field_name="hfModelId")


class FitArgs(_Lenient):
    """Query of `GET /fit` (what-if calculator)."""

    hfModelId = fields.String(load_default="", validate=validate.Length(max=200), metadata={"description": "Hub id"})
    model = fields.String(load_default="", validate=validate.Length(max=200), metadata={"description": "Catalog id"})
    gpuType = fields.List(
        fields.String(validate=validate.Length(min=1, max=128)),
        load_default=list,
        metadata={"description": "GPU profile; repeat (or comma-separate) for several; none = every profile"},
    )
    gpus = fields.Integer(
        load_default=None, validate=validate.Range(min=1, max=64), metadata={"description": "tensor-parallel size"}
    )
    maxModelLen = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10_000_000))
    gpuMemoryUtilization = fields.Float(load_default=None, validate=validate.Range(min=0.01, max=1.0))
    kvCacheDtype = fields.String(load_default=None, validate=validate.OneOf(KV_CACHE_DTYPES))
    dtype = fields.String(load_default=None, validate=validate.OneOf(DTYPES))
    quantization = fields.String(load_default=None, validate=validate.OneOf(list(QUANTIZATION_BYTES_PER_WEIGHT)))
    vllmVersion = fields.String(
        load_default=None, validate=validate.Regexp(VERSION_PATTERN, error="must look like 0.19.0")
    )
    maxNumBatchedTokens = fields.Integer(load_default=None, validate=validate.Range(min=1, max=10_000_000))
    maxNumSeqs = fields.Integer(load_default=None, validate=validate.Range(min=1, max=100_000))
    enforceEager = fields.Boolean(load_default=None)

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        _one_model(data)


class CalibrationBody(_Lenient):
    """`POST /fit/calibrations`: a pasted vLLM start-up log and what it ran."""

    log = fields.String(required=True, validate=validate.Length(min=1), metadata={"description": "The start-up log"})
    gpuType = fields.String(required=True, validate=validate.Length(min=1, max=128))
    hfModelId = fields.String(load_default="", validate=validate.Length(max=200))
    model = fields.String(load_default="", validate=validate.Length(max=200))
    vllmVersion = fields.String(
        load_default=None,
        validate=validate.Regexp(VERSION_PATTERN, error="must look like 0.19.0"),
        metadata={"description": "Needed when the log does not print it"},
    )
    tensorParallelSize = fields.Integer(load_default=None, validate=validate.Range(min=1, max=64))

    @validates_schema
    def _check(self, data: dict[str, Any], **_: Any) -> None:
        _one_model(data)


class CalibrationQuery(CalibrationBody):
    """`POST /fit/calibrations/upload` query (the log file is the request body)."""

    log = fields.String(load_default="", metadata={"description": "Leave empty: the body is the log"})


class CalibrationListArgs(_Lenient):
    """Query of `GET /fit/calibrations`."""

    gpuType = fields.String(load_default="")


def what_if_request(args: dict[str, Any]) -> WhatIf:
    """A WhatIf from `GET /fit` (or the calculator form) arguments."""
    gpu_types = tuple(t.strip() for value in args.get("gpuType") or [] for t in value.split(",") if t.strip())
    return WhatIf(
        hf_model_id=args.get("hfModelId") or None,
        model_id=args.get("model") or None,
        gpu_types=gpu_types,
        gpus=args.get("gpus"),
        max_model_len=args.get("maxModelLen"),
        gpu_memory_utilization=args.get("gpuMemoryUtilization"),
        kv_cache_dtype=args.get("kvCacheDtype"),
        dtype=args.get("dtype"),
        quantization=args.get("quantization"),
        vllm_version=args.get("vllmVersion"),
        max_num_batched_tokens=args.get("maxNumBatchedTokens"),
        max_num_seqs=args.get("maxNumSeqs"),
        enforce_eager=args.get("enforceEager"),
    )
