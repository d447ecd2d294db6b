"""The what-if calculator: a fit report for any model, GPU and vLLM settings, before deploying.

Inputs come from the Hub (``hfModelId``) or a catalog entry (``model``; its ``vllm`` block gives the
defaults the request overrides). The vLLM version modelled is, in order: the request's
``vllmVersion``, the runtime's image tag (``vllm/vllm-openai:v0.19.0`` on the ServingRuntime the
entry uses), the ``VLLM_VERSION`` setting; else "version unknown". Calibrations from real start-ups
(``portal/services/calibration.py``) replace the modelled overheads when one matches.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from portal.errors import InvalidInput, NotFound, PortalError
from portal.extensions import current_settings
from portal.services import calibration, discovery
from portal.services.cluster import get_serving_runtime
from portal.services.fit import (
    SERVING_DTYPE_BYTES,
    FitReport,
    ModelShape,
    WeightsInfo,
    estimate_fit,
    normalize_dtype,
    recommend_flags,
)
from portal.services.gpu_profiles import GpuProfile, find_profile
from portal.services.manifests import DEFAULT_RUNTIME

RUNTIME_VERSION_TTL = 60.0
QUANTIZATION_BYTES_PER_WEIGHT: Mapping[str, float] = {
    "fp8": 1.0,
    # 4-bit formats, group size 128: 0.5 B + a 16-bit scale and a 4-bit zero per 128 weights
    "awq": 0.5 + 2 / 128 + 0.5 / 128,
    "gptq": 0.5 + 2 / 128 + 0.5 / 128,
    "int4": 0.5 + 2 / 128 + 0.5 / 128,
    "int8": 1.0 + 2 / 128,
}
_IMAGE_TAG = re.compile(r":v?(\d+\.\d+(?:\.\d+){0,2}(?:[.+-]?[0-9A-Za-z.]*)?)$")


@dataclass(frozen=True)
class WhatIf:
    """One calculator request (None = the entry's value, else vLLM's default)."""

    hf_model_id: str | None = None
    model_id: str | None = None
    gpu_types: tuple[str, ...] = ()
    gpus: int | None = None
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_dtype: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    vllm_version: str | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool | None = None


class _RuntimeVersionCache:
    """Runtime image versions per (namespace, runtime), for a minute: the calculator runs as people type."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[tuple[str, str], tuple[float, str | None]] = {}


_RUNTIME_VERSIONS = _RuntimeVersionCache()


def version_from_image(image: str) -> str | None:
    """``vllm/vllm-openai:v0.19.0`` → ``0.19.0``; None for ``latest``, digests or no tag."""
    name = image.split("@", 1)[0]
    m = _IMAGE_TAG.search(name)
    return m.group(1) if m else None


def runtime_image_version(runtime: str) -> str | None:
    """The vLLM version of a ServingRuntime's container image (cached; None when unknown or unreachable)."""
    namespace = current_settings().active_namespace
    key = (namespace, runtime)
    now = time.monotonic()
    with _RUNTIME_VERSIONS.lock:
        cached = _RUNTIME_VERSIONS.values.get(key)
    if cached is not None and now - cached[0] < RUNTIME_VERSION_TTL:
        return cached[1]
    version: str | None = None
    try:
        found = get_serving_runtime(runtime, namespace)
    except PortalError:
        found = None  # an unreachable cluster must not break the calculator: fall back to the setting
    containers = ((found or {}).get("spec") or {}).get("containers") or []
    for container in containers:
        version = version_from_image(str(container.get("image") or ""))
        if version:
            break
    with _RUNTIME_VERSIONS.lock:
        _RUNTIME_VERSIONS.values[key] = (now, version)
    return version


def vllm_version_for(requested: str | None, runtime: str | None) -> tuple[str | None, str]:
    """The vLLM version to model and where it came from."""
    if requested:
        return requested.removeprefix("v"), "requested"
    name = runtime or DEFAULT_RUNTIME
    from_image = runtime_image_version(name)
    if from_image:
        return from_image, f"ServingRuntime {name} image tag"
    setting = current_settings().vllm_version
    if setting:
        return setting, "VLLM_VERSION setting"
    return None, "unknown (no version tag on the runtime image, VLLM_VERSION unset)"


