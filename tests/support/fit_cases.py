"""The real vLLM start-ups of tests/data/vllm-startup-measurements.json, as estimator inputs (tests and bench)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from portal.services.fit import (
    FitReport,
    GpuSpec,
    ModelShape,
    Overheads,
    estimate_fit,
    weights_from_parameter_counts,
)

DATA = Path(__file__).resolve().parent.parent / "data"
CASES: list[dict[str, Any]] = json.loads((DATA / "vllm-startup-measurements.json").read_text())
INPUTS: dict[str, Any] = json.loads((DATA / "fit-case-models.json").read_text())

# Meta-Llama-3-8B on an A100-40GB (#12330) logged a 9.37 GiB activation peak at max-model-len 8192.
# The same model and version era with default settings logged 1.26 GiB (vllm-project/vllm#10511,
# H100, `vllm serve meta-llama/Meta-Llama-3-8B`), and the model gives 0.84: that run used settings
# the quoted log does not show, so its KV cache cannot be predicted from what is known.
UNKNOWN_SETTINGS = frozenset({"https://github.com/vllm-project/vllm/issues/12330"})


def case_id(case: dict[str, Any]) -> str:
    """A short readable id: model, GPU memory, context."""
    return f"{case['model'].split('/')[-1]}-{case['gpu_total_gib']}GiB-len{case['max_model_len']}"


def case_version(case: dict[str, Any]) -> str:
    """The vLLM version the log shows, else the one its format dates it to."""
    return str(case["vllm_version"] or INPUTS["versionsWhenNotLogged"][case["url"]]["version"])


def predict(case: dict[str, Any], overheads: Overheads | None = None) -> FitReport:
    """The estimate for a logged start-up, from the inputs a user would give."""
    model = INPUTS["models"][case["model"]]
    gpu = INPUTS["gpus"][case["gpu"]]
    flags = INPUTS["flagsWhenLogged"].get(case["url"], {})
    return estimate_fit(
        ModelShape.from_config(model["config"]),
        weights_from_parameter_counts(model["parameters"]),
        GpuSpec(gpu["name"], case["gpu_total_gib"], features=tuple(gpu["features"])),
        max_model_len=case["max_model_len"],
        tensor_parallel=case["tp"],
        gpu_memory_utilization=case["gpu_memory_utilization"],
        dtype=case["dtype"] or "auto",
        vllm_version=case_version(case),
        overheads=overheads,
        **flags,
    )


def logged_tokens(case: dict[str, Any]) -> int:
    """KV-cache tokens vLLM reported (blocks x 16 when only blocks are printed)."""
    return int(case["kv_cache_tokens"] or case["gpu_blocks"] * 16)


def started(case: dict[str, Any]) -> bool:
    """False for the start-up vLLM refused (max seq len larger than the KV cache)."""
    return "larger than the maximum number of tokens" not in case["quote"]


def quoted_log(case: dict[str, Any]) -> str:
    """The quoted lines, one per line, as the log printed them."""
    return "\n".join(part.strip() for part in case["quote"].split(" | "))
