"""The fit estimator against public measurements (fit-estimation.md reference cases) and real configs."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.errors import InvalidInput
from portal.services import fit, vllm_memory
from portal.services.fit import (
    GIB,
    Budget,
    GpuSpec,
    ModelShape,
    Overheads,
    SafetensorsHeaderError,
    WeightsInfo,
    compute_budget,
    default_gpu_memory_utilization,
    estimate_fit,
    estimate_parameters,
    read_safetensors_header,
    recommend_flags,
    weights_from_config,
    weights_from_hub_safetensors,
    weights_from_local_files,
    weights_from_parameter_counts,
)
from portal.services.gpu_profiles import find_profile, load_profiles

# --- real public config.json values -----------------------------------------------------------

LLAMA_31_8B: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0",
    "use_cache": True,
    "vocab_size": 128256,
}
LLAMA_3_8B = {**LLAMA_31_8B, "max_position_embeddings": 8192, "rope_scaling": None}

LLAMA_2_7B: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_act": "silu",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "vocab_size": 32000,
}

MISTRAL_SMALL_24B: dict[str, Any] = {
    "architectures": ["MistralForCausalLM"],
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 5120,
    "intermediate_size": 32768,
    "max_position_embeddings": 32768,
    "model_type": "mistral",
    "num_attention_heads": 32,
    "num_hidden_layers": 40,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05,
    "rope_theta": 100000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 131072,
}

DEEPSEEK_V3: dict[str, Any] = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "auto_map": {
        "AutoConfig": "configuration_deepseek.DeepseekV3Config",
        "AutoModel": "modeling_deepseek.DeepseekV3Model",
        "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM",
    },
    "first_k_dense_replace": 3,
    "hidden_act": "silu",
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048,
    "moe_layer_freq": 1,
    "n_group": 8,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_attention_heads": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "quantization_config": {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    },
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "v_head_dim": 128,
    "vocab_size": 129280,
}

GEMMA_3_27B_IT: dict[str, Any] = {
    "architectures": ["Gemma3ForConditionalGeneration"],
    "boi_token_index": 255999,
    "eoi_token_index": 256000,
    "image_token_index": 262144,
    "mm_tokens_per_image": 256,
    "model_type": "gemma3",
    "text_config": {
        "head_dim": 128,
        "hidden_size": 5376,
        "intermediate_size": 21504,
        "model_type": "gemma3_text",
        "num_attention_heads": 32,
        "num_hidden_layers": 62,
        "num_key_value_heads": 16,
        "query_pre_attn_scalar": 168,
        "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
        "sliding_window": 1024,
        "sliding_window_pattern": 6,
        "max_position_embeddings": 131072,
    },
    "torch_dtype": "bfloat16",
    "vision_config": {
        "hidden_size": 1152,
        "image_size": 896,
        "intermediate_size": 4304,
        "model_type": "siglip_vision_model",
        "num_attention_heads": 16,
        "num_hidden_layers": 27,
        "patch_size": 14,
        "vision_use_head": False,
    },
}

GEMMA_2_2B: dict[str, Any] = {
    "architectures": ["Gemma2ForCausalLM"],
    "head_dim": 256,
    "hidden_act": "gelu_pytorch_tanh",
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "max_position_embeddings": 8192,
    "model_type": "gemma2",
    "num_attention_heads": 8,
    "num_hidden_layers": 26,
    "num_key_value_heads": 4,
    "sliding_window": 4096,
    "torch_dtype": "float32",
    "vocab_size": 256000,
}

QWEN25_7B: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "hidden_act": "silu",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen2",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rope_theta": 1000000.0,
    "sliding_window": 131072,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_sliding_window": False,
    "vocab_size": 152064,
}

GPT_OSS_20B: dict[str, Any] = {
    "architectures": ["GptOssForCausalLM"],
    "head_dim": 64,
    "hidden_size": 2880,
    "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 12,
    "max_position_embeddings": 131072,
    "model_type": "gpt_oss",
    "num_attention_heads": 64,
    "num_experts_per_tok": 4,
    "num_hidden_layers": 24,
    "num_key_value_heads": 8,
    "num_local_experts": 32,
    "quantization_config": {"modules_to_not_convert": ["model.layers.*.self_attn"], "quant_method": "mxfp4"},
    "sliding_window": 128,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 201088,
}

MIXTRAL_8X7B: dict[str, Any] = {
    "architectures": ["MixtralForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 32768,
    "model_type": "mixtral",
    "num_attention_heads": 32,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 32000,
}

JAMBA_MINI: dict[str, Any] = {
    "architectures": ["JambaForCausalLM"],
    "attn_layer_offset": 4,
    "attn_layer_period": 8,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 262144,
    "model_type": "jamba",
    "num_attention_heads": 32,
    "num_experts": 16,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "torch_dtype": "bfloat16",
    "vocab_size": 65536,
}

LLAMA_31_8B_PARAMS = 8_030_261_248


def llama31() -> tuple[ModelShape, WeightsInfo]:
    return ModelShape.from_config(LLAMA_31_8B), weights_from_parameter_counts({"BF16": LLAMA_31_8B_PARAMS})


def a100_40() -> GpuSpec:
    return GpuSpec("nvidia-a100-40gb", 39.50)


def l4(gpus_per_node: int | None = 2) -> GpuSpec:
    return GpuSpec("nvidia-l4", 22.49, gpus_per_node=gpus_per_node, features=("fp16", "bf16", "fp8"))


# --- C: exact figures ---------------------------------------------------------------------------


def test_case_c_llama31_weights_and_kv_are_exact() -> None:
    shape, weights = llama31()
    assert weights.total_bytes == 16_060_522_496
    assert round(weights.total_bytes / GIB, 2) == 14.96
    assert weights.exact and weights.source == "safetensors-metadata"
    assert shape.kv_bytes_per_token(2) == 131_072
    assert (shape.num_layers, shape.num_attention_heads, shape.num_kv_heads, shape.head_dim) == (32, 32, 8, 128)


def test_case_c_llama2_weights_and_kv_are_exact() -> None:
    shape = ModelShape.from_config(LLAMA_2_7B)
    weights = weights_from_parameter_counts({"F16": 6_738_415_616})
    assert weights.total_bytes == 13_476_831_232
    assert round(weights.total_bytes / GIB, 2) == 12.55
    assert shape.head_dim == 128
    assert shape.kv_bytes_per_token(2) == 524_288


def test_case_c_mistral_small_uses_explicit_head_dim() -> None:
    shape = ModelShape.from_config(MISTRAL_SMALL_24B)
    assert shape.head_dim == 128  # not hidden/heads = 160
    assert shape.kv_bytes_per_token(2) == 163_840


def test_config_parameter_estimate_matches_exact_counts_for_llama() -> None:
    assert estimate_parameters(ModelShape.from_config(LLAMA_31_8B)) == LLAMA_31_8B_PARAMS
    assert estimate_parameters(ModelShape.from_config(LLAMA_2_7B)) == 6_738_415_616


def test_config_parameter_estimate_for_moe_models_is_in_the_right_range() -> None:
    mixtral = estimate_parameters(ModelShape.from_config(MIXTRAL_8X7B))
    assert 46.5e9 < mixtral < 46.9e9  # Mixtral 8x7B: 46.7 B
    deepseek = estimate_parameters(ModelShape.from_config(DEEPSEEK_V3))
    assert 660e9 < deepseek < 690e9  # DeepSeek-V3: 671 B without the MTP layer


# --- A: Llama-3-8B on A100-40GB with measured overheads ------------------------------------------


def test_case_a_llama3_on_a100_reproduces_vllm_log() -> None:
    shape = ModelShape.from_config(LLAMA_3_8B)
    weights = weights_from_parameter_counts({"BF16": LLAMA_31_8B_PARAMS})
    report = estimate_fit(
        shape,
        weights,
        a100_40(),
        max_model_len=8192,
        gpu_memory_utilization=0.90,
        overheads=Overheads(activation_gib=9.37, non_torch_gib=0.10, source="vLLM log"),
    )
    assert report.verdict == "fits" and report.level == "fits"
    kv_gib = report.budget.kv_budget_bytes / GIB
    assert kv_gib == pytest.approx(11.12, rel=0.01)
    assert report.budget.num_blocks == pytest.approx(5691, rel=0.01)
    assert report.max_concurrency == pytest.approx(11.1, rel=0.01)
    assert round(report.budget.usable_bytes / GIB, 2) == 35.55
    data = report.to_dict()
    assert data["kvCache"]["blocks"] == report.budget.num_blocks
    assert data["kvCache"]["tokens"] == report.budget.num_blocks * 16
    assert data["memory"]["kvBudgetGiB"] == pytest.approx(11.12, abs=0.01)
    assert "11.1x concurrency at 8,192 tokens" in report.summary
    assert report.fixes == ()


# --- B: Llama-3.1-8B on one L4 -------------------------------------------------------------------


def case_b(**kwargs: Any) -> fit.FitReport:
    shape, weights = llama31()
    return estimate_fit(
        shape,
        weights,
        l4(),
        gpu_memory_utilization=0.92,
        overheads=Overheads(activation_gib=0.83, non_torch_gib=0.0, source="measured"),
        **kwargs,
    )


def test_case_b_budget_and_kv_tokens() -> None:
    report = case_b(max_model_len=8192)
    b = report.budget
    assert round(b.usable_bytes / GIB, 2) == 20.69
    assert round(b.weights_bytes / GIB, 2) == 14.96
    assert b.kv_budget_bytes / GIB == pytest.approx(4.91, abs=0.015)
    assert b.kv_tokens == pytest.approx(40_200, rel=0.01)
    assert b.kv_tokens % 16 == 0
    assert report.verdict == "fits"


def test_case_b_default_max_model_len_does_not_start_and_says_why() -> None:
    report = case_b()
    assert report.max_model_len == 131_072 and report.max_model_len_source == "model default"
    assert report.verdict == "does_not_start"
    assert report.level == "reduced"
    assert "does not start" in report.summary.lower()
    assert "131,072-token sequence needs 16.00 GiB of KV cache" in report.summary
    assert "only 4.90 GiB is left" in report.summary or "only 4.91 GiB is left" in report.summary
    assert report.largest_max_model_len == pytest.approx(40_200, rel=0.05)
    assert report.largest_max_model_len % 16 == 0


def test_case_b_fixes_include_max_model_len_fp8_and_tensor_parallel_2() -> None:
    report = case_b()
    by_kind = {f.kind: f for f in report.fixes}
    assert int(by_kind["max-model-len"].value) == pytest.approx(40_000, rel=0.05)
    assert by_kind["max-model-len"].flag == "--max-model-len"
    fp8 = by_kind["kv-cache-dtype"]
    assert (fp8.flag, fp8.value) == ("--kv-cache-dtype", "fp8")
    assert fp8.kv_tokens == pytest.approx(2 * report.budget.kv_tokens, rel=0.001)
    tp = by_kind["tensor-parallel"]
    assert (tp.flag, tp.value) == ("--tensor-parallel-size", "2")
    assert tp.fits_requested  # 2 x L4: weights halve, KV per GPU halves
    # fixes reaching the requested length come before partial ones
    ranks = [f.fits_requested for f in report.fixes if f.kind != "max-model-len"]
    assert ranks == sorted(ranks, reverse=True)
    json.dumps(report.to_dict())


def test_tensor_parallel_fix_respects_gpus_per_node() -> None:
    report = case_b()
    assert any(f.kind == "tensor-parallel" for f in report.fixes)
    shape, weights = llama31()
    single = estimate_fit(
        shape, weights, l4(gpus_per_node=1), gpu_memory_utilization=0.92, overheads=Overheads(0.83, 0.0)
    )
    assert not any(f.kind == "tensor-parallel" for f in single.fixes)


def test_bigger_gpu_fix_picks_the_smallest_profile_that_fits() -> None:
    shape, weights = llama31()
    profiles = load_profiles()
    l4_profile = find_profile(profiles, "nvidia-l4")
    assert l4_profile is not None
    report = estimate_fit(shape, weights, l4_profile, profiles=profiles)
    gpu_fix = next(f for f in report.fixes if f.kind == "gpu-profile")
    # the A10G (~22 GiB) is no bigger than the L4; the A100-40GB (39.5 GiB) holds the 128K context
    assert gpu_fix.value == "nvidia-a100-40gb"
    assert gpu_fix.fits_requested


def test_l4_profile_uses_cuda_memory_and_modelled_overheads() -> None:
    shape, weights = llama31()
    profile = find_profile(load_profiles(), "nvidia-l4")
    assert profile is not None
    report = estimate_fit(
        shape, weights, profile, max_model_len=8192, gpu_memory_utilization=0.92, vllm_version="0.19.0"
    )
    assert report.budget.total_bytes == fit.gib_to_bytes(22.05)
    run = report.profile_run
    assert run is not None
    # V1 on a 24 GB GPU: 2,048 batched tokens and 256 sequences; the sampler's logits set the peak
    assert (run.engine, run.max_num_batched_tokens, run.max_num_seqs) == ("V1", 2048, 256)
    assert report.overheads.activation_gib == pytest.approx((2048 * 4096 * 2 + 256 * 128_256 * 16) / GIB)
    assert report.overheads.non_torch_gib == pytest.approx(0.25)
    # fit-estimation.md case B measured 0.83 GiB of runtime overhead for this setup
    assert report.overheads.activation_gib + report.overheads.non_torch_gib == pytest.approx(0.83, abs=0.1)
    assert report.to_dict()["gpu"]["memorySource"] == "measured"


# --- tensor parallel -------------------------------------------------------------------------------


def test_tensor_parallel_must_divide_attention_heads() -> None:
    shape = ModelShape.from_config(QWEN25_7B)  # 28 heads
    weights = weights_from_config(shape)
    report = estimate_fit(shape, weights, GpuSpec("h100", 79.0, gpus_per_node=8), tensor_parallel=8)
    assert report.verdict == "invalid" and report.level == "no"
    assert any("does not divide the 28 attention heads" in e for e in report.errors)
    assert "does not divide the 28 attention heads" in report.summary
    tp_fix = next(f for f in report.fixes if f.kind == "tensor-parallel")
    assert int(tp_fix.value) in fit.valid_tensor_parallel_sizes(shape, 8)
    assert fit.valid_tensor_parallel_sizes(shape, 8) == [1, 2, 4]


def test_tensor_parallel_beyond_gpus_per_node_is_invalid() -> None:
    shape, weights = llama31()
    report = estimate_fit(shape, weights, l4(gpus_per_node=2), tensor_parallel=4)
    assert report.verdict == "invalid"
    assert any("nodes have 2" in e for e in report.errors)


def test_kv_heads_fewer_than_tp_are_replicated_one_per_gpu() -> None:
    shape, _ = llama31()  # 8 KV heads
    assert shape.kv_bytes_per_token_per_gpu(2, 1) == 131_072
    assert shape.kv_bytes_per_token_per_gpu(2, 2) == 65_536
    assert shape.kv_bytes_per_token_per_gpu(2, 8) == 16_384
    assert shape.kv_bytes_per_token_per_gpu(2, 16) == 16_384  # replicated: still one head per GPU
    gemma = ModelShape.from_config(GEMMA_2_2B)  # 8 heads, 4 KV heads
    assert gemma.kv_heads_per_gpu(8) == 1
    assert fit.valid_tensor_parallel_sizes(gemma, 8) == [1, 2, 4, 8]


def test_tensor_parallel_splits_weights_and_kv() -> None:
    shape, weights = llama31()
    one = case_b(max_model_len=8192).budget
    two = estimate_fit(
        shape, weights, l4(), tensor_parallel=2, gpu_memory_utilization=0.92, overheads=Overheads(0.83, 0.0)
    ).budget
    assert two.weights_per_gpu_bytes == weights.total_bytes // 2
    assert two.kv_bytes_per_token_per_gpu == one.kv_bytes_per_token_per_gpu // 2


# --- model shapes ---------------------------------------------------------------------------------


def test_mla_formula_for_deepseek_v3() -> None:
    shape = ModelShape.from_config(DEEPSEEK_V3)
    assert shape.is_mla and shape.is_moe and shape.kind == "moe"
    assert shape.kv_bytes_per_token(2) == 61 * (512 + 64) * 2 == 70_272
    # the latent cache is not split across GPUs
    assert shape.kv_bytes_per_token_per_gpu(2, 8) == 70_272
    assert shape.trust_remote_code
    assert shape.quantization == "fp8"
    assert "MLA" in shape.kv_formula(2, 8)


def test_text_config_nesting_for_multimodal_models() -> None:
    shape = ModelShape.from_config(GEMMA_3_27B_IT)
    assert (shape.num_layers, shape.num_kv_heads, shape.head_dim) == (62, 16, 128)
    assert shape.max_position_embeddings == 131_072
    assert shape.dtype == "bfloat16"  # from the top level
    assert shape.is_multimodal and shape.kind == "multimodal"
    assert shape.kv_bytes_per_token(2) == 2 * 62 * 16 * 128 * 2
    assert shape.approximate  # sliding window 1024 on 5 of 6 layers
    assert "52 of 62 layers" in shape.approximate_reasons[0]


def test_missing_text_config_field_is_reported_with_its_path() -> None:
    with pytest.raises(InvalidInput, match=r"text_config\.num_hidden_layers"):
        ModelShape.from_config({"architectures": ["LlavaForConditionalGeneration"], "text_config": {}})


def test_sliding_window_marks_the_result_approximate() -> None:
    shape = ModelShape.from_config(GEMMA_2_2B)
    assert shape.sliding_window == 4096 and shape.approximate
    weights = weights_from_parameter_counts({"F32": 2_614_341_888})
    report = estimate_fit(shape, weights, a100_40())
    assert report.approximate
    assert any("sliding-window" in r for r in report.approximate_reasons)
    assert report.summary.endswith("(approximate)")
    # the float32 checkpoint is served in 16-bit: half the bytes on the GPU
    assert report.budget.weights_bytes == 2_614_341_888 * 2
    assert report.to_dict()["approximate"] is True


def test_unused_sliding_window_is_not_approximate() -> None:
    shape = ModelShape.from_config(QWEN25_7B)  # sliding_window set but use_sliding_window false
    assert shape.sliding_window is None and not shape.approximate


def test_gpt_oss_and_hybrids_are_approximate() -> None:
    oss = ModelShape.from_config(GPT_OSS_20B)
    assert oss.approximate and oss.is_moe and oss.quantization == "mxfp4"
    assert "12 of 24 layers" in oss.approximate_reasons[0]
    jamba = ModelShape.from_config(JAMBA_MINI)
    assert jamba.approximate and any("hybrid" in r for r in jamba.approximate_reasons)
    hybrid = ModelShape.from_config(
        {**LLAMA_31_8B, "model_type": "granitemoehybrid", "layer_types": ["mamba", "attention"] * 16}
    )
    assert hybrid.approximate


def test_moe_uses_moe_overhead_row() -> None:
    shape = ModelShape.from_config(MIXTRAL_8X7B)
    assert shape.kind == "moe"
    weights = weights_from_config(shape)
    report = estimate_fit(shape, weights, GpuSpec("h100", 79.0), vllm_version="0.19.0")
    # fused MoE on 8,192 tokens: 3 hidden + top-2 x (3 x 14,336 + 4,096) values of 2 bytes per token
    assert report.overheads.activation_gib == pytest.approx(8192 * (3 * 4096 + 2 * (3 * 14336 + 4096)) * 2 / GIB)
    assert report.overheads.non_torch_gib == pytest.approx(0.25)
    assert report.approximate and not report.weights.exact
    assert report.weights.source == "config-estimate"


def test_non_torch_overhead_grows_with_tensor_parallel() -> None:
    shape, weights = llama31()
    single = estimate_fit(shape, weights, GpuSpec("h100", 79.0, gpus_per_node=8))
    report = estimate_fit(shape, weights, GpuSpec("h100", 79.0, gpus_per_node=8), tensor_parallel=2)
    assert single.overheads.non_torch_gib == pytest.approx(0.25)
    assert report.overheads.non_torch_gib == pytest.approx(2.08)  # NCCL / custom all-reduce buffers
    # every rank samples over the whole vocabulary, so the sampler's peak does not shrink with tp
    assert report.overheads.activation_gib == pytest.approx(single.overheads.activation_gib)


def test_config_aliases_and_defaults() -> None:
    gpt2 = ModelShape.from_config(
        {
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "n_embd": 768,
            "n_head": 12,
            "n_layer": 12,
            "n_positions": 1024,
            "vocab_size": 50257,
        }
    )
    assert (gpt2.num_layers, gpt2.num_kv_heads, gpt2.head_dim, gpt2.max_position_embeddings) == (12, 12, 64, 1024)
    assert gpt2.dtype is None


def test_attention_free_models_are_rejected_clearly() -> None:
    with pytest.raises(InvalidInput, match="attention-free"):
        ModelShape.from_config({"model_type": "mamba", "num_hidden_layers": 64, "hidden_size": 2560})


def test_fp8_kv_cache_halves_kv_bytes() -> None:
    auto = case_b(max_model_len=8192)
    fp8 = case_b(max_model_len=8192, kv_cache_dtype="fp8")
    assert fp8.budget.kv_bytes_per_token == auto.budget.kv_bytes_per_token // 2 == 65_536
    assert fp8.budget.kv_tokens == pytest.approx(2 * auto.budget.kv_tokens, abs=16)
    assert fp8.kv_dtype_bytes == 1


def test_unknown_kv_cache_dtype_and_bad_arguments_raise_invalid_input() -> None:
    shape, weights = llama31()
    with pytest.raises(InvalidInput, match="kv_cache_dtype"):
        estimate_fit(shape, weights, l4(), kv_cache_dtype="int3")
    with pytest.raises(InvalidInput, match="tensor_parallel"):
        estimate_fit(shape, weights, l4(), tensor_parallel=0)
    with pytest.raises(InvalidInput, match="gpu_memory_utilization"):
        estimate_fit(shape, weights, l4(), gpu_memory_utilization=1.5)


def test_max_model_len_above_the_model_maximum_is_invalid() -> None:
    shape, weights = llama31()
    report = estimate_fit(shape, weights, GpuSpec("h100", 79.0), max_model_len=200_000)
    assert report.verdict == "invalid"
    assert any("exceeds the model's maximum context (131,072" in e for e in report.errors)
    assert any(f.kind == "max-model-len" and int(f.value) <= 131_072 for f in report.fixes)


def test_no_memory_for_kv_cache() -> None:
    shape, weights = llama31()
    t4 = GpuSpec("nvidia-t4", 14.75, features=("fp16",))
    report = estimate_fit(shape, weights, t4)
    assert report.verdict == "does_not_start" and report.level == "no"
    assert "leave no memory for the KV cache" in report.summary
    assert report.largest_max_model_len == 0
    assert report.budget.kv_budget_bytes < 0
    assert not any(f.kind == "max-model-len" for f in report.fixes)
    quant = [f for f in report.fixes if f.kind == "quantized-variant"]
    assert quant and "GiB of weights" in quant[0].description
    data = report.to_dict()
    assert data["kvCache"]["tokens"] == 0 and data["largestMaxModelLen"] == 0


def test_tiny_context_is_level_no_not_reduced() -> None:
    shape, weights = llama31()
    # just enough memory for ~1,000 tokens of KV cache
    mem = (weights.total_bytes + fit.gib_to_bytes(0.83) + 1000 * 131_072) / GIB / 0.92
    report = estimate_fit(
        shape, weights, GpuSpec("small", mem), gpu_memory_utilization=0.92, overheads=Overheads(0.83, 0)
    )
    assert 0 < report.largest_max_model_len < 2048
    assert report.level == "no"


def test_default_utilization_follows_the_vllm_version() -> None:
    assert default_gpu_memory_utilization(None) == 0.90
    assert default_gpu_memory_utilization("0.10.2") == 0.90
    assert default_gpu_memory_utilization("v0.20.1") == 0.90
    assert default_gpu_memory_utilization("0.21.0") == 0.92
    assert default_gpu_memory_utilization("0.33.0+cu128") == 0.92
    assert default_gpu_memory_utilization("1.0") == 0.92
    assert default_gpu_memory_utilization("nightly") == 0.90
    shape, weights = llama31()
    report = estimate_fit(shape, weights, GpuSpec("l4", 22.49, vllm_version="0.21.0"), max_model_len=4096)
    assert report.gpu_memory_utilization == 0.92
    assert report.utilization_source == "vLLM 0.21.0 default"


def test_overheads_precedence_call_then_profile_then_model() -> None:
    shape = ModelShape.from_config(LLAMA_31_8B)
    inputs = vllm_memory.ProfileInputs("0.19.0", "x", 80.0, True, 2, 1, 8192)
    run = vllm_memory.model_profile_run(shape, inputs)
    gpu = GpuSpec("x", 80.0, activation_overhead_gib={"dense": 1.0}, non_torch_gib=0.2)
    from_profile = fit.resolve_overheads(run, "dense", gpu)
    assert (from_profile.activation_gib, from_profile.non_torch_gib) == (1.0, 0.2)
    assert from_profile.activation_source == "GPU profile x (profile measurement)"
    modelled = fit.resolve_overheads(run, "moe", gpu)
    assert modelled.activation_gib == pytest.approx(fit.gib(run.activation_bytes))
    assert modelled.activation_source is not None and modelled.activation_source.startswith("model:")
    assert fit.resolve_overheads(run, "dense", gpu, Overheads(3.0, 0.3)).activation_gib == 3.0


# --- report shape -------------------------------------------------------------------------------------


def test_report_to_dict_has_bytes_and_gib_and_is_json() -> None:
    report = case_b(max_model_len=8192)
    data = json.loads(json.dumps(report.to_dict()))
    for key in ("total", "usable", "weights", "weightsPerGpu", "activation", "nonTorch", "kvBudget"):
        assert isinstance(data["memory"][f"{key}Bytes"], int)
        assert data["memory"][f"{key}GiB"] == round(data["memory"][f"{key}Bytes"] / GIB, 2)
    assert data["verdict"] == "fits" and data["level"] == "fits" and data["fits"] is True
    assert data["settings"]["tensorParallelSize"] == 1
    assert data["kvCache"]["bytesPerToken"] == 131_072
    assert data["weights"]["parameterCount"] == LLAMA_31_8B_PARAMS
    assert all(" GB" not in r for r in data["reasons"])  # GiB only, never mixed
    assert data["reasons"][0].startswith("nvidia-l4: 22.49 GiB")


# --- flags -----------------------------------------------------------------------------------------------


def flag_map(report: fit.FitReport) -> dict[str, str | None]:
    return {f.flag: f.value for f in recommend_flags(report)}


def test_flags_for_a_fitting_model() -> None:
    shape, weights = llama31()
    report = estimate_fit(shape, weights, GpuSpec("h100", 79.0, features=("bf16",)), max_model_len=32768)
    flags = flag_map(report)
    assert flags["--dtype"] == "bfloat16"
    assert flags["--max-model-len"] == "32768"
    assert flags["--gpu-memory-utilization"] == "0.9"
    assert "--enforce-eager" not in flags and "--tensor-parallel-size" not in flags
    assert all(f.reason for f in recommend_flags(report))


def test_flags_for_t4_use_float16() -> None:
    shape = ModelShape.from_config(
        {
            **LLAMA_31_8B,
            "num_hidden_layers": 16,
            "hidden_size": 2048,
            "intermediate_size": 8192,
            "num_key_value_heads": 8,
            "head_dim": 64,
        }
    )
    weights = weights_from_parameter_counts({"BF16": 1_235_814_400})  # Llama-3.2-1B
    t4 = find_profile(load_profiles(), "nvidia-t4")
    assert t4 is not None
    report = estimate_fit(shape, weights, t4, max_model_len=8192)
    assert report.dtype == "float16"
    flags = recommend_flags(report)
    dtype = next(f for f in flags if f.flag == "--dtype")
    assert dtype.value == "float16" and "bf16" in dtype.reason


def test_flags_when_context_must_shrink() -> None:
    flags = flag_map(case_b())
    assert flags["--max-model-len"] == "39936"  # 40,160 rounded down to a multiple of 1,024
    assert "--enforce-eager" in flags


def test_flags_recommend_fp8_kv_cache_when_it_makes_the_request_fit() -> None:
    report = case_b(max_model_len=65536)
    assert report.verdict == "does_not_start"
    flags = flag_map(report)
    assert flags["--kv-cache-dtype"] == "fp8"
    assert flags["--max-model-len"] == "65536"


def test_flags_include_tp_and_trust_remote_code() -> None:
    shape = ModelShape.from_config(DEEPSEEK_V3)
    weights = weights_from_parameter_counts({"F8_E4M3": 671_000_000_000, "BF16": 2_000_000_000, "F32": 40_000_000})
    report = estimate_fit(shape, weights, GpuSpec("h200", 139.8, gpus_per_node=8), tensor_parallel=8)
    flags = flag_map(report)
    assert flags["--tensor-parallel-size"] == "8"
    assert "--trust-remote-code" in flags
    # quantized checkpoint: bytes counted as stored (F32 scales included)
    assert report.budget.weights_bytes == 671_000_000_000 + 4_000_000_000 + 160_000_000


# --- weights ----------------------------------------------------------------------------------------------


def test_hub_safetensors_field_and_dtype_table() -> None:
    w = weights_from_hub_safetensors({"parameters": {"BF16": 10, "F32": 3, "I8": 5, "F4": 3}, "total": 21})
    assert w.total_bytes == 10 * 2 + 3 * 4 + 5 + 2  # 3 x F4 = 12 bits → 2 bytes
    assert w.parameter_count == 21
    assert fit.dtype_nbytes("F64", 2) == 16 and fit.dtype_nbytes("U8", 7) == 7
    assert fit.dtype_nbytes("F8_E5M2", 4) == 4 and fit.dtype_nbytes("BOOL", 3) == 3
    with pytest.raises(InvalidInput, match="unknown safetensors dtype"):
        weights_from_parameter_counts({"Q3": 10})


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]], *, pad: int = 0) -> int:
    """Write a real safetensors file; returns the data size in bytes."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = fit.dtype_nbytes(dtype, math.prod(shape))
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode() + b" " * pad
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * offset)
    return offset


