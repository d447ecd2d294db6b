"""Parsing vLLM start-up logs: every format since 0.6, from real quoted lines and constructed ones."""

from __future__ import annotations

from typing import Any

import pytest

from portal.services.vllm_logs import LogParseError, calibration_gaps, parse_startup_log
from tests.support.fit_cases import CASES
from tests.support.fit_cases import quoted_log as as_log


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model'].split('/')[-1]}-{c['max_model_len']}")
def test_quoted_lines_give_the_logged_figures(case: dict[str, Any]) -> None:
    log = parse_startup_log(as_log(case))
    assert log.weights_gib == pytest.approx(case["weights_gib"], abs=0.01)
    assert log.non_torch_gib == pytest.approx(case["non_torch_gib"])
    assert log.kv_cache_gib == pytest.approx(case["kv_cache_gib"])
    expected_tokens = case["kv_cache_tokens"] or case["gpu_blocks"] * 16
    if not log.started:
        assert log.max_seq_len_error == (case["max_model_len"], case["kv_cache_tokens"])
        assert log.gpu_blocks == case["gpu_blocks"]
    else:
        assert log.kv_tokens == expected_tokens
    assert log.max_concurrency == pytest.approx(case["max_concurrency"])
    assert log.concurrency_tokens == case["max_model_len"]
    if case["activation_peak_gib"] is not None:
        assert log.activation_gib == pytest.approx(case["activation_peak_gib"])
    else:  # the 0.6.4 one-liner: peak_torch_memory includes the weights
        assert log.activation_gib == pytest.approx(2.07 if case["max_model_len"] == 20000 else 2.99, abs=0.01)
    if case["vllm_version"] == "0.8.2":
        assert log.vllm_version == "0.8.2"
        assert (log.max_model_len, log.max_num_batched_tokens, log.max_num_seqs) == (2048, 2048, 192)
        assert log.gpu_memory_utilization == pytest.approx(0.8938626454842437)
    if case["vllm_version"] == "0.19.0":
        assert log.log_format == "v1" and log.max_model_len == 8192
    assert not calibration_gaps(log)


def test_v0_table_format_of_0_6_5() -> None:
    text = """INFO 12-13 19:54:18 worker.py:243] Memory profiling results:
INFO 12-13 19:54:18 worker.py:243] duration     0.75 seconds
INFO 12-13 19:54:18 worker.py:243] total_gpu_memory     79.22GiB
INFO 12-13 19:54:18 worker.py:243] gpu_memory_utilization       0.90
INFO 12-13 19:54:18 worker.py:243] the current vLLM instance can use    71.29GiB
INFO 12-13 19:54:18 worker.py:243] model weights take   14.96GiB
INFO 12-13 19:54:18 worker.py:243] non_torch_memory     1.79GiB
INFO 12-13 19:54:18 worker.py:243] PyTorch activation peak memory       1.26GiB
INFO 12-13 19:54:18 worker.py:243] available_kv_cache_memory    53.29GiB
INFO 12-13 19:54:19 executor_base.py:92] # CUDA blocks: 27284, # CPU blocks: 2048"""
    log = parse_startup_log(text)
    assert log.log_format == "v0-0.6.5"
    assert (log.total_gpu_memory_gib, log.gpu_memory_utilization, log.weights_gib) == (79.22, 0.90, 14.96)
    assert (log.non_torch_gib, log.activation_gib, log.kv_cache_gib) == (1.79, 1.26, 53.29)
    assert log.kv_tokens == 27284 * 16


