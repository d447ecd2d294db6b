"""Will a model fit a GPU under vLLM? Computed the way vLLM budgets memory, from exact inputs.

vLLM's budget (per GPU)::

    kv_budget = total_gpu_memory * gpu_memory_utilization - weights/tp - activation_peak - non_torch - cuda_graphs

The model does not start when ``kv_budget ≤ 0`` or when one ``max_model_len`` sequence needs more KV
cache than ``kv_budget`` (vLLM checks ``ceil(max_model_len / 16)`` blocks of 16 tokens against the
budget). Otherwise it fits with ``kv_tokens = floor(kv_budget / (16 * kv_bytes_per_token)) * 16``.

Inputs:

- **Weights bytes** exactly: ``Σ numel * bytes(dtype)`` from safetensors metadata (Hub
  ``safetensors.parameters`` or local file headers). Bytes per element: F64/I64/U64 8, F32/I32/U32 4,
  BF16/F16/I16/U16 2, F8_E4M3/F8_E5M2/F8_E8M0/I8/U8/BOOL 1, F6_E2M3/F6_E3M2 0.75, F4 0.5 (sub-byte
  types are counted in bits and rounded up per tensor). Unquantized float checkpoints are counted
  at the dtype vLLM serves them in (an F32 checkpoint served as bf16 takes 2 bytes per parameter).
  Without safetensors, a parameter count estimated from ``config.json`` (marked approximate).
- **KV bytes per token** (tp 1): ``2 * layers * kv_heads * head_dim * bytes(kv_cache_dtype)``;
  multi-head latent attention (DeepSeek V2/V3): ``layers * (kv_lora_rank + qk_rope_head_dim) * bytes``.
  Sliding-window / chunked / hybrid (Mamba, linear attention) models need less under vLLM: the figure
  is an upper bound and the result is marked approximate.
- **Tensor parallel**: weights per GPU = weights / tp. KV heads are split across GPUs while
  ``kv_heads ≥ tp`` (``kv_heads/tp`` heads per GPU); when ``tp > kv_heads`` vLLM replicates them and
  each GPU holds exactly one head, so per-GPU KV stops shrinking. The MLA latent cache is not split
  at all (every GPU holds the whole latent vector). ``tp`` must divide the attention heads, and
  ``kv_heads`` must divide by ``tp`` (or ``tp`` by ``kv_heads``), as vLLM requires.

Overheads (per GPU) are **modelled the way vLLM's start-up profiling measures them** —
``portal/services/vllm_memory.py`` has the formulas, constants and vLLM sources: the activation peak
of a dummy forward pass of ``max_num_batched_tokens`` tokens or of the sampler's logits for
``max_num_seqs`` sequences (whichever is larger), from the model's hidden/intermediate/vocabulary
sizes and experts, with the engine defaults of the vLLM version (V0/V1, chunked prefill, GPU size);
non-torch memory by version and tensor parallel (NCCL buffers at tp ≥ 2); CUDA graphs where the
version budgets them (0.21+, not with ``--enforce-eager``). Precedence: overheads passed by the
caller (a calibration from a real start-up log, ``portal/services/calibration.py``), then a GPU
profile's measured ``activationOverheadGiB`` / ``nonTorchGiB``, then the model. The report names
the source of each figure and the version modelled.

Against the seven real start-ups of ``tests/data/vllm-startup-measurements.json`` (vLLM 0.6.4 to
0.19.0, T4 to H100, tp 1 and 2) the model gets every verdict right and the KV-cache tokens within
0.2-6.6 %, except one log whose run used settings it does not show (``make bench`` prints the table).

Verdict boundaries: the verdict is vLLM's own check (one ``max_model_len`` sequence must fit the KV
cache); no safety margin moves it. The margin is reported separately: ``spare`` = KV budget beyond
one full-length sequence ("fits, with 0.4 GiB to spare").

``--gpu-memory-utilization`` defaults to the runtime's vLLM default: 0.90 before vLLM 0.21.0 and
0.92 from 0.21.0 (the release that made CUDA-graph memory profiling the default; its start-up log
shows ``--gpu-memory-utilization=0.9200`` when unset). Unknown version → 0.90, the safe side.

Units: GiB = bytes / 2^30 everywhere in this module; GB (10^9) only names nominal GPU sizes.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from portal.errors import InvalidInput
from portal.services.gpu_profiles import GpuProfile
from portal.services.vllm_memory import (
    CUDA_GRAPH_GIB,
    ProfileInputs,
    ProfileRun,
    model_profile_run,
    parse_version,
)

GIB = 2**30
BLOCK_SIZE = 16
SAFETENSORS_MAX_HEADER_BYTES = 100 * 1024 * 1024

UTILIZATION_BEFORE_CUTOFF = 0.90
UTILIZATION_FROM_CUTOFF = 0.92
UTILIZATION_CUTOFF_VERSION = (0, 21, 0)

MIN_USEFUL_MAX_MODEL_LEN = 2048
FALLBACK_MAX_MODEL_LEN = 2048
MAX_TENSOR_PARALLEL_WHEN_UNKNOWN = 8

DTYPE_BITS: Mapping[str, int] = {
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "C64": 64,
    "F32": 32,
    "I32": 32,
    "U32": 32,
    "BF16": 16,
    "F16": 16,
    "I16": 16,
    "U16": 16,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "I8": 8,
    "U8": 8,
    "BOOL": 8,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "F4": 4,
}
_FLOAT_CHECKPOINT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})

KV_CACHE_DTYPE_BYTES: Mapping[str, int] = {
    "fp8": 1,
    "fp8_e4m3": 1,
    "fp8_e5m2": 1,
    "fp8_inc": 1,
    "fp8_ds_mla": 1,
    "float16": 2,
    "bfloat16": 2,
}
SERVING_DTYPE_BYTES: Mapping[str, int] = {"bfloat16": 2, "float16": 2, "float32": 4}

_NON_GATED_MLP_TYPES = frozenset(
    {"gpt2", "gpt_neox", "gptj", "falcon", "opt", "bloom", "mpt", "phi", "gpt_bigcode", "starcoder2"}
)
_HYBRID_TYPES = frozenset(
    {
        "jamba",
        "nemotron_h",
        "falcon_h1",
        "granitemoehybrid",
        "bamba",
        "zamba2",
        "qwen3_next",
        "lfm2",
        "plamo2",
        "minimax",
        "minimax_text_01",
        "kimi_linear",
    }
)
_ATTENTION_FREE_TYPES = frozenset({"mamba", "mamba2", "falcon_mamba"})

ModelKind = Literal["dense", "moe", "multimodal"]
Verdict = Literal["fits", "does_not_start", "invalid"]
Level = Literal["fits", "reduced", "no"]


def gib(num_bytes: float) -> float:
    """Bytes to GiB (2^30)."""
    return num_bytes / GIB


def gib_to_bytes(value: float) -> int:
    """GiB (2^30) to whole bytes."""
    return round(value * GIB)


def _mem(prefix: str, num_bytes: int) -> dict[str, Any]:
    return {f"{prefix}Bytes": num_bytes, f"{prefix}GiB": round(gib(num_bytes), 2)}


def _fmt_gib(num_bytes: float) -> str:
    return f"{gib(num_bytes):.2f} GiB"


# --------------------------------------------------------------------------------------------
# Model shape from config.json
# --------------------------------------------------------------------------------------------


def normalize_dtype(value: Any) -> str | None:
    """``torch.bfloat16``/``bf16`` → ``bfloat16``; ``float16``/``half``; ``float32``; else None."""
    if not isinstance(value, str):
        return None
    v = value.strip().lower().removeprefix("torch.")
    if v in {"bfloat16", "bf16"}:
        return "bfloat16"
    if v in {"float16", "fp16", "half"}:
        return "float16"
    if v in {"float32", "fp32", "float"}:
        return "float32"
    return None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value <= 0 or not float(value).is_integer():
        return None
    return int(value)


@dataclass(frozen=True)
class ModelShape:
    """What the estimator needs from a Hugging Face ``config.json``."""

    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None
    max_position_embeddings: int | None = None
    dtype: str | None = None
    architectures: tuple[str, ...] = ()
    model_type: str | None = None
    tie_word_embeddings: bool = False
    kv_lora_rank: int | None = None
    qk_rope_head_dim: int | None = None
    num_experts: int | None = None
    is_multimodal: bool = False
    trust_remote_code: bool = False
    quantization: str | None = None
    quantization_config: Mapping[str, Any] | None = field(default=None, hash=False, compare=False, repr=False)
    sliding_window: int | None = None
    approximate_reasons: tuple[str, ...] = ()
    text_config: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False, repr=False)

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention (DeepSeek V2/V3 style)."""
        return self.kv_lora_rank is not None and self.qk_rope_head_dim is not None

    @property
    def is_moe(self) -> bool:
        """Mixture of experts."""
        return (self.num_experts or 0) > 1

    @property
    def kind(self) -> ModelKind:
        """Row of the overhead table: ``moe`` beats ``multimodal`` beats ``dense``."""
        if self.is_moe:
            return "moe"
        if self.is_multimodal:
            return "multimodal"
        return "dense"

    @property
    def approximate(self) -> bool:
        """True when vLLM needs less KV cache than the formula (sliding window, hybrid)."""
        return bool(self.approximate_reasons)

    def kv_heads_per_gpu(self, tp: int = 1) -> int:
        """KV heads each GPU holds: split while there are enough, else one (replicated)."""
        return max(1, self.num_kv_heads // tp) if self.num_kv_heads >= tp else 1

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """KV cache bytes per token for the whole model (tensor parallel 1)."""
        if self.is_mla:
            assert self.kv_lora_rank is not None and self.qk_rope_head_dim is not None
            return self.num_layers * (self.kv_lora_rank + self.qk_rope_head_dim) * dtype_bytes
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * dtype_bytes

    def kv_bytes_per_token_per_gpu(self, dtype_bytes: int, tp: int = 1) -> int:
        """KV cache bytes per token on each GPU at tensor-parallel size ``tp``."""
        if self.is_mla:
            return self.kv_bytes_per_token(dtype_bytes)  # the latent cache is replicated, not split
        return 2 * self.num_layers * self.kv_heads_per_gpu(tp) * self.head_dim * dtype_bytes

    def kv_formula(self, dtype_bytes: int, tp: int = 1) -> str:
        """The KV formula with this model's numbers, for explanations."""
        if self.is_mla:
            return (
                f"{self.num_layers} layers x ({self.kv_lora_rank} kv_lora_rank + "
                f"{self.qk_rope_head_dim} rope dims) x {dtype_bytes} B (MLA, same on every GPU)"
            )
        heads = self.kv_heads_per_gpu(tp)
        head_text = f"{self.num_kv_heads} KV heads" if tp == 1 else f"{heads} of {self.num_kv_heads} KV heads"
        return f"2 x {self.num_layers} layers x {head_text} x {self.head_dim} head dim x {dtype_bytes} B"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelShape:
        """Read a ``config.json`` dict (``text_config`` is used for multimodal models)."""
        if not isinstance(config, Mapping):
            raise InvalidInput("config.json must be an object")
        cfg = _ConfigReader(config)
        model_type = cfg.pick("model_type") or config.get("model_type")
        model_type = str(model_type) if model_type is not None else None
        archs_raw = config.get("architectures") or []
        architectures = tuple(a for a in archs_raw if isinstance(a, str)) if isinstance(archs_raw, list) else ()
        layers, heads, kv_heads, head_dim, hidden = cfg.attention(model_type)
        max_len = _positive_int(
            cfg.pick("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")
        )
        kv_lora = _positive_int(cfg.pick("kv_lora_rank"))
        rope = _positive_int(cfg.pick("qk_rope_head_dim"))
        quant = cfg.pick_meta("quantization_config")
        sliding, reasons = _attention_approximations(cfg.lm, model_type, layers, max_len)
        return cls(
            num_layers=layers,
            num_attention_heads=heads,
            num_kv_heads=kv_heads,
            head_dim=head_dim,
            hidden_size=hidden,
            intermediate_size=_positive_int(cfg.pick("intermediate_size", "ffn_hidden_size", "n_inner")),
            vocab_size=_positive_int(cfg.pick("vocab_size", "padded_vocab_size")),
            max_position_embeddings=max_len,
            dtype=normalize_dtype(cfg.pick_meta("torch_dtype", "dtype")),
            architectures=architectures,
            model_type=model_type,
            tie_word_embeddings=cfg.pick_meta("tie_word_embeddings") is True,
            kv_lora_rank=kv_lora if rope is not None else None,
            qk_rope_head_dim=rope if kv_lora is not None else None,
            num_experts=cfg.experts(),
            is_multimodal=cfg.multimodal(architectures),
            trust_remote_code=config.get("auto_map") is not None,
            quantization=str(quant.get("quant_method") or "unknown") if isinstance(quant, Mapping) else None,
            quantization_config=dict(quant) if isinstance(quant, Mapping) else None,
            sliding_window=sliding,
            approximate_reasons=tuple(reasons),
            text_config=dict(cfg.lm),
        )


class _ConfigReader:
    """Looks values up in a config.json: the language model's part (``text_config``) first."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        nested = config.get("text_config")
        self.config = config
        self.lm: Mapping[str, Any] = nested if isinstance(nested, Mapping) else config
        self.where = "text_config." if self.lm is not config else ""

    def pick(self, *keys: str) -> Any:
        """The first key the language-model config sets."""
        for key in keys:
            value = self.lm.get(key)
            if value is not None:
                return value
        return None

    def pick_meta(self, *keys: str) -> Any:
        """The first key set in the language-model config, else at the top level."""
        for source in (self.lm, self.config):
            for key in keys:
                value = source.get(key)
                if value is not None:
                    return value
        return None

    def _missing(self, message: str, fld: str) -> InvalidInput:
        return InvalidInput(f"config.json: {message}", details={"field": f"{self.where}{fld}"})

    def attention(self, model_type: str | None) -> tuple[int, int, int, int, int | None]:
        """(layers, attention heads, KV heads, head dim, hidden size); InvalidInput naming a missing field."""
        w = self.where
        layers = _positive_int(self.pick("num_hidden_layers", "n_layer", "n_layers", "num_layers"))
        heads = _positive_int(self.pick("num_attention_heads", "n_head", "n_heads"))
        if model_type in _ATTENTION_FREE_TYPES and heads is None:
            raise InvalidInput(
                f"{model_type} is attention-free (no KV cache): the fit estimate does not apply",
                details={"field": f"{w}num_attention_heads"},
            )
        if layers is None:
            raise self._missing(f"{w}num_hidden_layers is missing or not a positive integer", "num_hidden_layers")
        if heads is None:
            raise self._missing(f"{w}num_attention_heads is missing or not a positive integer", "num_attention_heads")
        hidden = _positive_int(self.pick("hidden_size", "n_embd", "d_model"))
        kv_heads = _positive_int(self.pick("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num"))
        if kv_heads is None:
            kv_heads = 1 if self.lm.get("multi_query") is True else heads
        head_dim = _positive_int(self.pick("head_dim", "kv_channels"))
        if head_dim is None:
            if hidden is None:
                raise self._missing(f"needs {w}head_dim or {w}hidden_size", "hidden_size")
            head_dim = hidden // heads
        return layers, heads, kv_heads, head_dim, hidden

    def experts(self) -> int | None:
        """Routed experts of a mixture-of-experts model, else None."""
        for key in ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"):
            experts = _positive_int(self.lm.get(key))
            if experts is not None:
                return experts
        return None

    def multimodal(self, architectures: tuple[str, ...]) -> bool:
        """A vision/audio encoder config, or a text_config under a *ForConditionalGeneration model."""
        encoders = any(self.config.get(k) is not None for k in ("vision_config", "audio_config", "vision_tower"))
        nested = self.lm is not self.config and any(a.endswith("ForConditionalGeneration") for a in architectures)
        return encoders or nested


def _attention_approximations(
    lm: Mapping[str, Any], model_type: str | None, layers: int, max_len: int | None
) -> tuple[int | None, list[str]]:
    """Sliding-window and hybrid detection: (sliding window tokens, reasons the KV is an upper bound)."""
    reasons: list[str] = []
    layer_types = lm.get("layer_types")
    types = [str(t) for t in layer_types] if isinstance(layer_types, list) else []
    window = _positive_int(lm.get("sliding_window"))
    uses_window = lm.get("use_sliding_window") is not False
    if window is not None and max_len is not None and window >= max_len:
        uses_window = False  # e.g. Qwen2 configs carry sliding_window = max length, unused
    sliding: int | None = None
    if model_type == "gpt_oss" and window is None:
        window = 128  # gpt-oss alternates 128-token sliding and full attention
    if window is not None and uses_window:
        sliding = window
        n_sliding = sum(1 for t in types if "sliding" in t)
        pattern = _positive_int(lm.get("sliding_window_pattern"))
        if n_sliding:
            share = f"{n_sliding} of {layers} layers"
        elif pattern:
            share = f"{layers - layers // pattern} of {layers} layers"
        elif model_type == "gemma2":
            share = f"half of the {layers} layers"
        else:
            share = "its layers"
        reasons.append(
            f"sliding-window attention: {share} keep only the last {window:,} tokens, so vLLM needs "
            "less KV cache than shown (upper bound)"
        )
    chunk = _positive_int(lm.get("attention_chunk_size"))
    if chunk is not None:
        reasons.append(
            f"chunked local attention ({chunk:,}-token chunks): vLLM needs less KV cache than shown (upper bound)"
        )
    hybrid_markers = ("layers_block_type", "hybrid_override_pattern", "attn_layer_period", "layers_block_types")
    other_types = {t for t in types if t not in {"full_attention", "sliding_attention"}}
    if model_type in _HYBRID_TYPES or any(lm.get(k) is not None for k in hybrid_markers) or other_types:
        reasons.append(
            "hybrid model: Mamba / linear-attention layers keep a fixed-size state instead of a KV cache, "
            "so vLLM needs less KV cache than shown (upper bound)"
        )
    return sliding, reasons


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


class SafetensorsHeaderError(ValueError):
    """A safetensors file whose header cannot be read (truncated, oversized, not JSON)."""


def dtype_nbytes(dtype: str, numel: int) -> int:
    """Bytes for ``numel`` elements of a safetensors dtype (sub-byte types rounded up)."""
    bits = DTYPE_BITS.get(dtype.upper())
    if bits is None:
        raise InvalidInput(f"unknown safetensors dtype {dtype!r}", details={"dtype": dtype})
    return (numel * bits + 7) // 8


@dataclass(frozen=True)
class WeightsInfo:
    """Checkpoint size: parameter counts per dtype and bytes, exact or estimated."""

    total_bytes: int
    parameter_count: int
    by_dtype: Mapping[str, int] = field(default_factory=dict, hash=False)
    exact: bool = True
    source: str = "safetensors-metadata"
    note: str | None = None

    def memory_bytes(self, serving_dtype_bytes: int = 2, *, quantized: bool = False) -> int:
        """Bytes on the GPU: float tensors of an unquantized checkpoint are cast to the serving dtype."""
        if quantized or not self.by_dtype:
            return self.total_bytes
        total = 0
        for dtype, count in self.by_dtype.items():
            if dtype.upper() in _FLOAT_CHECKPOINT_DTYPES:
                total += count * serving_dtype_bytes
            else:
                total += dtype_nbytes(dtype, count)
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {totalBytes, totalGiB, parameterCount, byDtype, exact, source, note}."""
        return {
            **_mem("total", self.total_bytes),
            "parameterCount": self.parameter_count,
            "byDtype": dict(self.by_dtype),
            "exact": self.exact,
            "source": self.source,
            "note": self.note,
        }


def weights_from_parameter_counts(
    parameters: Mapping[str, int], *, source: str = "safetensors-metadata"
) -> WeightsInfo:
    """Exact weights from a count of parameters per safetensors dtype (``{"BF16": 8030261248}``)."""
    by_dtype: dict[str, int] = {}
    total = 0
    for dtype, count in parameters.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput(f"parameter count for {dtype} must be a whole number ≥ 0")
        key = str(dtype).upper()
        total += dtype_nbytes(key, count)
        by_dtype[key] = by_dtype.get(key, 0) + count
    if not by_dtype:
        raise InvalidInput("no safetensors parameter counts given")
    return WeightsInfo(total_bytes=total, parameter_count=sum(by_dtype.values()), by_dtype=by_dtype, source=source)


def weights_from_hub_safetensors(info: Mapping[str, Any]) -> WeightsInfo:
    """Exact weights from the Hub's ``safetensors`` field (``{"parameters": {...}, "total": N}``)."""
    params = info.get("parameters", info)
    if not isinstance(params, Mapping):
        raise InvalidInput("safetensors.parameters must be an object of counts per dtype")
    return weights_from_parameter_counts({k: v for k, v in params.items() if k != "total"})


def read_safetensors_header(path: Path | str) -> dict[str, Any]:
    """Read a safetensors header: 8-byte little-endian length, then that many bytes of JSON."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise SafetensorsHeaderError(f"{p.name}: truncated file (no 8-byte header length)")
            (length,) = struct.unpack("<Q", prefix)
            if length > SAFETENSORS_MAX_HEADER_BYTES:
                raise SafetensorsHeaderError(
                    f"{p.name}: header length {length:,} bytes exceeds the "
                    f"{SAFETENSORS_MAX_HEADER_BYTES // 2**20} MiB limit (not a safetensors file?)"
                )
            raw = fh.read(length)
    except OSError as exc:
        raise SafetensorsHeaderError(f"{p.name}: cannot read: {exc.strerror or exc}") from exc
    if len(raw) < length:
        raise SafetensorsHeaderError(f"{p.name}: truncated header ({len(raw):,} of {length:,} bytes)")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SafetensorsHeaderError(f"{p.name}: header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise SafetensorsHeaderError(f"{p.name}: header is not a JSON object")
    return header


def weights_from_local_files(paths: Iterable[Path | str]) -> WeightsInfo:
    """Exact weights from installed safetensors files: Σ numel * bytes(dtype) over every tensor."""
    by_dtype: dict[str, int] = {}
    total = 0
    files = 0
    for path in paths:
        files += 1
        header = read_safetensors_header(path)
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            if not isinstance(tensor, Mapping) or not isinstance(tensor.get("dtype"), str):
                raise SafetensorsHeaderError(f"{Path(path).name}: tensor {name!r} has no dtype")
            shape = tensor.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise SafetensorsHeaderError(f"{Path(path).name}: tensor {name!r} has an invalid shape")
            dtype = tensor["dtype"].upper()
            numel = math.prod(shape)
            try:
                total += dtype_nbytes(dtype, numel)
            except InvalidInput as exc:
                raise SafetensorsHeaderError(f"{Path(path).name}: tensor {name!r}: {exc.message}") from exc
            by_dtype[dtype] = by_dtype.get(dtype, 0) + numel
    if files == 0:
        raise InvalidInput("no safetensors files given")
    return WeightsInfo(
        total_bytes=total,
        parameter_count=sum(by_dtype.values()),
        by_dtype=by_dtype,
        source="safetensors-files",
        note=f"{files} file(s)",
    )


def estimate_parameters(shape: ModelShape) -> int:
    """Parameter count from config.json alone (decoder LM; vision towers are not counted)."""
    cfg = shape.text_config
    h = shape.hidden_size or shape.num_attention_heads * shape.head_dim
    layers, heads, kv, hd = shape.num_layers, shape.num_attention_heads, shape.num_kv_heads, shape.head_dim
    if shape.is_mla:
        assert shape.kv_lora_rank is not None and shape.qk_rope_head_dim is not None
        rope, kv_rank = shape.qk_rope_head_dim, shape.kv_lora_rank
        nope = _positive_int(cfg.get("qk_nope_head_dim")) or hd
        v_dim = _positive_int(cfg.get("v_head_dim")) or hd
        q_rank = _positive_int(cfg.get("q_lora_rank"))
        q_head = nope + rope
        q = h * q_rank + q_rank + q_rank * heads * q_head if q_rank else h * heads * q_head
        attn = q + h * (kv_rank + rope) + kv_rank + kv_rank * heads * (nope + v_dim) + heads * v_dim * h
    else:
        attn = 2 * h * heads * hd + 2 * h * kv * hd
        if cfg.get("attention_bias") is True or shape.model_type in {"qwen2", "qwen2_moe", "qwen2_vl"}:
            attn += (heads + 2 * kv) * hd
    mats = 2 if shape.model_type in _NON_GATED_MLP_TYPES else 3
    inter = shape.intermediate_size or 4 * h
    dense_mlp = mats * h * inter
    if shape.is_moe:
        experts = shape.num_experts or 0
        expert_inter = _positive_int(cfg.get("moe_intermediate_size")) or inter
        shared = 0
        if (n_shared := _positive_int(cfg.get("n_shared_experts"))) is not None:
            shared = n_shared * mats * h * expert_inter
        elif (shared_inter := _positive_int(cfg.get("shared_expert_intermediate_size"))) is not None:
            shared = mats * h * shared_inter
        moe_mlp = experts * mats * h * expert_inter + shared + h * experts
        dense_layers = min(_positive_int(cfg.get("first_k_dense_replace")) or 0, layers)
        mlp = dense_layers * dense_mlp + (layers - dense_layers) * moe_mlp
    else:
        mlp = layers * dense_mlp
    vocab = shape.vocab_size or 0
    embeddings = vocab * h * (1 if shape.tie_word_embeddings else 2)
    return layers * attn + mlp + layers * 2 * h + h + embeddings


def _quantized_bytes_per_param(quant: Mapping[str, Any]) -> float:
    """Rough bytes per quantized weight from a ``quantization_config``."""
    method = str(quant.get("quant_method") or "").lower()
    bits = _positive_int(quant.get("bits")) or _positive_int(quant.get("w_bit"))
    if bits:
        return bits / 8 + 0.02  # plus group scales/zeros
    if "fp8" in method:
        return 1.0
    if "mxfp4" in method or "nvfp4" in method:
        return 0.53  # 4-bit values plus one 8-bit scale per 32
    return 2.0


def weights_from_config(shape: ModelShape) -> WeightsInfo:
    """Estimated weights when no safetensors metadata exists (``exact=False``)."""
    params = estimate_parameters(shape)
    note = "estimated from config.json (no safetensors metadata)"
    if shape.is_multimodal:
        note += "; the vision/audio encoder is not counted"
    if shape.quantization_config is None:
        label = {"float16": "F16", "float32": "F32"}.get(shape.dtype or "", "BF16")
        return WeightsInfo(
            total_bytes=dtype_nbytes(label, params),
            parameter_count=params,
            by_dtype={label: params},
            exact=False,
            source="config-estimate",
            note=note,
        )
    # embeddings and lm_head usually stay 16-bit in quantized checkpoints
    embedding = min(
        (shape.vocab_size or 0) * (shape.hidden_size or 0) * (1 if shape.tie_word_embeddings else 2), params
    )
    per_param = _quantized_bytes_per_param(shape.quantization_config)
    return WeightsInfo(
        total_bytes=math.ceil((params - embedding) * per_param) + embedding * 2,
        parameter_count=params,
        by_dtype={},
        exact=False,
        source="config-estimate",
        note=f"{note}; {shape.quantization} quantization estimated at ~{per_param:.2f} bytes per weight",
    )


# --------------------------------------------------------------------------------------------
# GPU, overheads, utilization
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuSpec:
    """The GPU as the estimator needs it: runtime memory, GPUs per node, per-GPU overrides."""

    name: str
    memory_gib: float
    gpus_per_node: int | None = None
    features: tuple[str, ...] = ()
    vllm_version: str | None = None
    activation_overhead_gib: Mapping[str, float] | None = field(default=None, hash=False)
    non_torch_gib: float | None = None
    memory_source: str = "given"

    @classmethod
    def from_profile(cls, profile: GpuProfile, *, gpus_per_node: int | None = None) -> GpuSpec:
        """Adapt a GPU profile (measured memory if known, else derived from the nominal GB)."""
        memory_gb = int(profile.memory_gb) if float(profile.memory_gb).is_integer() else profile.memory_gb
        return cls(
            name=profile.name,
            memory_gib=profile.runtime_memory_gib,
            gpus_per_node=gpus_per_node if gpus_per_node is not None else profile.gpus_per_node,
            features=profile.features,
            vllm_version=profile.vllm_version,
            activation_overhead_gib=profile.activation_overhead_gib,
            non_torch_gib=profile.non_torch_gib,
            memory_source="measured" if profile.memory_is_measured else f"derived from {memory_gb} GB nominal",
        )

    def has_feature(self, feature: str) -> bool:
        """Case-insensitive feature test."""
        return feature.lower() in (f.lower() for f in self.features)

    @property
    def ampere_or_newer(self) -> bool:
        """Compute capability ≥ 8.0 (bf16 support); assumed when the features are not known."""
        return not self.features or self.has_feature("bf16")


def as_gpu_spec(gpu: GpuSpec | GpuProfile) -> GpuSpec:
    """Accept either a profile or a spec."""
    return gpu if isinstance(gpu, GpuSpec) else GpuSpec.from_profile(gpu)


@dataclass(frozen=True)
class Overheads:
    """Per-GPU memory vLLM uses besides weights and KV cache, and where each figure comes from."""

    activation_gib: float
    non_torch_gib: float
    source: str = "caller"
    cuda_graph_gib: float = 0.0
    activation_source: str | None = None
    non_torch_source: str | None = None
    cuda_graph_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {activationGiB, nonTorchGiB, cudaGraphGiB, source, sources{…}}."""
        return {
            "activationGiB": round(self.activation_gib, 2),
            "nonTorchGiB": round(self.non_torch_gib, 2),
            "cudaGraphGiB": round(self.cuda_graph_gib, 2),
            "source": self.source,
            "sources": {
                "activation": self.activation_source or self.source,
                "nonTorch": self.non_torch_source or self.source,
                "cudaGraphs": self.cuda_graph_source or self.source,
            },
        }


def modelled_overheads(run: ProfileRun) -> Overheads:
    """The overheads of a modelled profiling run (CUDA graphs only where the version budgets them)."""
    graphs = run.cuda_graph_bytes if run.cuda_graphs_budgeted else 0
    version = f"vLLM {run.version}" if run.version else "vLLM (version unknown)"
    if not run.cuda_graphs_budgeted:
        graph_source = f"not in the budget before vLLM 0.21 ({version})"
    elif run.cuda_graph_bytes == 0:
        graph_source = "none: --enforce-eager"
    else:
        graph_source = f"model: {version} profiles CUDA graphs (approximation)"
    return Overheads(
        activation_gib=gib(run.activation_bytes),
        non_torch_gib=gib(run.non_torch_bytes),
        source=f"model of the {version} profiling run",
        cuda_graph_gib=gib(graphs),
        activation_source=f"model: {run.activation_formula}",
        non_torch_source=f"model: {version}, {run.engine} engine",
        cuda_graph_source=graph_source,
    )


def resolve_overheads(run: ProfileRun, kind: ModelKind, gpu: GpuSpec, override: Overheads | None = None) -> Overheads:
    """Call override (a calibration or caller figures), else the GPU profile's values, else the model."""
    if override is not None:
        return override
    modelled = modelled_overheads(run)
    act = None
    if gpu.activation_overhead_gib is not None:
        act = gpu.activation_overhead_gib.get(kind, gpu.activation_overhead_gib.get("*"))
    if act is None and gpu.non_torch_gib is None:
        return modelled
    measured = f"GPU profile {gpu.name} (profile measurement)"
    return replace(
        modelled,
        activation_gib=act if act is not None else modelled.activation_gib,
        non_torch_gib=gpu.non_torch_gib if gpu.non_torch_gib is not None else modelled.non_torch_gib,
        source=measured + (" + model" if act is None or gpu.non_torch_gib is None else ""),
        activation_source=measured if act is not None else modelled.activation_source,
        non_torch_source=measured if gpu.non_torch_gib is not None else modelled.non_torch_source,
    )


def default_gpu_memory_utilization(vllm_version: str | None) -> float:
    """vLLM's default ``--gpu-memory-utilization`` for a release (0.90 before 0.21.0, then 0.92)."""
    parsed = parse_version(vllm_version) if vllm_version else None
    if parsed is None:
        return UTILIZATION_BEFORE_CUTOFF
    return UTILIZATION_FROM_CUTOFF if parsed >= UTILIZATION_CUTOFF_VERSION else UTILIZATION_BEFORE_CUTOFF


def valid_tensor_parallel_sizes(shape: ModelShape, limit: int) -> list[int]:
    """Tensor-parallel sizes ≤ limit that vLLM accepts for this model's heads."""
    return [tp for tp in range(1, max(limit, 0) + 1) if not _tp_head_errors(shape, tp)]


def _tp_head_errors(shape: ModelShape, tp: int) -> list[str]:
    errors = []
    if shape.num_attention_heads % tp:
        errors.append(f"--tensor-parallel-size {tp} does not divide the {shape.num_attention_heads} attention heads")
    elif not shape.is_mla:
        kv = shape.num_kv_heads
        if (kv >= tp and kv % tp) or (kv < tp and tp % kv):
            errors.append(f"--tensor-parallel-size {tp} does not divide the {kv} KV heads (nor they it)")
    return errors


# --------------------------------------------------------------------------------------------
# The estimate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """vLLM's per-GPU memory budget for one configuration."""

    total_bytes: int
    usable_bytes: int
    weights_bytes: int
    weights_per_gpu_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    kv_budget_bytes: int
    kv_bytes_per_token: int
    kv_bytes_per_token_per_gpu: int
    num_blocks: int
    model_max_len: int
    cuda_graph_bytes: int = 0

    @property
    def kv_tokens(self) -> int:
        """Tokens the KV cache holds (whole 16-token blocks)."""
        return self.num_blocks * BLOCK_SIZE

    def sequence_bytes(self, max_model_len: int) -> int:
        """KV bytes one sequence of this length needs on a GPU (whole blocks, as vLLM checks)."""
        return math.ceil(max_model_len / BLOCK_SIZE) * BLOCK_SIZE * self.kv_bytes_per_token_per_gpu

    def fits(self, max_model_len: int) -> bool:
        """Whether vLLM starts with this max-model-len."""
        return self.kv_budget_bytes > 0 and math.ceil(max_model_len / BLOCK_SIZE) <= self.num_blocks

    @property
    def largest_max_model_len(self) -> int:
        """Largest max-model-len that starts: a multiple of 16, capped at the model's maximum; 0 if none."""
        if self.num_blocks <= 0:
            return 0
        return min(self.kv_tokens, self.model_max_len)


def compute_budget(
    shape: ModelShape,
    weights_bytes: int,
    *,
    memory_gib: float,
    utilization: float,
    tensor_parallel: int,
    kv_dtype_bytes: int,
    overheads: Overheads,
    model_max_len: int,
) -> Budget:
    """The budget arithmetic alone (no verdict): ``total * util - weights/tp - activation - non_torch - graphs``."""
    total = gib_to_bytes(memory_gib)
    usable = math.floor(total * utilization)
    per_gpu = math.ceil(weights_bytes / tensor_parallel)
    activation = gib_to_bytes(overheads.activation_gib)
    non_torch = gib_to_bytes(overheads.non_torch_gib)
    graphs = gib_to_bytes(overheads.cuda_graph_gib)
    kv_budget = usable - per_gpu - activation - non_torch - graphs
    per_token_gpu = shape.kv_bytes_per_token_per_gpu(kv_dtype_bytes, tensor_parallel)
    blocks = kv_budget // (BLOCK_SIZE * per_token_gpu) if kv_budget > 0 and per_token_gpu > 0 else 0
    return Budget(
        total_bytes=total,
        usable_bytes=usable,
        weights_bytes=weights_bytes,
        weights_per_gpu_bytes=per_gpu,
        activation_bytes=activation,
        non_torch_bytes=non_torch,
        kv_budget_bytes=kv_budget,
        kv_bytes_per_token=shape.kv_bytes_per_token(kv_dtype_bytes),
        kv_bytes_per_token_per_gpu=per_token_gpu,
        num_blocks=int(blocks),
        model_max_len=model_max_len,
        cuda_graph_bytes=graphs,
    )


@dataclass(frozen=True)
class Fix:
    """One change that would make the model start (or start with more context)."""

    kind: str
    flag: str | None
    value: str
    description: str
    kv_tokens: int
    max_model_len: int
    fits_requested: bool
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {kind, flag, value, description, kvTokens, maxModelLen, fitsRequested}."""
        return {
            "kind": self.kind,
            "flag": self.flag,
            "value": self.value,
            "description": self.description,
            "kvTokens": self.kv_tokens,
            "maxModelLen": self.max_model_len,
            "fitsRequested": self.fits_requested,
        }


@dataclass(frozen=True)
class FlagRecommendation:
    """A concrete vLLM flag with a one-line reason."""

    flag: str
    value: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form: {flag, value, reason}."""
        return {"flag": self.flag, "value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class FitReport:
    """The verdict and every figure behind it."""

    verdict: Verdict
    level: Level
    summary: str
    reasons: tuple[str, ...]
    errors: tuple[str, ...]
    approximate_reasons: tuple[str, ...]
    gpu: GpuSpec
    shape: ModelShape
    weights: WeightsInfo
    overheads: Overheads
    budget: Budget
    max_model_len: int
    max_model_len_source: str
    tensor_parallel: int
    gpu_memory_utilization: float
    utilization_source: str
    dtype: str
    kv_cache_dtype: str
    kv_dtype_bytes: int
    fixes: tuple[Fix, ...] = ()
    vllm_version: str | None = None
    profile_run: ProfileRun | None = None

    @property
    def spare_bytes(self) -> int:
        """KV budget left beyond one full-length sequence (the safety margin; negative when it does not fit)."""
        return self.budget.kv_budget_bytes - self.budget.sequence_bytes(self.max_model_len)

    @property
    def approximate(self) -> bool:
        """Whether the KV or weights figures are estimates rather than exact."""
        return bool(self.approximate_reasons)

    @property
    def fits(self) -> bool:
        """Whether vLLM starts with the requested settings."""
        return self.verdict == "fits"

    @property
    def largest_max_model_len(self) -> int:
        """Largest max-model-len that starts with these settings (0 if none)."""
        return self.budget.largest_max_model_len

    @property
    def max_concurrency(self) -> float:
        """``kv_budget / (max_model_len * kv_bytes_per_token)`` (0 when nothing fits)."""
        b = self.budget
        if b.kv_budget_bytes <= 0:
            return 0.0
        return b.kv_budget_bytes / (self.max_model_len * b.kv_bytes_per_token_per_gpu)

    def _profile_settings(self) -> dict[str, Any]:
        run = self.profile_run
        if run is None:
            return {}
        return {
            "engine": run.engine,
            "maxNumBatchedTokens": run.max_num_batched_tokens,
            "maxNumBatchedTokensSource": run.max_num_batched_tokens_source,
            "maxNumSeqs": run.max_num_seqs,
            "maxNumSeqsSource": run.max_num_seqs_source,
            "enforceEager": run.cuda_graph_bytes == 0,
            "assumptions": list(run.assumptions),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form with camelCase keys; every memory figure in bytes and GiB."""
        b = self.budget
        seq = b.sequence_bytes(self.max_model_len)
        return {
            "verdict": self.verdict,
            "level": self.level,
            "fits": self.fits,
            "summary": self.summary,
            "reasons": list(self.reasons),
            "errors": list(self.errors),
            "approximate": self.approximate,
            "approximateReasons": list(self.approximate_reasons),
            "gpu": {
                "name": self.gpu.name,
                "count": self.tensor_parallel,
                "gpusPerNode": self.gpu.gpus_per_node,
                **_mem("totalMemory", b.total_bytes),
                "memorySource": self.gpu.memory_source,
            },
            "settings": {
                "maxModelLen": self.max_model_len,
                "maxModelLenSource": self.max_model_len_source,
                "modelMaxLen": b.model_max_len,
                "tensorParallelSize": self.tensor_parallel,
                "gpuMemoryUtilization": self.gpu_memory_utilization,
                "gpuMemoryUtilizationSource": self.utilization_source,
                "dtype": self.dtype,
                "kvCacheDtype": self.kv_cache_dtype,
                "kvCacheDtypeBytes": self.kv_dtype_bytes,
                "vllmVersion": self.vllm_version,
                **self._profile_settings(),
            },
            "memory": {
                **_mem("total", b.total_bytes),
                **_mem("usable", b.usable_bytes),
                **_mem("weights", b.weights_bytes),
                **_mem("weightsPerGpu", b.weights_per_gpu_bytes),
                **_mem("activation", b.activation_bytes),
                **_mem("nonTorch", b.non_torch_bytes),
                **_mem("cudaGraphs", b.cuda_graph_bytes),
                **_mem("kvBudget", b.kv_budget_bytes),
                **_mem("spare", self.spare_bytes),
                **_mem("unused", b.total_bytes - b.usable_bytes),
            },
            "weights": self.weights.to_dict(),
            "overheads": {**self.overheads.to_dict(), "modelKind": self.shape.kind},
            "kvCache": {
                "bytesPerToken": b.kv_bytes_per_token,
                "bytesPerTokenPerGpu": b.kv_bytes_per_token_per_gpu,
                "formula": self.shape.kv_formula(self.kv_dtype_bytes, self.tensor_parallel),
                "blockSize": BLOCK_SIZE,
                "blocks": b.num_blocks,
                "tokens": b.kv_tokens,
                **_mem("sequence", seq),
                "maxConcurrency": round(self.max_concurrency, 2),
            },
            "largestMaxModelLen": self.largest_max_model_len,
            "fixes": [f.to_dict() for f in self.fixes],
        }


def _serving_dtype(shape: ModelShape, gpu: GpuSpec, requested: str) -> str:
    """The dtype vLLM computes in: ``auto`` follows the model, float32 and bf16-less GPUs get 16-bit."""
    if requested != "auto":
        wanted = normalize_dtype(requested)
        if wanted is None:
            raise InvalidInput(f"unknown dtype {requested!r} (use auto, bfloat16, float16 or float32)")
        return wanted
    bf16_ok = not gpu.features or gpu.has_feature("bf16")
    if shape.dtype == "float16":
        return "float16"
    if shape.dtype == "bfloat16":
        return "bfloat16" if bf16_ok else "float16"
    # float32 or unknown: vLLM serves it in 16-bit
    return "bfloat16" if bf16_ok and gpu.features else "float16"


def _kv_dtype_bytes(kv_cache_dtype: str, serving_bytes: int) -> int:
    key = kv_cache_dtype.strip().lower()
    if key == "auto":
        return serving_bytes
    if key not in KV_CACHE_DTYPE_BYTES:
        allowed = ", ".join(["auto", *KV_CACHE_DTYPE_BYTES])
        raise InvalidInput(f"unknown kv_cache_dtype {kv_cache_dtype!r} (use one of {allowed})")
    return KV_CACHE_DTYPE_BYTES[key]


@dataclass(frozen=True)
class VllmFlags:
    """The vLLM engine flags the profiling run depends on (None = the engine's default)."""

    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    enforce_eager: bool = False


def _check_arguments(
    spec: GpuSpec, tensor_parallel: int, max_model_len: int | None, utilization: float | None, flags: VllmFlags
) -> None:
    if isinstance(tensor_parallel, bool) or not isinstance(tensor_parallel, int) or tensor_parallel < 1:
        raise InvalidInput("tensor_parallel must be a whole number ≥ 1", details={"field": "tensor_parallel"})
    if max_model_len is not None and (isinstance(max_model_len, bool) or max_model_len < 1):
        raise InvalidInput("max_model_len must be a whole number ≥ 1", details={"field": "max_model_len"})
    if utilization is not None and not 0 < utilization <= 1:
        raise InvalidInput("gpu_memory_utilization must be in (0, 1]", details={"field": "gpu_memory_utilization"})
    for name, value in (("max_num_batched_tokens", flags.max_num_batched_tokens), ("max_num_seqs", flags.max_num_seqs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInput(f"{name} must be a whole number ≥ 1", details={"field": name})
    if spec.memory_gib <= 0:
        raise InvalidInput(f"GPU {spec.name} has no memory configured")


def _config_errors(shape: ModelShape, spec: GpuSpec, tp: int) -> list[str]:
    errors = _tp_head_errors(shape, tp)
    if spec.gpus_per_node is not None and tp > spec.gpus_per_node:
        errors.append(
            f"--tensor-parallel-size {tp} needs {tp} GPUs on one node; {spec.name} nodes have {spec.gpus_per_node}"
        )
    return errors


def estimate_fit(
    shape: ModelShape,
    weights: WeightsInfo,
    gpu: GpuSpec | GpuProfile,
    *,
    max_model_len: int | None = None,
    tensor_parallel: int = 1,
    gpu_memory_utilization: float | None = None,
    kv_cache_dtype: str = "auto",
    dtype: str = "auto",
    overheads: Overheads | None = None,
    vllm_version: str | None = None,
    profiles: Sequence[GpuSpec | GpuProfile] = (),
    max_num_batched_tokens: int | None = None,
    max_num_seqs: int | None = None,
    enforce_eager: bool = False,
) -> FitReport:
    """Estimate whether vLLM starts with these settings, how much KV cache it gets, and what would help."""
    spec = as_gpu_spec(gpu)
    flags = VllmFlags(max_num_batched_tokens, max_num_seqs, bool(enforce_eager))
    _check_arguments(spec, tensor_parallel, max_model_len, gpu_memory_utilization, flags)
    version = vllm_version or spec.vllm_version
    util, util_source = _utilization(gpu_memory_utilization, version)
    serving = _serving_dtype(shape, spec, dtype)
    serving_bytes = SERVING_DTYPE_BYTES[serving]
    kv_bytes = _kv_dtype_bytes(kv_cache_dtype, serving_bytes)
    model_max, approx = _model_limits(shape, weights)
    length = max_model_len if max_model_len is not None else model_max

    errors = _config_errors(shape, spec, tensor_parallel)
    tp_invalid = bool(errors)
    if length > model_max:
        errors.append(
            f"--max-model-len {length:,} exceeds the model's maximum context ({model_max:,} tokens); vLLM refuses it"
        )
    context = _Context(
        shape=shape,
        weights=weights,
        gpu=spec,
        util=util,
        util_requested=gpu_memory_utilization is not None,
        vllm_version=version,
        tp=tensor_parallel,
        kv_cache_dtype=kv_cache_dtype,
        kv_bytes=kv_bytes,
        serving_bytes=serving_bytes,
        overheads=overheads,
        model_max=model_max,
        length=length,
        flags=flags,
    )
    run = context.profile_run(spec, tensor_parallel)
    resolved = resolve_overheads(run, shape.kind, spec, overheads)
    if overheads is None:
        approx.extend(n for n in run.notes if n not in approx)
    weights_mem = weights.memory_bytes(serving_bytes, quantized=shape.quantization is not None)
    budget = context.budget_for(weights_bytes=weights_mem, overheads=resolved)
    context = replace(context, budget=budget)
    verdict, level = _verdict(budget, length, model_max, bool(errors))
    fixes = () if verdict == "fits" else tuple(_fixes(context, profiles, tp_invalid=tp_invalid))
    report = FitReport(
        verdict=verdict,
        level=level,
        summary="",
        reasons=tuple(_reasons(context, resolved, weights_mem, util_source) + errors),
        errors=tuple(errors),
        approximate_reasons=tuple(approx),
        gpu=spec,
        shape=shape,
        weights=weights,
        overheads=resolved,
        budget=budget,
        max_model_len=length,
        max_model_len_source="requested" if max_model_len is not None else "model default",
        tensor_parallel=tensor_parallel,
        gpu_memory_utilization=util,
        utilization_source=util_source,
        dtype=serving,
        kv_cache_dtype=kv_cache_dtype,
        kv_dtype_bytes=kv_bytes,
        fixes=fixes,
        vllm_version=version,
        profile_run=run,
    )
    return _with_summary(report)


def _utilization(requested: float | None, version: str | None) -> tuple[float, str]:
    """The utilization to model and where it came from."""
    if requested is not None:
        return requested, "requested"
    source = f"vLLM {version} default" if version else "vLLM default (runtime version unknown)"
    return default_gpu_memory_utilization(version), source


def _model_limits(shape: ModelShape, weights: WeightsInfo) -> tuple[int, list[str]]:
    """The model's maximum context and the reasons the estimate is approximate."""
    approx = list(shape.approximate_reasons)
    model_max = shape.max_position_embeddings
    if model_max is None:
        model_max = FALLBACK_MAX_MODEL_LEN
        approx.append(f"config.json has no max_position_embeddings; assuming {FALLBACK_MAX_MODEL_LEN:,}")
    if not weights.exact:
        approx.append(weights.note or "weights estimated from config.json")
    return model_max, approx


def _verdict(budget: Budget, length: int, model_max: int, invalid: bool) -> tuple[Verdict, Level]:
    if invalid:
        return "invalid", "no"
    if budget.fits(length):
        return "fits", "fits"
    useful = min(MIN_USEFUL_MAX_MODEL_LEN, model_max)
    return "does_not_start", "reduced" if budget.largest_max_model_len >= useful else "no"


@dataclass(frozen=True)
class _Context:
    shape: ModelShape
    weights: WeightsInfo
    gpu: GpuSpec
    util: float
    util_requested: bool
    vllm_version: str | None
    tp: int
    kv_cache_dtype: str
    kv_bytes: int
    serving_bytes: int
    overheads: Overheads | None
    model_max: int
    length: int
    flags: VllmFlags = field(default_factory=VllmFlags)
    budget: Budget | None = None

    @property
    def current(self) -> Budget:
        assert self.budget is not None
        return self.budget

    def profile_run(self, gpu: GpuSpec, tp: int) -> ProfileRun:
        """vLLM's profiling run modelled for this model on ``gpu`` at tensor parallel ``tp``."""
        inputs = ProfileInputs(
            vllm_version=self.vllm_version or gpu.vllm_version,
            gpu_name=gpu.name,
            gpu_memory_gib=gpu.memory_gib,
            ampere_or_newer=gpu.ampere_or_newer,
            serving_bytes=self.serving_bytes,
            tensor_parallel=tp,
            max_model_len=min(self.length, self.model_max),
            max_num_batched_tokens=self.flags.max_num_batched_tokens,
            max_num_seqs=self.flags.max_num_seqs,
            enforce_eager=self.flags.enforce_eager,
        )
        return model_profile_run(self.shape, inputs)

    def budget_for(
        self,
        *,
        gpu: GpuSpec | None = None,
        tp: int | None = None,
        kv_bytes: int | None = None,
        weights_bytes: int | None = None,
        overheads: Overheads | None = None,
    ) -> Budget:
        """The budget with one thing changed (another GPU, tp, KV dtype or weights size)."""
        g = gpu or self.gpu
        t = tp or self.tp
        util = (
            self.util
            if (g is self.gpu or self.util_requested)
            else default_gpu_memory_utilization(self.vllm_version or g.vllm_version)
        )
        return compute_budget(
            self.shape,
            weights_bytes if weights_bytes is not None else self.current.weights_bytes,
            memory_gib=g.memory_gib,
            utilization=util,
            tensor_parallel=t,
            kv_dtype_bytes=kv_bytes or self.kv_bytes,
            overheads=overheads or self._overheads_for(g, t),
            model_max_len=self.model_max,
        )

    def _overheads_for(self, gpu: GpuSpec, tp: int) -> Overheads:
        """Overheads for an alternative GPU or tensor-parallel size."""
        # Caller-measured overheads describe this model, so they carry over to other GPUs; only the
        # non-torch part moves with tensor parallel (NCCL buffers), by the model's difference.
        run = self.profile_run(gpu, tp)
        if self.overheads is None:
            return resolve_overheads(run, self.shape.kind, gpu, None)
        if tp == self.tp:
            return self.overheads
        delta = gib(run.non_torch_bytes - self.profile_run(self.gpu, self.tp).non_torch_bytes)
        return replace(
            self.overheads,
            non_torch_gib=max(0.0, self.overheads.non_torch_gib + delta),
            source=f"{self.overheads.source}, non-torch adjusted for tensor-parallel {tp}",
        )


def _gpus(n: int) -> str:
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def _fixes(ctx: _Context, profiles: Sequence[GpuSpec | GpuProfile], *, tp_invalid: bool) -> list[Fix]:
    """Ranked fixes: no-hardware fixes that reach the requested length, then max-model-len, then hardware."""
    if tp_invalid:
        tp_fix = _tensor_parallel_fix(ctx, min(ctx.length, ctx.model_max), invalid=True)
        return [tp_fix] if tp_fix is not None else []
    fixes: list[Fix] = []
    b, length = ctx.current, ctx.length
    largest = b.largest_max_model_len
    target = min(length, ctx.model_max)
    if largest > 0 and (not b.fits(length) or length > ctx.model_max):
        fixes.append(
            Fix(
                kind="max-model-len",
                flag="--max-model-len",
                value=str(largest),
                description=(
                    f"lower --max-model-len to {largest:,} (or less): the KV cache holds "
                    f"{b.kv_tokens:,} tokens, one full-length sequence at most"
                ),
                kv_tokens=b.kv_tokens,
                max_model_len=largest,
                fits_requested=False,
                rank=2,
            )
        )
    if ctx.kv_bytes > 1:
        alt = ctx.budget_for(kv_bytes=1)
        if alt.kv_tokens > b.kv_tokens:
            ok = alt.fits(target)
            fixes.append(
                Fix(
                    kind="kv-cache-dtype",
                    flag="--kv-cache-dtype",
                    value="fp8",
                    description=(
                        f"--kv-cache-dtype fp8 stores the KV cache in 1 byte per value instead of "
                        f"{ctx.kv_bytes}: {alt.kv_tokens:,} tokens"
                        + (
                            ""
                            if ok
                            else f", still short of {target:,} (max-model-len up to {alt.largest_max_model_len:,})"
                        )
                    ),
                    kv_tokens=alt.kv_tokens,
                    max_model_len=alt.largest_max_model_len,
                    fits_requested=ok,
                    rank=0 if ok else 5,
                )
            )
    fixes.extend(_quantized_fixes(ctx, target))
    tp_fix = _tensor_parallel_fix(ctx, target, invalid=False)
    if tp_fix is not None:
        fixes.append(tp_fix)
    gpu_fix = _bigger_gpu_fix(ctx, target, profiles)
    if gpu_fix is not None:
        fixes.append(gpu_fix)
    return sorted(fixes, key=lambda f: f.rank)


def _quantized_fixes(ctx: _Context, target: int) -> list[Fix]:
    shape = ctx.shape
    if shape.quantization is not None or ctx.weights.parameter_count <= 0:
        return []
    if ctx.current.weights_bytes < ctx.weights.parameter_count * 1.5:
        return []  # already below 16 bits per parameter
    params = ctx.weights.parameter_count
    embed = min((shape.vocab_size or 0) * (shape.hidden_size or 0) * (1 if shape.tie_word_embeddings else 2), params)
    variants = (
        ("fp8", "an FP8 variant", 1.0),
        # AWQ/GPTQ 4-bit, group size 128: 0.5 B + fp16 scale and 4-bit zero per 128 weights
        ("awq-4bit", "an AWQ 4-bit variant", 0.5 + 2 / 128 + 0.5 / 128),
    )
    out = []
    for value, label, per_param in variants:
        # embeddings and lm_head stay 16-bit in both formats
        new_bytes = math.ceil((params - embed) * per_param) + embed * ctx.serving_bytes
        alt = ctx.budget_for(weights_bytes=new_bytes)
        if alt.kv_tokens <= ctx.current.kv_tokens:
            continue
        ok = alt.fits(target)
        out.append(
            Fix(
                kind="quantized-variant",
                flag=None,
                value=value,
                description=(
                    f"{label} of this model would need ~{_fmt_gib(new_bytes)} of weights "
                    f"(now {_fmt_gib(ctx.current.weights_bytes)}), leaving {alt.kv_tokens:,} tokens of KV cache"
                ),
                kv_tokens=alt.kv_tokens,
                max_model_len=alt.largest_max_model_len,
                fits_requested=ok,
                rank=1 if ok else 6,
            )
        )
        if ok:
            break
    return out


def _tensor_parallel_fix(ctx: _Context, target: int, *, invalid: bool) -> Fix | None:
    limit = ctx.gpu.gpus_per_node or MAX_TENSOR_PARALLEL_WHEN_UNKNOWN
    candidates = [t for t in valid_tensor_parallel_sizes(ctx.shape, limit) if t != ctx.tp and (invalid or t > ctx.tp)]
    best: tuple[int, Budget] | None = None
    for tp in candidates:
        alt = ctx.budget_for(tp=tp)
        if alt.fits(target):
            best = (tp, alt)
            break
        if (
            not invalid
            and alt.kv_tokens > ctx.current.kv_tokens
            and (best is None or alt.kv_tokens > best[1].kv_tokens)
        ):
            best = (tp, alt)
    if best is None:
        return None
    tp, alt = best
    ok = alt.fits(target)
    node = (
        f"the node has {ctx.gpu.gpus_per_node}"
        if ctx.gpu.gpus_per_node
        else "needs that many GPUs on one node (GPUs per node unknown)"
    )
    return Fix(
        kind="tensor-parallel",
        flag="--tensor-parallel-size",
        value=str(tp),
        description=(
            (
                f"--tensor-parallel-size {tp} spreads the weights over {_gpus(tp)} ({node}): "
                if tp > 1
                else "--tensor-parallel-size 1 (one GPU): "
            )
            + f"{alt.kv_tokens:,} tokens of KV cache per replica"
        ),
        kv_tokens=alt.kv_tokens,
        max_model_len=alt.largest_max_model_len,
        fits_requested=ok,
        rank=3 if ok else 7,
    )


def _bigger_gpu_fix(ctx: _Context, target: int, profiles: Sequence[GpuSpec | GpuProfile]) -> Fix | None:
    options = sorted(
        (as_gpu_spec(p) for p in profiles),
        key=lambda s: (s.memory_gib, s.name.lower()),
    )
    for spec in options:
        if spec.memory_gib <= ctx.gpu.memory_gib or spec.name.lower() == ctx.gpu.name.lower():
            continue
        if spec.gpus_per_node is not None and ctx.tp > spec.gpus_per_node:
            continue
        alt = ctx.budget_for(gpu=spec)
        if alt.fits(target):
            return Fix(
                kind="gpu-profile",
                flag=None,
                value=spec.name,
                description=(
                    f"a bigger GPU: {spec.name} ({spec.memory_gib:.2f} GiB) leaves "
                    f"{alt.kv_tokens:,} tokens of KV cache at these settings"
                ),
                kv_tokens=alt.kv_tokens,
                max_model_len=alt.largest_max_model_len,
                fits_requested=True,
                rank=4,
            )
    return None


def _reasons(ctx: _Context, over: Overheads, weights_mem: int, util_source: str) -> list[str]:
    b, tp = ctx.current, ctx.tp
    w = ctx.weights
    weights_source = "exact, from safetensors" if w.exact else "estimated from config.json"
    lines = [
        f"{ctx.gpu.name}: {_fmt_gib(b.total_bytes)} as the runtime sees it ({ctx.gpu.memory_source}) x "
        f"gpu-memory-utilization {ctx.util:g} ({util_source}) = {_fmt_gib(b.usable_bytes)} usable per GPU",
        f"weights: {_fmt_gib(weights_mem)} ({weights_source}, {w.parameter_count:,} parameters)"
        + (f"; {_fmt_gib(b.weights_per_gpu_bytes)} per GPU at tensor-parallel {tp}" if tp > 1 else ""),
        f"activation peak {over.activation_gib:.2f} GiB ({over.activation_source or over.source})",
        f"non-torch memory {over.non_torch_gib:.2f} GiB ({over.non_torch_source or over.source})",
        f"CUDA graphs {over.cuda_graph_gib:.2f} GiB ({over.cuda_graph_source or over.source})",
        f"KV cache: {b.kv_bytes_per_token_per_gpu:,} bytes per token per GPU "
        f"({ctx.shape.kv_formula(ctx.kv_bytes, tp)})",
    ]
    if b.kv_budget_bytes > 0:
        lines.append(
            f"left for the KV cache: {_fmt_gib(b.kv_budget_bytes)} = {b.num_blocks:,} blocks of {BLOCK_SIZE} "
            f"tokens = {b.kv_tokens:,} tokens"
        )
    else:
        lines.append(f"left for the KV cache: nothing ({_fmt_gib(b.kv_budget_bytes)})")
    return lines


def _with_summary(report: FitReport) -> FitReport:
    b = report.budget
    where = f"{report.tensor_parallel}x {report.gpu.name}"
    length = report.max_model_len
    if report.verdict == "invalid":
        summary = "Not a valid configuration: " + "; ".join(report.errors) + "."
    elif report.verdict == "fits":
        summary = (
            f"Fits on {where}, with {_fmt_gib(report.spare_bytes)} to spare beyond one {length:,}-token "
            f"sequence: {_fmt_gib(b.kv_budget_bytes)} of KV cache = {b.kv_tokens:,} tokens, "
            f"{report.max_concurrency:.1f}x concurrency at {length:,} tokens per request."
        )
    elif b.kv_budget_bytes <= 0:
        summary = (
            f"Does not start on {where}: the weights ({_fmt_gib(b.weights_per_gpu_bytes)} per GPU) and runtime "
            f"overhead ({_fmt_gib(b.activation_bytes + b.non_torch_bytes + b.cuda_graph_bytes)}) leave no memory for the KV cache "
            f"({_fmt_gib(b.usable_bytes)} usable)."
        )
    else:
        summary = (
            f"Does not start on {where} at --max-model-len {length:,}: a single {length:,}-token sequence needs "
            f"{_fmt_gib(b.sequence_bytes(length))} of KV cache, only {_fmt_gib(b.kv_budget_bytes)} is left."
        )
        if report.level == "reduced":
            summary += f" It fits with --max-model-len {b.largest_max_model_len:,} or less."
    version = f"vLLM {report.vllm_version}" if report.vllm_version else "vLLM (version unknown)"
    summary += f" Modelled for {version}."
    if report.approximate:
        summary += " (approximate)"
    return replace(report, summary=summary)


# --------------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------------


def _safe_max_model_len(largest: int) -> int:
    """Round down to a multiple of 1,024 (from 2,048 up) to leave a margin for estimate error."""
    return largest // 1024 * 1024 if largest >= 2048 else largest


def recommend_flags(report: FitReport) -> list[FlagRecommendation]:
    """Concrete vLLM flags for the estimated setup, each with a one-line reason."""
    shape, gpu, b = report.shape, report.gpu, report.budget
    flags: list[FlagRecommendation] = []
    if report.dtype == "float16" and shape.dtype == "bfloat16":
        dtype_reason = f"{gpu.name} has no bf16 support; the bfloat16 model runs in float16"
    elif report.dtype == "float16" and shape.dtype == "float32":
        dtype_reason = "float32 checkpoint served in 16-bit (half the memory)"
    else:
        dtype_reason = f"the model's own dtype ({shape.dtype or 'unknown'})"
    flags.append(FlagRecommendation("--dtype", report.dtype, dtype_reason))

    valid = report.verdict != "invalid"
    fp8_fix = next((f for f in report.fixes if f.kind == "kv-cache-dtype" and f.fits_requested), None)
    len_fix = next((f for f in report.fixes if f.kind == "max-model-len"), None)
    chosen_len: int | None = None
    if report.fits:
        chosen_len = report.max_model_len
        flags.append(
            FlagRecommendation(
                "--max-model-len",
                str(chosen_len),
                f"fits: {b.kv_tokens:,} tokens of KV cache, {report.max_concurrency:.1f} full-length requests at once",
            )
        )
    elif valid and fp8_fix is not None:
        flags.append(FlagRecommendation("--kv-cache-dtype", "fp8", fp8_fix.description))
        flags.append(
            FlagRecommendation("--max-model-len", str(report.max_model_len), "fits once the KV cache is stored in fp8")
        )
    elif len_fix is not None:
        chosen_len = _safe_max_model_len(len_fix.max_model_len)
        flags.append(
            FlagRecommendation(
                "--max-model-len",
                str(chosen_len),
                f"{report.max_model_len:,} does not fit; up to {len_fix.max_model_len:,} does "
                "(rounded down for margin)",
            )
        )
    flags.append(
        FlagRecommendation(
            "--gpu-memory-utilization",
            f"{report.gpu_memory_utilization:g}",
            f"share of {_fmt_gib(b.total_bytes)} vLLM may use ({report.utilization_source})",
        )
    )
    if valid and report.tensor_parallel > 1:
        flags.append(
            FlagRecommendation(
                "--tensor-parallel-size",
                str(report.tensor_parallel),
                f"weights split over {_gpus(report.tensor_parallel)}: {_fmt_gib(b.weights_per_gpu_bytes)} each",
            )
        )
    if valid and chosen_len is not None:
        headroom = b.kv_budget_bytes - b.sequence_bytes(chosen_len)
        if headroom < gib_to_bytes(CUDA_GRAPH_GIB):
            flags.append(
                FlagRecommendation(
                    "--enforce-eager",
                    None,
                    f"memory is tight ({_fmt_gib(headroom)} beyond one full sequence): CUDA graphs take "
                    f"~{CUDA_GRAPH_GIB} GiB per GPU; eager mode frees it at some cost in decode speed",
                )
            )
    if shape.trust_remote_code:
        flags.append(
            FlagRecommendation(
                "--trust-remote-code", None, "config.json has auto_map: the model ships its own Python code"
            )
        )
    return flags
