"""The start-up lines the simulated predictor pod prints, in vLLM's own formats.

Figures are made up but consistent: the node's GPU memory (its ``nvidia.com/gpu.memory`` label, MiB,
else 24 GiB), the ``--gpu-memory-utilization`` and ``--max-model-len`` the pod runs with, weights of
2.9 GiB, an activation peak of 0.8 GiB and 0.2 GiB of non-torch memory. Releases before 0.8 print the
V0 worker's sentence, later ones the V1 lines (``portal/services/vllm_logs.py`` reads both).
"""

from __future__ import annotations

import re
from typing import Any

GIB = 2**30
WEIGHTS_GIB = 2.9
ACTIVATION_GIB = 0.8
NON_TORCH_GIB = 0.2
KV_BYTES_PER_TOKEN = 28_672  # a small GQA model: 28 layers x 2 KV heads x 128 x 2 x 2 B
DEFAULT_VERSION = "0.6.3.post1"


def _flag(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
        if arg == name and i + 1 < len(args):
            return args[i + 1]
    return None


def startup_lines(container: dict[str, Any], node: dict[str, Any] | None, started: str) -> list[str]:
    """vLLM's start-up log for this container on this node."""
    args = [str(a) for a in container.get("args") or []]
    tag = re.search(r":v?(\d+\.\d+[^:@]*)$", str(container.get("image") or ""))
    version = tag.group(1) if tag else DEFAULT_VERSION
    util = float(_flag(args, "--gpu-memory-utilization") or 0.9)
    max_len = int(_flag(args, "--max-model-len") or 4096)
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    mib = labels.get("nvidia.com/gpu.memory")
    total = int(mib) / 1024 - 0.44 if mib and str(mib).isdigit() else 24.0  # CUDA sees a little less than NVML
    kv = total * util - WEIGHTS_GIB - ACTIVATION_GIB - NON_TORCH_GIB
    tokens = max(0, int(kv * GIB / KV_BYTES_PER_TOKEN) // 16 * 16)
    major_minor = tuple(int(x) for x in re.findall(r"\d+", version)[:2])
    head = [
        f"INFO {started} api_server.py:528] vLLM API server version {version}",
        f"INFO {started} api_server.py:529] args: {' '.join(args)}",
        f"INFO {started} model_runner.py:1067] Loading model weights from /mnt/models",
    ]
    if major_minor < (0, 8):
        body = [
            f"INFO {started} model_runner.py:1072] Loading model weights took {WEIGHTS_GIB:.4f} GB",
            f"INFO {started} worker.py:232] Memory profiling takes 1.20 seconds",
            f"INFO {started} worker.py:232] the current vLLM instance can use total_gpu_memory ({total:.2f}GiB) x "
            f"gpu_memory_utilization ({util:.2f}) = {total * util:.2f}GiB",
            f"INFO {started} worker.py:232] model weights take {WEIGHTS_GIB:.2f}GiB; non_torch_memory takes "
            f"{NON_TORCH_GIB:.2f}GiB; PyTorch activation peak memory takes {ACTIVATION_GIB:.2f}GiB; the rest of the "
            f"memory reserved for KV Cache is {kv:.2f}GiB.",
            f"INFO {started} gpu_executor.py:122] # GPU blocks: {tokens // 16}, # CPU blocks: 9362",
        ]
    else:
        body = [
            f"INFO {started} gpu_model_runner.py:1] Model loading took {WEIGHTS_GIB:.2f} GiB memory and 3.1 seconds",
            f"INFO {started} gpu_worker.py:2] Memory profiling takes 1.20 seconds. Total non KV cache memory: "
            f"{WEIGHTS_GIB + ACTIVATION_GIB + NON_TORCH_GIB:.2f}GiB; torch peak memory increase: {ACTIVATION_GIB:.2f}GiB; "
            f"non-torch forward increase memory: {NON_TORCH_GIB:.2f}GiB; weights memory: {WEIGHTS_GIB:.2f}GiB.",
            f"INFO {started} gpu_worker.py:3] Available KV cache memory: {kv:.2f} GiB",
            f"INFO {started} kv_cache_utils.py:4] GPU KV cache size: {tokens:,} tokens",
        ]
    body.append(
        f"INFO {started} kv_cache_utils.py:5] Maximum concurrency for {max_len:,} tokens per request: "
        f"{tokens / max_len:.2f}x"
    )
    tail = [
        f"INFO {started} launcher.py:19] Available routes are: /v1/models, /v1/chat/completions, /v1/completions",
        "INFO:     Started server process [1]",
        "INFO:     Application startup complete.",
        "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)",
    ]
    return head + body + tail
