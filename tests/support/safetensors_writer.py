"""Build real safetensors files (8-byte length, JSON header, raw data) for the local Hub server."""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# Bytes per element of every dtype the safetensors format knows.
DTYPE_SIZES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
}

# The `torch_dtype` a transformers config.json carries for a safetensors dtype.
TORCH_DTYPES: dict[str, str] = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E5M2": "float8_e5m2",
    "I8": "int8",
    "U8": "uint8",
}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a safetensors file: its name, dtype and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        """Number of elements (parameters) of the tensor."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.numel * DTYPE_SIZES[self.dtype]


def encode_header(specs: Sequence[TensorSpec], metadata: Mapping[str, str] | None = None) -> bytes:
    """Return the 8-byte little-endian length plus the JSON header (space-padded to 8 bytes)."""
    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = {str(key): str(value) for key, value in metadata.items()}
    offset = 0
    for spec in specs:
        if spec.dtype not in DTYPE_SIZES:
            raise ValueError(f"unknown safetensors dtype {spec.dtype!r}")
        header[spec.name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def data_size(specs: Iterable[TensorSpec]) -> int:
    """Total size of the tensors' data in bytes."""
    return sum(spec.nbytes for spec in specs)


def build_safetensors(
    specs: Sequence[TensorSpec], *, metadata: Mapping[str, str] | None = None, seed: int = 0
) -> bytes:
    """Return a complete safetensors file with seeded random tensor data."""
    if metadata is None:
        metadata = {"format": "pt"}
    return encode_header(specs, metadata) + random.Random(seed).randbytes(data_size(specs))


def parse_header(data: bytes) -> dict[str, object]:
    """Parse the JSON header at the start of a safetensors file (at least the header bytes)."""
    (length,) = struct.unpack("<Q", data[:8])
    parsed: dict[str, object] = json.loads(data[8 : 8 + length])
    return parsed


def parameter_counts(specs: Iterable[TensorSpec]) -> dict[str, int]:
    """Number of parameters per dtype, as the Hub reports it under `safetensors.parameters`."""
    counts: dict[str, int] = {}
    for spec in specs:
        counts[spec.dtype] = counts.get(spec.dtype, 0) + spec.numel
    return counts


def llama_tensor_specs(
    *,
    num_hidden_layers: int,
    hidden_size: int,
    intermediate_size: int,
    num_attention_heads: int,
    num_key_value_heads: int,
    vocab_size: int,
    dtype: str = "BF16",
    norm_dtype: str | None = None,
    tie_word_embeddings: bool = False,
) -> list[TensorSpec]:
    """Tensors of a Llama-style decoder, named as transformers saves them."""
    norm_dtype = norm_dtype or dtype
    head_dim = hidden_size // num_attention_heads
    q_out = num_attention_heads * head_dim
    kv_out = num_key_value_heads * head_dim
    specs = [TensorSpec("model.embed_tokens.weight", dtype, (vocab_size, hidden_size))]
    for layer in range(num_hidden_layers):
        prefix = f"model.layers.{layer}"
        specs += [
            TensorSpec(f"{prefix}.input_layernorm.weight", norm_dtype, (hidden_size,)),
            TensorSpec(f"{prefix}.mlp.down_proj.weight", dtype, (hidden_size, intermediate_size)),
            TensorSpec(f"{prefix}.mlp.gate_proj.weight", dtype, (intermediate_size, hidden_size)),
            TensorSpec(f"{prefix}.mlp.up_proj.weight", dtype, (intermediate_size, hidden_size)),
            TensorSpec(f"{prefix}.post_attention_layernorm.weight", norm_dtype, (hidden_size,)),
            TensorSpec(f"{prefix}.self_attn.k_proj.weight", dtype, (kv_out, hidden_size)),
            TensorSpec(f"{prefix}.self_attn.o_proj.weight", dtype, (hidden_size, q_out)),
            TensorSpec(f"{prefix}.self_attn.q_proj.weight", dtype, (q_out, hidden_size)),
            TensorSpec(f"{prefix}.self_attn.v_proj.weight", dtype, (kv_out, hidden_size)),
        ]
    specs.append(TensorSpec("model.norm.weight", norm_dtype, (hidden_size,)))
    if not tie_word_embeddings:
        specs.append(TensorSpec("lm_head.weight", dtype, (vocab_size, hidden_size)))
    return specs


def split_into_shards(specs: Sequence[TensorSpec], shards: int) -> list[list[TensorSpec]]:
    """Split tensors, in order, into `shards` groups of roughly equal byte size (none empty)."""
    shards = max(1, min(shards, len(specs)))
    target = data_size(specs) / shards
    groups: list[list[TensorSpec]] = [[]]
    filled = 0
    for index, spec in enumerate(specs):
        remaining_tensors = len(specs) - index
        remaining_groups = shards - len(groups)
        must_split = remaining_tensors == remaining_groups and groups[-1]
        if groups[-1] and len(groups) < shards and (filled >= target * len(groups) or must_split):
            groups.append([])
        groups[-1].append(spec)
        filled += spec.nbytes
    return groups


def shard_filename(index: int, total: int) -> str:
    """Shard file name as transformers writes it (`model-00001-of-00003.safetensors`)."""
    if total == 1:
        return "model.safetensors"
    return f"model-{index + 1:05d}-of-{total:05d}.safetensors"