def quantized_inputs(
    shape: ModelShape, weights: WeightsInfo, method: str, serving_bytes: int
) -> tuple[ModelShape, WeightsInfo]:
    """The model as a ``method``-quantized variant would be (embeddings and lm_head stay 16-bit)."""
    key = method.strip().lower()
    if key not in QUANTIZATION_BYTES_PER_WEIGHT:
        allowed = ", ".join(QUANTIZATION_BYTES_PER_WEIGHT)
        raise InvalidInput(f"unknown quantization {method!r} (use one of {allowed})", details={"field": "quantization"})
    if shape.quantization is not None:
        return shape, weights  # already quantized: its checkpoint is what it is
    params = weights.parameter_count
    embed = min((shape.vocab_size or 0) * (shape.hidden_size or 0) * (1 if shape.tie_word_embeddings else 2), params)
    total = math.ceil((params - embed) * QUANTIZATION_BYTES_PER_WEIGHT[key]) + embed * serving_bytes
    variant = WeightsInfo(
        total_bytes=total,
        parameter_count=params,
        exact=False,
        source="quantization what-if",
        note=f"weights estimated as a {key} variant of this model",
    )
    return replace(shape, quantization=key), variant


def _settings_for(request: WhatIf, entry: Mapping[str, Any] | None) -> dict[str, Any]:
    settings = discovery.entry_settings(entry) if entry is not None else {}
    overrides = {
        "max_model_len": request.max_model_len,
        "tensor_parallel": request.gpus,
        "gpu_memory_utilization": request.gpu_memory_utilization,
        "kv_cache_dtype": request.kv_cache_dtype,
        "dtype": request.dtype,
        "max_num_batched_tokens": request.max_num_batched_tokens,
        "max_num_seqs": request.max_num_seqs,
        "enforce_eager": request.enforce_eager,
    }
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return settings


def _profiles_for(names: Sequence[str], profiles: Sequence[GpuProfile]) -> list[GpuProfile]:
    if not names:
        return list(profiles)
    chosen = []
    for name in names:
        profile = find_profile(profiles, name)
        if profile is None:
            raise NotFound(f"unknown GPU type {name!r}", code="unknown_gpu_type", details={"gpuType": name})
        if profile not in chosen:
            chosen.append(profile)
    return chosen


def _candidate(report: FitReport) -> dict[str, Any]:
    return {
        "gpu": report.gpu.name,
        "compatible": report.fits,
        "level": report.level,
        "reason": report.summary,
        "report": report.to_dict(),
        "flags": [f.to_dict() for f in recommend_flags(report)],
    }


def what_if(request: WhatIf) -> dict[str, Any]:
    """Fit reports for the requested model, GPUs and settings (the calculator and ``GET /fit``)."""
    if bool(request.hf_model_id) == bool(request.model_id):
        raise InvalidInput(
            "give exactly one of hfModelId (a Hub model) or model (a catalog entry id)",
            code="invalid_fit_request",
            details={"fields": ["hfModelId", "model"]},
        )
    entry: Mapping[str, Any] | None = None
    if request.model_id:
        from portal.services.catalog import get_catalog

        entry = get_catalog().get_entry(request.model_id)
        inputs = discovery.inputs_for_entry(entry)
    else:
        assert request.hf_model_id is not None
        inputs = discovery.inputs_from_hub(request.hf_model_id)
    settings = _settings_for(request, entry)
    version, version_source = vllm_version_for(request.vllm_version, (entry or {}).get("runtime"))
    shape, weights = inputs.shape, inputs.weights
    if request.quantization:
        wanted = normalize_dtype(settings.get("dtype") or shape.dtype) or "bfloat16"
        shape, weights = quantized_inputs(shape, weights, request.quantization, SERVING_DTYPE_BYTES[wanted])
    profiles = discovery.app_profiles()
    _, present = discovery.fit_profiles()
    candidates = []
    for profile in _profiles_for(request.gpu_types, profiles):
        tp = int(settings.get("tensor_parallel") or 1)
        measured = calibration.calibrated_overheads(profile.name, version or profile.vllm_version, shape, tp)
        report = estimate_fit(
            shape, weights, profile, profiles=profiles, vllm_version=version, overheads=measured, **settings
        )
        row = _candidate(report)
        row["inCluster"] = profile.name.lower() in present
        candidates.append(row)
    fitting = sorted(
        (c for c in candidates if c["compatible"]), key=lambda c: int(c["report"]["gpu"]["totalMemoryBytes"])
    )
    out: dict[str, Any] = {
        "modelId": request.model_id,
        "hfModelId": request.hf_model_id or (entry or {}).get("hfModelId"),
        "source": inputs.source,
        "vllmVersion": version,
        "vllmVersionSource": version_source,
        "compatible": bool(fitting),
        "best": fitting[0]["gpu"] if fitting else None,
        "candidates": candidates,
    }
    if len(candidates) == 1:
        only = candidates[0]
        out.update(gpuType=only["gpu"], level=only["level"], reason=only["reason"], report=only["report"])
    return out
