"""Calibration from real start-ups: measured beats guessed.

A pasted vLLM start-up log (``portal/services/vllm_logs.py`` reads it) gives the activation peak,
the non-torch memory and the CUDA graphs vLLM measured for one model on one GPU. They are stored
per (GPU profile, vLLM version, model shape, tensor-parallel size) and later estimates with the same
key use them instead of the model ("calibrated from a start-up on 2026-12-02").

The model shape is keyed by what the overheads depend on (``shape_key``), not by the repository:
a fine-tune of Llama-3.1-8B reuses Llama-3.1-8B's calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from portal.errors import InvalidInput, NotFound
from portal.extensions import db
from portal.models.calibration import FitCalibration
from portal.services import history
from portal.services.fit import ModelShape, Overheads
from portal.services.gpu_profiles import GpuProfile, find_profile
from portal.services.vllm_logs import LogParseError, StartupLog, calibration_gaps, parse_startup_log
from portal.services.vllm_memory import CUDA_GRAPHS_PROFILED_FROM, parse_version

MAX_LOG_BYTES = 5 * 1024 * 1024


def shape_key(shape: ModelShape) -> str:
    """What a model's overheads depend on: type, layers, widths, vocabulary, KV heads, experts."""
    return (
        f"{shape.model_type or 'unknown'}:L{shape.num_layers}:h{shape.hidden_size or 0}"
        f":i{shape.intermediate_size or 0}:v{shape.vocab_size or 0}"
        f":kv{shape.num_kv_heads}x{shape.head_dim}:e{shape.num_experts or 0}"
    )


@dataclass(frozen=True)
class CalibrationRequest:
    """What the caller gives besides the log (the log wins where it names the same thing)."""

    gpu: GpuProfile
    shape: ModelShape
    model_ref: str
    vllm_version: str | None = None
    tensor_parallel: int | None = None


def parse_log(text: str) -> StartupLog:
    """Parse a pasted log; InvalidInput (400) naming what is missing when it cannot calibrate."""
    if len(text.encode("utf-8", errors="replace")) > MAX_LOG_BYTES:
        raise InvalidInput(
            f"the log is larger than {MAX_LOG_BYTES // 2**20} MiB: paste the start-up part", code="log_too_large"
        )
    try:
        log = parse_startup_log(text)
    except LogParseError as exc:
        raise InvalidInput(
            f"not a vLLM start-up log: {exc}", code="unrecognised_log", details={"missing": exc.missing}
        ) from exc
    gaps = calibration_gaps(log)
    if gaps:
        raise InvalidInput(
            "the log has no memory-profiling figures to calibrate from: missing " + "; ".join(gaps),
            code="incomplete_log",
            details={"missing": gaps, "parsed": log.to_dict()},
        )
    return log


def record_calibration(
    text: str, request: CalibrationRequest, *, actor: str, parsed: StartupLog | None = None
) -> dict[str, Any]:
    """Store the overheads a start-up log measured; one unit of work with its history event."""
    log = parsed or parse_log(text)
    version = log.vllm_version or request.vllm_version
    if not version:
        raise InvalidInput(
            "the log does not name the vLLM version: pass vllmVersion",
            code="missing_vllm_version",
            details={"field": "vllmVersion"},
        )
    tp = log.tensor_parallel_size or request.tensor_parallel or 1
    assert log.activation_gib is not None and log.non_torch_gib is not None
    row = FitCalibration(
        gpu_profile=request.gpu.name,
        vllm_version=version,
        shape_key=shape_key(request.shape),
        tensor_parallel=tp,
        model_ref=request.model_ref,
        activation_gib=log.activation_gib,
        non_torch_gib=log.non_torch_gib,
        cuda_graph_gib=log.cuda_graph_gib,
        kv_cache_gib=log.kv_cache_gib,
        kv_tokens=log.kv_tokens,
        max_model_len=log.max_model_len,
        total_memory_gib=log.total_gpu_memory_gib,
        log_format=log.log_format,
        actor=actor,
    )
    db.session.add(row)
    db.session.flush()
    history.record(
        "fit_calibrated",
        actor=actor,
        model_id=request.model_ref,
        metadata={
            "gpuType": request.gpu.name,
            "vllmVersion": version,
            "activationGiB": log.activation_gib,
            "nonTorchGiB": log.non_torch_gib,
            "kvCacheGiB": log.kv_cache_gib,
        },
        commit=False,
    )
    db.session.commit()
    return {"calibration": row.to_dict(), "parsed": log.to_dict()}


