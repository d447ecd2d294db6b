"""Read a vLLM start-up log: what vLLM measured in its profiling run and the KV cache it reserved.

Pure functions over text. Every format vLLM has printed since 0.6 is recognised:

- weights: ``Loading model weights took 14.9888 GB`` (V0; the figure is GiB), ``Model loading took
  6.0160 GB and 533.85 seconds``, ``Model loading took 14.99 GiB memory`` (V1);
- profiling, V0 0.6.4: ``Memory profiling results: total_gpu_memory=23.58GiB initial_memory_usage=…
  peak_torch_memory=17.06GiB … non_torch_memory=0.35GiB kv_cache_size=3.81GiB
  gpu_memory_utilization=0.90`` (``peak_torch_memory`` includes the weights);
- profiling, V0 0.6.5: the same as a table, one ``name value`` per line (``PyTorch activation peak
  memory 1.26GiB``, ``available_kv_cache_memory 53.29GiB``);
- profiling, V0 0.6.6-0.10: ``the current vLLM instance can use total_gpu_memory (39.50GiB) x
  gpu_memory_utilization (0.90) = 35.55GiB`` + ``model weights take 14.96GiB; non_torch_memory takes
  0.10GiB; PyTorch activation peak memory takes 9.37GiB; the rest of the memory reserved for KV Cache
  is 11.12GiB``;
- profiling, V1: ``Memory profiling takes 17.96 seconds. Total non KV cache memory: 17.12GiB; torch
  peak memory increase: 1.89GiB; non-torch forward increase memory: 0.25GiB; weights memory:
  14.99GiB`` and ``Available KV cache memory: 58.11 GiB``; the GPU total from ``total_memory=79.19GiB``
  (worker init snapshot) or ``Initial free memory: … Requested memory: 0.90 (util), 71.20 GiB``;
- KV cache: ``GPU KV cache size: 476,016 tokens``, ``# GPU blocks: 1952`` / ``# cuda blocks: 3637`` /
  ``# CUDA blocks: 6001`` (16-token blocks), ``Maximum concurrency for 8,192 tokens per request:
  58.11x``; CUDA graphs: ``Graph capturing finished in 5 secs, took 0.54 GiB``;
- the start-up error ``The model's max seq len (29000) is larger than the maximum number of tokens
  that can be stored in KV cache (23648)``;
- version (``vLLM API server version 0.8.2``, ``vLLM version 0.19.0``, ``V1 LLM engine (v0.10.1)``)
  and engine arguments (``max_model_len=2048`` or ``'max_model_len': 8192``, likewise
  ``gpu_memory_utilization``, ``tensor_parallel_size``, ``max_num_batched_tokens``, ``max_num_seqs``).

With tensor parallelism every worker prints its own lines; they agree, the first one is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

BLOCK_SIZE = 16
_NUM = r"([0-9][0-9,]*(?:\.[0-9]+)?)"
_GIB = _NUM + r"\s*Gi?B"


def _number(text: str) -> float:
    return float(text.replace(",", ""))


class LogParseError(ValueError):
    """A log with no usable vLLM start-up figures; ``missing`` names what was looked for."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True)
class StartupLog:
    """Figures one vLLM start-up printed (GiB unless named otherwise; None when absent)."""

    vllm_version: str | None = None
    log_format: str | None = None
    total_gpu_memory_gib: float | None = None
    gpu_memory_utilization: float | None = None
    weights_gib: float | None = None
    activation_gib: float | None = None
    non_torch_gib: float | None = None
    cuda_graph_gib: float | None = None
    kv_cache_gib: float | None = None
    kv_cache_tokens: int | None = None
    gpu_blocks: int | None = None
    max_concurrency: float | None = None
    concurrency_tokens: int | None = None
    max_model_len: int | None = None
    tensor_parallel_size: int | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    max_seq_len_error: tuple[int, int] | None = None

    @property
    def started(self) -> bool:
        """False when vLLM refused the max-model-len (the KV cache was too small)."""
        return self.max_seq_len_error is None

    @property
    def kv_tokens(self) -> int | None:
        """KV cache tokens: as printed, else blocks x 16, else from the max-seq-len error."""
        if self.kv_cache_tokens is not None:
            return self.kv_cache_tokens
        if self.gpu_blocks is not None:
            return self.gpu_blocks * BLOCK_SIZE
        return self.max_seq_len_error[1] if self.max_seq_len_error else None

    @property
    def has_overheads(self) -> bool:
        """Whether the profiling figures a calibration needs are all there."""
        return self.activation_gib is not None and self.non_torch_gib is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON form with camelCase keys."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            head, *rest = f.name.split("_")
            key = head + "".join(p.capitalize() for p in rest)
            out[key.replace("Gib", "GiB")] = list(value) if isinstance(value, tuple) else value
        out["kvTokens"] = self.kv_tokens
        out["started"] = self.started
        return out