def test_local_safetensors_headers_give_exact_bytes(tmp_path: Path) -> None:
    a = tmp_path / "model-00001-of-00002.safetensors"
    b = tmp_path / "model-00002-of-00002.safetensors"
    size_a = write_safetensors(
        a, {"embed": ("BF16", [128, 64]), "norm": ("F32", [64]), "scale": ("F8_E4M3", [3, 5])}, pad=7
    )
    size_b = write_safetensors(b, {"lm_head": ("F16", [64, 128]), "flag": ("BOOL", [1]), "idx": ("I64", [2])})
    header = read_safetensors_header(a)
    assert header["__metadata__"] == {"format": "pt"}
    assert header["norm"]["shape"] == [64]
    weights = weights_from_local_files([a, b])
    assert weights.total_bytes == size_a + size_b == 128 * 64 * 2 + 64 * 4 + 15 + 64 * 128 * 2 + 1 + 16
    assert weights.parameter_count == 128 * 64 + 64 + 15 + 64 * 128 + 1 + 2
    assert weights.by_dtype["BF16"] == 128 * 64
    assert weights.exact and weights.source == "safetensors-files"


def test_truncated_safetensors_files_raise_clear_errors(tmp_path: Path) -> None:
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"\x10\x00")
    with pytest.raises(SafetensorsHeaderError, match="truncated file"):
        read_safetensors_header(short)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(struct.pack("<Q", 1000) + b'{"a": ')
    with pytest.raises(SafetensorsHeaderError, match="truncated header"):
        read_safetensors_header(cut)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(struct.pack("<Q", 4) + b"nope")
    with pytest.raises(SafetensorsHeaderError, match="not valid JSON"):
        read_safetensors_header(garbage)
    with pytest.raises(SafetensorsHeaderError, match="cannot read"):
        read_safetensors_header(tmp_path / "missing.safetensors")


