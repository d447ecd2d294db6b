"""What vLLM reserves besides weights and KV cache, modelled the way its start-up profiling measures it.

vLLM sizes the KV cache from a profiling run at start-up (V1: ``Worker.determine_available_memory``
in ``vllm/v1/worker/gpu_worker.py`` → ``GPUModelRunner.profile_run`` in
``vllm/v1/worker/gpu_model_runner.py``; V0: ``Worker.determine_num_available_blocks`` in
``vllm/worker/worker.py`` → ``ModelRunner.profile_run`` in ``vllm/worker/model_runner.py``)::

    kv_cache = total_gpu_memory x gpu_memory_utilization
               - weights - torch_peak_increase - non_torch_increase [- cuda_graphs]

(checked against the 0.19 logs: 79.19 x 0.95 - 17.12 "Total non KV cache memory" = 58.11 GiB
"Available KV cache memory"). This module estimates the three overheads before anything runs.

**Activation peak** (``torch peak memory increase``; V0 logs "PyTorch activation peak memory").
``profile_run`` does two things and the torch allocator's peak is the larger of them:

1. ``_dummy_run(max_num_batched_tokens)``: one forward pass over ``T`` tokens. Its peak is the
   widest layer, per token, in the serving dtype (``d`` bytes), per GPU at tensor parallel ``tp``:

   - dense MLP (``LlamaMLP.forward``: ``gate_up``, its activation and the output alive together,
     next to the residual and the normed input): ``3·hidden + 3·intermediate/tp``;
   - attention: ``3·hidden + (2·heads + 2·kv_heads)·head_dim/tp``;
   - fused MoE (``vllm/model_executor/layers/fused_moe/fused_moe.py``: ``intermediate_cache1/2/3``
     of ``[M, top_k, 2N]``, ``[M·top_k, N]``, ``[M, top_k, hidden]`` with ``M = min(T, 32768)``,
     ``VLLM_FUSED_MOE_CHUNK_SIZE``): ``3·hidden + top_k·(3·moe_intermediate/tp + hidden)``, plus a
     shared expert's dense MLP when the model has one.

   ``forward_peak = T · d · max(widths)``. Check: Llama-3.1-8B, 110,592 B per token; the V0 logs
   of #10517 grow from 2.07 to 2.99 GiB when ``T`` (= max-model-len there) goes 20,000 → 29,000,
   i.e. 109,760 B per token.
2. ``_dummy_sampler_run``: logits for ``S = min(max_num_seqs, T)`` sequences over the full
   vocabulary (every tensor-parallel rank gathers the whole vocabulary) and one top-k/top-p
   sampling step: float32 logits (4 B), the sorted copy (4 B) and int64 sort indices (8 B) of
   ``apply_top_k_top_p`` (``vllm/v1/sample/ops/topk_topp_sampler.py``; V0
   ``vllm/model_executor/layers/sampler.py`` ``_apply_top_k_top_p``), next to the forward's
   output: ``sampler_peak = T · hidden · d + S · vocab · 16``. Check: Gemma-2-9B (256k vocabulary)
   on 0.19, ``S`` = 1,024: 3.96 GiB modelled, 3.65 logged; Llama-3.1-8B 2.02 vs 1.89.

**Engine defaults** for ``T`` (``max_num_batched_tokens``) and ``S`` (``max_num_seqs``), unless
the entry sets them:

- V0 engine (before 0.8.0; on 0.8-0.10 also GPUs below compute capability 8.0 such as the T4,
  which fall back to V0; V0 was removed in 0.11.0): ``S = 256``; without chunked prefill
  ``T = max(max_model_len, 2048)`` (``SchedulerConfig`` in ``vllm/config.py``) — so the activation
  grows with ``--max-model-len``; the OpenAI server turns chunked prefill on when
  ``max_model_len > 32768`` (``EngineArgs`` in ``vllm/engine/arg_utils.py``), then ``T = 2048``.
- V1 engine, 0.8.x: ``T = 2048``, ``S = 256`` (OpenAI-server usage context).
- V1 from 0.9.0 (``EngineArgs.get_batch_defaults``, PR #17885): GPUs with ≥ 70 GiB that are not
  an A100 → ``T = 8192``, ``S = 1024``; others ``T = 2048``, ``S = 256``. Chunked prefill is
  always on, so ``--max-model-len`` does not change the profile. ``S = min(S, T)``.

**Non-torch memory** (``non-torch forward increase memory``; V0 ``non_torch_memory``), per GPU:
0.25 GiB at tp 1 on V1 (0.19 logs: 0.25), 0.20 on V0 (logs: 0.05-0.35); at tp ≥ 2 NCCL and
custom all-reduce buffers raise it to 2.08 GiB (0.19 logs, Mixtral tp 2: 2.07-2.09).

**CUDA graphs**: from 0.21.0 the profiling run captures CUDA graphs and their memory is part of
the budget (~0.5 GiB per GPU: logs print "Graph capturing finished … took 0.2-1 GiB"); before
that graphs are captured after the KV cache is allocated, outside ``gpu_memory_utilization``.
``--enforce-eager`` captures none.

**Multimodal** models also profile their encoder with a dummy image batch; it is not modelled
from the shape: +1.0 GiB, flagged as an approximation.

Units: GiB = bytes / 2^30.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from portal.services.fit import ModelShape

GIB = 2**30
Engine = Literal["V0", "V1"]

V1_DEFAULT_FROM = (0, 8, 0)
V0_REMOVED_IN = (0, 11, 0)
BIG_BATCH_DEFAULTS_FROM = (0, 9, 0)
CUDA_GRAPHS_PROFILED_FROM = (0, 21, 0)
HIGH_END_MIN_GIB = 70.0

V0_MAX_NUM_SEQS = 256
V0_MIN_BATCHED_TOKENS = 2048
V0_CHUNKED_PREFILL_ABOVE = 32768
V0_CHUNKED_BATCHED_TOKENS = 2048
V1_BATCHED_TOKENS = 2048
V1_MAX_NUM_SEQS = 256
V1_HIGH_END_BATCHED_TOKENS = 8192
V1_HIGH_END_MAX_NUM_SEQS = 1024
FUSED_MOE_CHUNK_SIZE = 32768
SAMPLER_BYTES_PER_LOGIT = 16  # float32 logits + float32 sorted copy + int64 sort indices

NON_TORCH_GIB_V1_SINGLE = 0.25
NON_TORCH_GIB_V0_SINGLE = 0.20
NON_TORCH_GIB_MULTI = 2.08
CUDA_GRAPH_GIB = 0.5
MULTIMODAL_ENCODER_GIB = 1.0


def parse_version(version: str) -> tuple[int, ...] | None:
    """``v0.10.2``, ``0.11.0rc1``, ``0.9.2+cu126`` → (0, 10, 2) …; None when unreadable."""
    m = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    if m is None:
        return None
    parsed = tuple(int(x) for x in m.group(1).split("."))
    return parsed + (0,) * (3 - len(parsed))


@dataclass(frozen=True)
class ProfileInputs:
    """What the profiling run depends on besides the model shape."""

    vllm_version: str | None
    gpu_name: str
    gpu_memory_gib: float
    ampere_or_newer: bool
    serving_bytes: int
    tensor_parallel: int
    max_model_len: int
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False


@dataclass(frozen=True)
class ProfileRun:
    """The modelled profiling run: engine, batch sizes and each overhead in bytes, with their sources."""

    engine: Engine
    version: str | None
    max_num_batched_tokens: int
    max_num_batched_tokens_source: str
    max_num_seqs: int
    max_num_seqs_source: str
    forward_peak_bytes: int
    sampler_peak_bytes: int
    encoder_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    cuda_graphs_budgeted: bool
    notes: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    @property
    def activation_bytes(self) -> int:
        """Torch peak increase: the larger phase of the profiling run, plus the encoder's."""
        return max(self.forward_peak_bytes, self.sampler_peak_bytes) + self.encoder_bytes

    @property
    def activation_formula(self) -> str:
        """Which phase sets the peak, with the batch sizes, for explanations."""
        phase = (
            f"forward pass of {self.max_num_batched_tokens:,} tokens"
            if self.forward_peak_bytes >= self.sampler_peak_bytes
            else f"sampler over {self.max_num_seqs:,} sequences"
        )
        extra = " + multimodal encoder" if self.encoder_bytes else ""
        return f"{phase}{extra} ({self.engine} engine)"