_RELEASE = r"(\d+\.\d+(?:\.\d+)*(?:\.?(?:post|rc|dev)\d+)?)"
_VERSION_PATTERNS = (
    r"vLLM API server version v?" + _RELEASE,
    r"vLLM version v?" + _RELEASE,
    r"LLM engine \(v" + _RELEASE,
    r"\bversion=v?" + _RELEASE,
)
_ARGS = {
    "max_model_len": int,
    "gpu_memory_utilization": float,
    "tensor_parallel_size": int,
    "max_num_batched_tokens": int,
    "max_num_seqs": int,
}


def _first(pattern: str, text: str, flags: int = re.IGNORECASE) -> re.Match[str] | None:
    return re.search(pattern, text, flags)


def _float(pattern: str, text: str) -> float | None:
    m = _first(pattern, text)
    return _number(m.group(1)) if m else None


def _int(pattern: str, text: str) -> int | None:
    value = _float(pattern, text)
    return int(value) if value is not None else None


def _engine_args(text: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, kind in _ARGS.items():
        dashed = "--" + name.replace("_", "-")
        m = _first(rf"(?:['\"]?{name}['\"]?\s*[=:]|{dashed}[= ])\s*([0-9.]+)", text)
        if m:
            try:
                found[name] = kind(float(m.group(1))) if kind is int else kind(m.group(1))
            except ValueError:
                continue
    return found


def _v1_profile(text: str) -> dict[str, Any] | None:
    m = _first(
        r"torch peak memory increase:\s*" + _GIB + r";\s*non-torch forward increase memory:\s*" + _GIB,
        text,
    )
    if m is None:
        return None
    out: dict[str, Any] = {
        "log_format": "v1",
        "activation_gib": _number(m.group(1)),
        "non_torch_gib": _number(m.group(2)),
        "weights_gib": _float(r"weights memory:\s*" + _GIB, text),
        "kv_cache_gib": _float(r"Available KV cache memory:\s*" + _GIB, text),
        "total_gpu_memory_gib": _float(r"total_memory=\s*" + _GIB, text),
    }
    util = _first(r"Requested memory:\s*([0-9.]+)\s*\(util\)", text)
    if util:
        out["gpu_memory_utilization"] = float(util.group(1))
    return out


def _v0_sentence(text: str) -> dict[str, Any] | None:
    m = _first(
        r"non_torch_memory takes\s*" + _GIB + r";\s*PyTorch activation peak memory takes\s*" + _GIB,
        text,
    )
    if m is None:
        return None
    can_use = _first(
        r"total_gpu_memory \(" + _GIB + r"\) x gpu_memory_utilization \(([0-9.]+)\)",
        text,
    )
    return {
        "log_format": "v0-0.6.6",
        "non_torch_gib": _number(m.group(1)),
        "activation_gib": _number(m.group(2)),
        "weights_gib": _float(r"model weights take\s*" + _GIB, text),
        "kv_cache_gib": _float(r"reserved for KV Cache is\s*" + _GIB, text),
        "total_gpu_memory_gib": _number(can_use.group(1)) if can_use else None,
        "gpu_memory_utilization": float(can_use.group(2)) if can_use else None,
    }


def _v0_table(text: str) -> dict[str, Any] | None:
    m = _first(r"PyTorch activation peak memory\s+" + _GIB, text)
    if m is None:
        return None
    return {
        "log_format": "v0-0.6.5",
        "activation_gib": _number(m.group(1)),
        "non_torch_gib": _float(r"non_torch_memory\s+" + _GIB, text),
        "weights_gib": _float(r"model weights take\s+" + _GIB, text),
        "kv_cache_gib": _float(r"available_kv_cache_memory\s+" + _GIB, text),
        "total_gpu_memory_gib": _float(r"total_gpu_memory\s+" + _GIB, text),
        "gpu_memory_utilization": _float(r"gpu_memory_utilization\s+([0-9.]+)", text),
    }


def _v0_results(text: str, weights: float | None) -> dict[str, Any] | None:
    m = _first(r"Memory profiling results:\s*total_gpu_memory=" + _GIB, text)
    if m is None:
        return None
    peak = _float(r"peak_torch_memory=" + _GIB, text)
    return {
        "log_format": "v0-0.6.4",
        "total_gpu_memory_gib": _number(m.group(1)),
        # peak_torch_memory includes the weights; the activation is the rest
        "activation_gib": round(peak - weights, 4) if peak is not None and weights is not None else None,
        "non_torch_gib": _float(r"non_torch_memory=" + _GIB, text),
        "kv_cache_gib": _float(r"kv_cache_size=" + _GIB, text),
        "gpu_memory_utilization": _float(r"gpu_memory_utilization=([0-9.]+)", text),
    }


def _weights(text: str) -> float | None:
    # vLLM prints "GB" here but divides by 2^30 (a GiB figure)
    return _float(r"(?:Loading model weights took|Model loading took)\s*" + _NUM + r"\s*Gi?B", text)


def parse_startup_log(text: str) -> StartupLog:
    """Figures from a vLLM start-up log; LogParseError naming what is missing when none are found."""
    if not isinstance(text, str) or not text.strip():
        raise LogParseError("the log is empty", ["any vLLM start-up line"])
    weights = _weights(text)
    found: dict[str, Any] = {"weights_gib": weights}
    profile_readers: tuple[Callable[[str], dict[str, Any] | None], ...] = (_v1_profile, _v0_sentence, _v0_table)
    for reader in profile_readers:
        profile = reader(text)
        if profile is not None:
            found.update({k: v for k, v in profile.items() if v is not None})
            break
    else:
        results = _v0_results(text, weights)
        if results is not None:
            found.update({k: v for k, v in results.items() if v is not None})
    found["kv_cache_tokens"] = _int(r"GPU KV cache size:\s*" + _NUM + r"\s*tokens", text)
    found["gpu_blocks"] = _int(r"#?\s*(?:GPU|cuda) blocks:\s*" + _NUM, text)
    concurrency = _first(r"Maximum concurrency for\s*" + _NUM + r"\s*tokens per request:\s*" + _NUM + "x", text)
    if concurrency:
        found["concurrency_tokens"] = int(_number(concurrency.group(1)))
        found["max_concurrency"] = _number(concurrency.group(2))
    found["cuda_graph_gib"] = _float(r"Graph capturing finished in [0-9.]+ secs?, took\s*" + _GIB, text)
    error = _first(
        r"max seq len \("
        + _NUM
        + r"\) is larger than the maximum number of tokens that can be stored in KV cache \("
        + _NUM
        + r"\)",
        text,
    )
    if error:
        found["max_seq_len_error"] = (int(_number(error.group(1))), int(_number(error.group(2))))
    for pattern in _VERSION_PATTERNS:
        m = _first(pattern, text)
        if m:
            found["vllm_version"] = m.group(1)
            break
    # the engine arguments are exact where the profiling lines round (utilization 0.8938… vs "0.89")
    found.update(_engine_args(text))
    if found.get("max_model_len") is None and error:
        found["max_model_len"] = int(_number(error.group(1)))
    log = StartupLog(**{k: v for k, v in found.items() if v is not None})
    if log.kv_tokens is None and not log.has_overheads and log.kv_cache_gib is None:
        raise LogParseError(
            "no vLLM memory-profiling or KV-cache line found in the log",
            [
                "a memory-profiling line ('Memory profiling results: …', '… PyTorch activation peak memory takes …' "
                "or 'torch peak memory increase: …; non-torch forward increase memory: …')",
                "a KV-cache line ('GPU KV cache size: N tokens', '# GPU blocks: N' or "
                "'Available KV cache memory: X GiB')",
            ],
        )
    return log


def calibration_gaps(log: StartupLog) -> list[str]:
    """What a calibration still needs from this log (empty when it has everything)."""
    missing = []
    if log.activation_gib is None:
        missing.append(
            "the activation peak ('PyTorch activation peak memory takes X GiB', 'torch peak memory increase: X GiB', "
            "or 'peak_torch_memory=…' with 'Loading model weights took X GB')"
        )
    if log.non_torch_gib is None:
        missing.append("the non-torch memory ('non_torch_memory …' or 'non-torch forward increase memory: X GiB')")
    return missing