def test_huge_safetensors_header_is_refused_without_reading_it(tmp_path: Path) -> None:
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes(struct.pack("<Q", 200 * 1024 * 1024) + b"{}")
    with pytest.raises(SafetensorsHeaderError, match="exceeds the 100 MiB limit"):
        read_safetensors_header(huge)


def test_config_estimate_is_marked_inexact() -> None:
    shape = ModelShape.from_config(LLAMA_31_8B)
    w = weights_from_config(shape)
    assert not w.exact and w.source == "config-estimate"
    assert w.total_bytes == LLAMA_31_8B_PARAMS * 2
    mm = weights_from_config(ModelShape.from_config(GEMMA_3_27B_IT))
    assert "vision" in (mm.note or "")


# --- properties ----------------------------------------------------------------------------------------------


@st.composite
def budgets(draw: st.DrawFn) -> Budget:
    layers = draw(st.integers(1, 96))
    heads = draw(st.sampled_from([8, 16, 32, 64]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4, 8, 16, 32, 64) if h <= heads]))
    head_dim = draw(st.sampled_from([64, 128, 256]))
    model_max = draw(st.integers(512, 1_000_000))
    shape = ModelShape(
        num_layers=layers,
        num_attention_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        max_position_embeddings=model_max,
    )
    memory = draw(st.floats(4, 200))
    weights = draw(st.integers(0, int(memory * GIB)))
    tp = draw(st.sampled_from([t for t in (1, 2, 4, 8) if heads % t == 0]))
    return compute_budget(
        shape,
        weights,
        memory_gib=memory,
        utilization=draw(st.floats(0.5, 0.98)),
        tensor_parallel=tp,
        kv_dtype_bytes=draw(st.sampled_from([1, 2])),
        overheads=Overheads(draw(st.floats(0, 10)), draw(st.floats(0, 1))),
        model_max_len=model_max,
    )