def calibrate(
    text: str,
    *,
    gpu_type: str,
    hf_model_id: str | None = None,
    model_id: str | None = None,
    vllm_version: str | None = None,
    tensor_parallel: int | None = None,
    actor: str,
) -> dict[str, Any]:
    """Calibrate from a start-up log of ``hf_model_id`` or catalog entry ``model_id`` on ``gpu_type``."""
    from portal.services import discovery
    from portal.services.catalog import get_catalog

    log = parse_log(text)  # a bad log is refused before any Hub or catalog lookup
    profile = find_profile(discovery.app_profiles(), gpu_type)
    if profile is None:
        raise NotFound(f"unknown GPU type {gpu_type!r}", code="unknown_gpu_type", details={"gpuType": gpu_type})
    if model_id:
        inputs = discovery.inputs_for_entry(get_catalog().get_entry(model_id))
        ref = model_id
    elif hf_model_id:
        inputs = discovery.inputs_from_hub(hf_model_id)
        ref = hf_model_id
    else:
        raise InvalidInput("give hfModelId or model", code="invalid_calibration", details={"field": "hfModelId"})
    request = CalibrationRequest(profile, inputs.shape, ref, vllm_version, tensor_parallel)
    return record_calibration(text, request, actor=actor, parsed=log)


def list_calibrations(gpu_type: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest calibrations first, optionally for one GPU profile."""
    query = select(FitCalibration).order_by(FitCalibration.created_at.desc(), FitCalibration.id.desc())
    if gpu_type:
        query = query.where(FitCalibration.gpu_profile == gpu_type)
    return [row.to_dict() for row in db.session.scalars(query.limit(limit))]


def get_calibration(calibration_id: int) -> dict[str, Any]:
    """One calibration, or NotFound."""
    row = db.session.get(FitCalibration, calibration_id)
    if row is None:
        raise NotFound("calibration not found", code="calibration_not_found", details={"id": calibration_id})
    return dict(row.to_dict())


def calibrated_overheads(gpu_name: str, vllm_version: str | None, shape: ModelShape, tp: int) -> Overheads | None:
    """The newest calibration's overheads for this GPU, version, model shape and tp, if any."""
    if not vllm_version:
        return None
    row = db.session.scalars(
        select(FitCalibration)
        .where(
            FitCalibration.gpu_profile == gpu_name,
            FitCalibration.vllm_version == vllm_version,
            FitCalibration.shape_key == shape_key(shape),
            FitCalibration.tensor_parallel == tp,
        )
        .order_by(FitCalibration.created_at.desc(), FitCalibration.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    source = f"calibrated from a start-up on {row.created_at:%Y-%m-%d} (calibration {row.id})"
    # Only releases that profile CUDA graphs (0.21+) count them in the KV budget.
    parsed = parse_version(vllm_version)
    graphs = row.cuda_graph_gib or 0.0 if parsed is not None and parsed >= CUDA_GRAPHS_PROFILED_FROM else 0.0
    return Overheads(
        activation_gib=row.activation_gib,
        non_torch_gib=row.non_torch_gib,
        source=source,
        cuda_graph_gib=graphs,
        activation_source=source,
        non_torch_source=source,
        cuda_graph_source=source if graphs else "not in the budget of this vLLM release",
    )
