"""The estimator against real vLLM start-ups (tests/data/vllm-startup-measurements.json).

Every case: the verdict vLLM reached, KV-cache tokens within 10 % of the logged figure (5 % for the
0.19 cases) and weights within 1 %, predicted from the model's shape, the GPU, the vLLM version and
the flags the log shows — never from the overheads the log printed.
"""

from __future__ import annotations

from typing import Any

import pytest

from portal.services.fit import GIB, Overheads
from tests.support.fit_cases import CASES, UNKNOWN_SETTINGS, case_id, logged_tokens, predict, started


def test_the_data_file_holds_the_seven_cases() -> None:
    assert len(CASES) == 7
    assert sum(1 for c in CASES if c["vllm_version"] == "0.19.0") == 3
    assert sum(1 for c in CASES if not started(c)) == 1


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_verdict_matches_the_start_up(case: dict[str, Any]) -> None:
    report = predict(case)
    assert report.fits is started(case), report.summary


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_weights_within_one_percent(case: dict[str, Any]) -> None:
    report = predict(case)
    assert report.budget.weights_per_gpu_bytes / GIB == pytest.approx(case["weights_gib"], rel=0.01)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            c,
            marks=pytest.mark.xfail(c["url"] in UNKNOWN_SETTINGS, strict=True, reason="settings not in the log"),
        )
        for c in CASES
    ],
    ids=case_id,
)
def test_kv_tokens_match_the_log(case: dict[str, Any]) -> None:
    report = predict(case)
    tolerance = 0.05 if case["vllm_version"] == "0.19.0" else 0.10
    assert report.budget.kv_tokens == pytest.approx(logged_tokens(case), rel=tolerance)


@pytest.mark.parametrize("case", [c for c in CASES if c["activation_peak_gib"] is not None], ids=case_id)
def test_logged_overheads_reproduce_the_logged_kv_cache(case: dict[str, Any]) -> None:
    """With the overheads the log printed (a calibration), the budget arithmetic is exact to 1 %."""
    measured = Overheads(case["activation_peak_gib"], case["non_torch_gib"], source="vLLM log")
    report = predict(case, overheads=measured)
    assert report.budget.kv_budget_bytes / GIB == pytest.approx(case["kv_cache_gib"], rel=0.01)


def test_the_oldest_engine_profiles_with_max_model_len() -> None:
    """V0 without chunked prefill batches max-model-len tokens: 20K → 29K adds ~0.9 GiB (#10517)."""
    short, long = (predict(c) for c in CASES if c["url"].endswith("/10517"))
    assert short.profile_run is not None and long.profile_run is not None
    assert (short.profile_run.max_num_batched_tokens, long.profile_run.max_num_batched_tokens) == (20_000, 29_000)
    growth = long.overheads.activation_gib - short.overheads.activation_gib
    assert growth == pytest.approx(2.99 - 2.07, abs=0.05)


def test_a_start_up_that_fits_reports_its_margin_separately() -> None:
    case = next(c for c in CASES if c["model"].endswith("Llama-3.1-8B-Instruct") and c["max_model_len"] == 20000)
    report = predict(case)
    assert report.fits and report.spare_bytes > 0
    assert f"with {report.spare_bytes / GIB:.2f} GiB to spare" in report.summary