@settings(max_examples=300, deadline=None)
@given(budgets())
def test_largest_max_model_len_fits_and_one_more_block_does_not(budget: Budget) -> None:
    largest = budget.largest_max_model_len
    if largest == 0:
        assert not budget.fits(16)
        return
    assert budget.fits(largest)
    assert budget.sequence_bytes(largest) <= budget.kv_budget_bytes
    if largest < budget.model_max_len:
        assert largest % 16 == 0
        assert not budget.fits(largest + 16)
        assert budget.sequence_bytes(largest + 16) > budget.kv_budget_bytes
    assert budget.kv_tokens * budget.kv_bytes_per_token_per_gpu <= max(budget.kv_budget_bytes, 0)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 128), st.sampled_from([1, 2, 4, 8]), st.sampled_from([64, 128]), st.sampled_from([1, 2, 4, 8]))
def test_kv_per_gpu_never_below_one_head_and_never_above_tp1(layers: int, kv: int, head_dim: int, tp: int) -> None:
    shape = ModelShape(num_layers=layers, num_attention_heads=64, num_kv_heads=kv, head_dim=head_dim)
    per_gpu = shape.kv_bytes_per_token_per_gpu(2, tp)
    assert 2 * layers * head_dim * 2 <= per_gpu <= shape.kv_bytes_per_token(2)
    assert per_gpu == shape.kv_bytes_per_token(2) // min(kv, tp)