def test_v1_log_with_snapshot_version_graphs_and_tensor_parallel_workers() -> None:
    text = """INFO 04-02 10:00:00 [api_server.py:1] vLLM API server version 0.19.0
INFO 04-02 10:00:01 [utils.py:2] non-default args: {'model_tag': 'x', 'max_model_len': 32768, 'tensor_parallel_size': 2}
(Worker_TP0) INFO [gpu_worker.py:1] worker init memory snapshot: torch_memory=0.00GiB, non_torch_memory=0.51GiB, total_memory=79.19GiB
(Worker_TP0) INFO [gpu_model_runner.py:2] Model loading took 43.51 GiB memory and 30.1 seconds
(Worker_TP1) INFO [gpu_model_runner.py:2] Model loading took 43.51 GiB memory and 30.2 seconds
(Worker_TP0) DEBUG [gpu_worker.py:3] Initial free memory: 78.60 GiB; Requested memory: 0.92 (util), 72.85 GiB
(Worker_TP0) DEBUG [gpu_worker.py:4] Memory profiling takes 20.01 seconds. Total non KV cache memory: 46.79GiB; torch peak memory increase: 1.21GiB; non-torch forward increase memory: 2.07GiB; weights memory: 43.51GiB.
(Worker_TP1) DEBUG [gpu_worker.py:4] Memory profiling takes 20.02 seconds. Total non KV cache memory: 46.80GiB; torch peak memory increase: 1.22GiB; non-torch forward increase memory: 2.07GiB; weights memory: 43.51GiB.
(Worker_TP0) INFO [gpu_worker.py:5] Available KV cache memory: 26.06 GiB
INFO [kv_cache_utils.py:6] GPU KV cache size: 427,008 tokens
INFO [kv_cache_utils.py:7] Maximum concurrency for 32,768 tokens per request: 13.03x
(Worker_TP0) INFO [gpu_model_runner.py:8] Graph capturing finished in 9 secs, took 0.61 GiB"""
    log = parse_startup_log(text)
    assert log.vllm_version == "0.19.0" and log.log_format == "v1"
    assert (log.total_gpu_memory_gib, log.gpu_memory_utilization) == (79.19, 0.92)
    assert (log.activation_gib, log.non_torch_gib) == (1.21, 2.07)  # the first worker's figures
    assert (log.kv_cache_gib, log.kv_tokens, log.cuda_graph_gib) == (26.06, 427_008, 0.61)
    assert (log.max_model_len, log.tensor_parallel_size) == (32768, 2)
    assert (log.concurrency_tokens, log.max_concurrency) == (32768, 13.03)


def test_the_max_seq_len_error_alone_gives_the_kv_tokens() -> None:
    text = (
        "ValueError: The model's max seq len (131072) is larger than the maximum number of tokens that can be "
        "stored in KV cache (40160). Try increasing `gpu_memory_utilization` or decreasing `max_model_len`"
    )
    log = parse_startup_log(text)
    assert not log.started and log.kv_tokens == 40160 and log.max_model_len == 131072
    gaps = calibration_gaps(log)
    assert len(gaps) == 2 and "activation peak" in gaps[0]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n",
        "Traceback (most recent call last):\n  File 'x.py', line 1\nKeyError: 'hello'",
        "INFO 01-01 api_server.py:1] Starting vLLM API server on http://0.0.0.0:8000",
        "\x00\x01binary\xff garbage" * 50,
    ],
)
def test_garbage_is_refused_naming_what_is_missing(text: str) -> None:
    with pytest.raises(LogParseError) as err:
        parse_startup_log(text)
    assert err.value.missing
    assert any("KV" in m or "line" in m for m in err.value.missing)


def test_a_log_cut_before_the_profiling_line_cannot_calibrate() -> None:
    case = next(c for c in CASES if c["vllm_version"] == "0.19.0")
    full = as_log(case)
    truncated = full[: full.index("Memory profiling takes")] + "Memory profiling takes 17.96 seconds. Total non KV"
    with pytest.raises(LogParseError):
        parse_startup_log(truncated.replace("Available KV cache memory", "Available KV"))
    # cut after the KV line but before the profiling figures: tokens yes, overheads no
    partial = parse_startup_log("Model loading took 14.99 GiB memory\nGPU KV cache size: 476,016 tokens")
    assert partial.kv_tokens == 476_016 and partial.weights_gib == 14.99
    assert len(calibration_gaps(partial)) == 2
