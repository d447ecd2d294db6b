"""Fit calculator pages: change GPU, count, context, utilization, KV dtype and version; see the verdict."""

from __future__ import annotations

from typing import Any

from flask import render_template, request
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from portal.errors import PortalError
from portal.schemas.fit import DTYPES, KV_CACHE_DTYPES, FitArgs, what_if_request
from portal.services import discovery, fit_measurement
from portal.services.fit_calculator import what_if
from portal.web import bp

# (css key, label, memory field) in the order the bar stacks them
SEGMENTS = (
    ("weights", "Weights", "weightsPerGpuBytes"),
    ("activation", "Activation peak", "activationBytes"),
    ("non-torch", "Non-torch (CUDA context, NCCL)", "nonTorchBytes"),
    ("cuda-graphs", "CUDA graphs", "cudaGraphsBytes"),
    ("kv", "KV cache", "kvBudgetBytes"),
    ("unused", "Left free (1 - utilization)", "unusedBytes"),
)
BAR_WIDTH = 1000
GIB = 2**30


def memory_bar(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Stacked segments of one GPU's memory (SVG x/width on a 0-1000 scale); a shortfall shows past the end."""
    memory = report["memory"]
    parts = [(key, label, max(0, int(memory[field]))) for key, label, field in SEGMENTS]
    short = max(0, -int(memory["kvBudgetBytes"]))
    if short:
        parts.append(("short", "Missing (does not fit)", short))
    scale = max(int(memory["totalBytes"]), sum(value for _, _, value in parts)) or 1
    out, x = [], 0.0
    for key, label, value in parts:
        width = value / scale * BAR_WIDTH
        out.append({"key": key, "label": label, "gib": value / GIB, "x": round(x, 2), "width": round(width, 2)})
        x += width
    return out


def _form_args(args: MultiDict[str, str]) -> dict[str, Any]:
    """Query arguments without empty fields (an emptied input means "default")."""
    data: dict[str, Any] = {k: v for k, v in args.items() if v.strip() != "" and k != "gpuType"}
    data["gpuType"] = [v for v in args.getlist("gpuType") if v.strip()]
    return data


def _calculate(args: MultiDict[str, str]) -> tuple[dict[str, Any] | None, str | None, int]:
    data = _form_args(args)
    if not data.get("hfModelId") and not data.get("model"):
        return None, None, 200
    try:
        loaded = FitArgs().load(data)
    except ValidationError as exc:
        errors = exc.messages if isinstance(exc.messages, dict) else {"input": exc.messages}
        return None, "; ".join(f"{field}: {errs}" for field, errs in errors.items()), 422
    try:
        return what_if(what_if_request(loaded)), None, 200
    except PortalError as exc:
        # The panel loads by itself on model pages: a model that cannot be estimated (no Hub, no weights,
        # unknown id) is a message in the panel, not a failed request.
        return None, f"No estimate: {exc.message}", 200


def _context(args: MultiDict[str, str]) -> dict[str, Any]:
    return {"args": args}


@bp.app_context_processor
def _fit_form_globals() -> dict[str, Any]:
    # The calculator form is also a panel on the Hub-model and catalog-model pages.
    return {
        "fit_profiles": discovery.app_profiles,
        "fit_kv_dtypes": KV_CACHE_DTYPES,
        "fit_dtypes": DTYPES,
        "memory_bar": memory_bar,
        "fit_measured": fit_measurement.latest,
    }


@bp.get("/fit")
def fit_calculator() -> tuple[str, int]:
    """The Fit calculator page: a model, GPU and vLLM settings in, a verdict and memory picture out."""
    result, error, status = _calculate(request.args)
    return render_template("fit/calculator.html", result=result, error=error, **_context(request.args)), status


@bp.get("/fit/result")
def fit_result() -> tuple[str, int]:
    """The result partial alone (root id ``fit_result``), re-rendered as the form changes."""
    result, error, status = _calculate(request.args)
    return render_template("fit/_fit_result.html", result=result, error=error, **_context(request.args)), status