def test_flags_enforce_eager_when_it_fits_with_little_headroom() -> None:
    shape, weights = llama31()
    # one 8,192-token sequence (1 GiB of KV) plus ~0.2 GiB to spare
    usable = weights.total_bytes + fit.gib_to_bytes(0.83) + 8192 * 131_072 + fit.gib_to_bytes(0.2)
    gpu = GpuSpec("snug", usable / 0.92 / GIB)
    report = estimate_fit(
        shape, weights, gpu, max_model_len=8192, gpu_memory_utilization=0.92, overheads=Overheads(0.83, 0.0)
    )
    assert report.fits
    eager = next(f for f in recommend_flags(report) if f.flag == "--enforce-eager")
    assert eager.value is None and "CUDA graphs" in eager.reason


def test_flags_for_an_invalid_configuration_do_not_repeat_it() -> None:
    shape = ModelShape.from_config(QWEN25_7B)
    report = estimate_fit(shape, weights_from_config(shape), GpuSpec("h100", 79.0, gpus_per_node=8), tensor_parallel=8)
    flags = flag_map(report)
    assert "--tensor-parallel-size" not in flags and "--max-model-len" not in flags
    assert flags["--dtype"] == "bfloat16"


def test_vllm_version_argument_overrides_the_profile() -> None:
    shape, weights = llama31()
    report = estimate_fit(shape, weights, GpuSpec("l4", 22.49, vllm_version="0.10.0"), vllm_version="0.22.1")
    assert report.gpu_memory_utilization == 0.92
    assert report.to_dict()["settings"]["vllmVersion"] == "0.22.1"