def _at_least(version: tuple[int, ...] | None, bound: tuple[int, int, int]) -> bool:
    return version is not None and version >= bound


def engine_for(version: str | None, *, ampere_or_newer: bool) -> tuple[Engine, str | None]:
    """V0 or V1 for a release on a GPU, and a note when the choice is an assumption."""
    parsed = parse_version(version) if version else None
    if parsed is None:
        return "V1", "vLLM version unknown: modelled as a current release (V1 engine)"
    if parsed < V1_DEFAULT_FROM:
        return "V0", None
    if parsed < V0_REMOVED_IN and not ampere_or_newer:
        return "V0", f"vLLM {version} falls back to the V0 engine on GPUs below compute capability 8.0"
    return "V1", None


def batch_defaults(engine: Engine, inputs: ProfileInputs) -> tuple[int, int, str]:
    """Engine default (max_num_batched_tokens, max_num_seqs, source) for this version, GPU and length."""
    parsed = parse_version(inputs.vllm_version) if inputs.vllm_version else None
    if engine == "V0":
        if inputs.max_model_len > V0_CHUNKED_PREFILL_ABOVE:
            return V0_CHUNKED_BATCHED_TOKENS, V0_MAX_NUM_SEQS, "V0 default with chunked prefill (max-model-len > 32K)"
        tokens = max(inputs.max_model_len, V0_MIN_BATCHED_TOKENS)
        return tokens, V0_MAX_NUM_SEQS, "V0 default: max(max-model-len, 2048)"
    high_end = inputs.gpu_memory_gib >= HIGH_END_MIN_GIB and "a100" not in inputs.gpu_name.lower()
    if (parsed is None or _at_least(parsed, BIG_BATCH_DEFAULTS_FROM)) and high_end:
        return V1_HIGH_END_BATCHED_TOKENS, V1_HIGH_END_MAX_NUM_SEQS, "V1 default for GPUs ≥ 70 GiB (not A100)"
    return V1_BATCHED_TOKENS, V1_MAX_NUM_SEQS, "V1 default"


def forward_bytes_per_token(shape: ModelShape, serving_bytes: int, tp: int) -> int:
    """Peak activation bytes per batched token of one forward pass, per GPU (widest layer)."""
    hidden = shape.hidden_size or shape.num_attention_heads * shape.head_dim
    inter = shape.intermediate_size or 4 * hidden
    attention = 3 * hidden + (2 * shape.num_attention_heads + 2 * shape.num_kv_heads) * shape.head_dim // tp
    widths = [attention]
    if shape.is_moe:
        cfg = shape.text_config
        top_k = _int(cfg, "num_experts_per_tok", "moe_topk", "top_k", "num_experts_per_token") or 2
        expert_inter = _int(cfg, "moe_intermediate_size") or inter
        moe = 3 * hidden + top_k * (3 * expert_inter // tp + hidden)
        shared = _int(cfg, "shared_expert_intermediate_size")
        n_shared = _int(cfg, "n_shared_experts")
        if shared is None and n_shared is not None:
            shared = n_shared * expert_inter
        if shared is not None:
            moe += 3 * shared // tp
        widths.append(moe)
        first_dense = _int(cfg, "first_k_dense_replace")
        if first_dense:
            widths.append(3 * hidden + 3 * inter // tp)
    else:
        widths.append(3 * hidden + 3 * inter // tp)
    return max(widths) * serving_bytes


def _int(cfg: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def model_profile_run(shape: ModelShape, inputs: ProfileInputs) -> ProfileRun:
    """Model vLLM's profiling run for this shape, version, GPU and flags (see module docstring)."""
    engine, engine_note = engine_for(inputs.vllm_version, ampere_or_newer=inputs.ampere_or_newer)
    notes: list[str] = []
    default_tokens, default_seqs, default_source = batch_defaults(engine, inputs)
    tokens = inputs.max_num_batched_tokens or default_tokens
    tokens_source = "requested" if inputs.max_num_batched_tokens else default_source
    seqs = min(inputs.max_num_seqs or default_seqs, tokens)
    seqs_source = "requested" if inputs.max_num_seqs else default_source
    tp = inputs.tensor_parallel
    per_token = forward_bytes_per_token(shape, inputs.serving_bytes, tp)
    forward_tokens = min(tokens, FUSED_MOE_CHUNK_SIZE) if shape.is_moe else tokens
    forward = forward_tokens * per_token
    hidden = shape.hidden_size or shape.num_attention_heads * shape.head_dim
    vocab = shape.vocab_size or 0
    if not shape.vocab_size:
        notes.append("config.json has no vocab_size: the sampler's logits are not counted")
    sampler = tokens * hidden * inputs.serving_bytes + seqs * vocab * SAMPLER_BYTES_PER_LOGIT
    encoder = round(MULTIMODAL_ENCODER_GIB * GIB) if shape.is_multimodal else 0
    if encoder:
        notes.append(f"multimodal encoder profiling approximated as {MULTIMODAL_ENCODER_GIB} GiB")
    if tp > 1:
        non_torch_gib = NON_TORCH_GIB_MULTI
    else:
        non_torch_gib = NON_TORCH_GIB_V1_SINGLE if engine == "V1" else NON_TORCH_GIB_V0_SINGLE
    parsed = parse_version(inputs.vllm_version) if inputs.vllm_version else None
    graphs_budgeted = engine == "V1" and _at_least(parsed, CUDA_GRAPHS_PROFILED_FROM)
    graphs = 0 if inputs.enforce_eager else round(CUDA_GRAPH_GIB * GIB)
    return ProfileRun(
        engine=engine,
        version=inputs.vllm_version,
        max_num_batched_tokens=tokens,
        max_num_batched_tokens_source=tokens_source,
        max_num_seqs=seqs,
        max_num_seqs_source=seqs_source,
        forward_peak_bytes=forward,
        sampler_peak_bytes=sampler,
        encoder_bytes=encoder,
        non_torch_bytes=round(non_torch_gib * GIB),
        cuda_graph_bytes=graphs,
        cuda_graphs_budgeted=graphs_budgeted,
        notes=tuple(notes),
        assumptions=(engine_note,) if engine_note else (),
    )
