"""vLLM architecture support: the bundled registry, exact matching and the registry.py parser."""

from __future__ import annotations

import json

import pytest

from portal.services import vllm
from portal.services.vllm import (
    Architecture,
    ArchitectureRegistry,
    bundled_registry,
    category_from_dict_name,
    check_support,
    lookup_architecture,
    parse_registry_source,
    supported_architectures,
)

# A trimmed but faithful copy of the layout of vllm/model_executor/models/registry.py.
REGISTRY_SNIPPET = '''
# SPDX-License-Identifier: Apache-2.0
"""
Whenever you add an architecture to this page, please also update
`tests/models/registry.py` with example HuggingFace models for it.
"""
import importlib

from vllm.logger import init_logger

logger = init_logger(__name__)

_TEXT_GENERATION_MODELS = {
    # [Decoder-only]
    "AquilaModel": ("llama", "LlamaForCausalLM"),
    "DeepseekV3ForCausalLM": ("deepseek_v2", "DeepseekV3ForCausalLM"),
    "LlamaForCausalLM": ("llama", "LlamaForCausalLM"),
    # For decapoda-research/llama-*
    "LLaMAForCausalLM": ("llama", "LlamaForCausalLM"),
    "GraniteMoeHybridForCausalLM": ("granitemoehybrid", "GraniteMoeHybridForCausalLM"),  # noqa: E501
    "Qwen2ForCausalLM": ("qwen2", "Qwen2ForCausalLM"),
}

_EMBEDDING_MODELS = {
    # [Text-only]
    "BertModel": ("bert", "BertEmbeddingModel"),
    **{
        # Multiple models share the same architecture, so we include them all
        k: (mod, arch)
        for k, (mod, arch) in _TEXT_GENERATION_MODELS.items()
        if arch == "LlamaForCausalLM"
    },
    "Qwen2ForCausalLM": ("qwen2", "Qwen2ForCausalLM"),
    # [Multimodal]
    "Qwen2VLForConditionalGeneration": ("qwen2_vl", "Qwen2VLForConditionalGeneration"),  # noqa: E501
}

_CROSS_ENCODER_MODELS: dict[str, tuple[str, str]] = {
    "BertForSequenceClassification": ("bert", "BertForSequenceClassification"),
    "XLMRobertaForSequenceClassification": (
        "roberta",
        "RobertaForSequenceClassification",
    ),
}

_MULTIMODAL_MODELS = {
    "Gemma3ForConditionalGeneration": ("gemma3_mm", "Gemma3ForConditionalGeneration"),  # noqa: E501
    "LlavaForConditionalGeneration": ("llava", "LlavaForConditionalGeneration"),
    "Qwen2VLForConditionalGeneration": ("qwen2_vl", "Qwen2VLForConditionalGeneration"),  # noqa: E501
}

_SPECULATIVE_DECODING_MODELS = {
    "EagleLlamaForCausalLM": ("llama_eagle", "EagleLlamaForCausalLM"),
    "DeepSeekMTPModel": ("deepseek_mtp", "DeepSeekMTP"),
    # "MLPSpeculatorPreTrainedModel": ("mlp_speculator", "MLPSpeculator"),
}

_TRANSFORMERS_SUPPORTED_MODELS = {
    "SmolLM3ForCausalLM": ("transformers", "TransformersForCausalLM"),
}

_TRANSFORMERS_BACKEND_MODELS = {
    "TransformersForCausalLM": ("transformers", "TransformersForCausalLM"),
}

_VLLM_MODELS = {
    **_TEXT_GENERATION_MODELS,
    **_EMBEDDING_MODELS,
    **_CROSS_ENCODER_MODELS,
    **_MULTIMODAL_MODELS,
    **_SPECULATIVE_DECODING_MODELS,
    **_TRANSFORMERS_SUPPORTED_MODELS,
    **_TRANSFORMERS_BACKEND_MODELS,
}

_SUBPROCESS_COMMAND = ["python", "-m", "vllm.model_executor.models.registry"]

_PREVIOUSLY_SUPPORTED_MODELS = {
    "Phi3SmallForCausalLM": "0.9.2",
    # encoder-decoder models except whisper
    # have been removed for V0 deprecation.
    "MllamaForConditionalGeneration": "0.10.2",
}


def _helper():
    _LOCAL_MODELS = {"NotModuleLevel": ("x", "Y")}
    return _LOCAL_MODELS
'''


def test_bundled_registry_loads_once_with_its_source() -> None:
    registry = bundled_registry()
    assert registry is bundled_registry()
    assert len(registry.architectures) > 300
    assert registry.source.to_dict() == {
        "source": "bundled",
        "vllmVersion": "0.33.0",
        "note": "vLLM model registry (vllm/model_executor/models/registry.py) as shipped in the vllm 0.33.0 wheel",
    }
    assert vllm.registry_source() is registry.source
    assert "text-generation" in registry.categories()


def test_supported_architectures_sorted_and_filtered() -> None:
    everything = supported_architectures()
    names = [a.name for a in everything]
    assert names == sorted(names)
    embedding = supported_architectures(category="EMBEDDING")
    assert embedding and all("embedding" in a.categories for a in embedding)
    qwen = supported_architectures(search="qwen2")
    assert qwen and all("qwen2" in (a.name + a.module + a.class_name).lower() for a in qwen)
    assert supported_architectures(category="text-generation", search="  ") == supported_architectures(
        category="text-generation"
    )
    assert supported_architectures(category="no-such-category") == []


def test_lookup_exact_then_unique_case_insensitive() -> None:
    llama = lookup_architecture("LlamaForCausalLM")
    assert llama == Architecture("LlamaForCausalLM", "llama", "LlamaForCausalLM", ("text-generation",))
    assert llama.to_dict() == {
        "name": "LlamaForCausalLM",
        "module": "llama",
        "className": "LlamaForCausalLM",
        "categories": ["text-generation"],
    }
    found = lookup_architecture("qwen2forcausallm")
    assert found is not None and found.name == "Qwen2ForCausalLM"
    # LlamaForCausalLM and LLaMAForCausalLM collide case-insensitively: no guess
    assert lookup_architecture("llamaforcausallm") is None
    assert lookup_architecture("Nope") is None


def test_check_support_matches_exact_names_only() -> None:
    verdict = check_support(["LlamaForCausalLM"])
    assert verdict.supported and verdict.matched_names == ["LlamaForCausalLM"]
    assert verdict.categories == ("text-generation",)
    # the service we replace tested substrings; vLLM does not
    sneaky = check_support(["MyLlamaForCausalLMX"])
    assert not sneaky.supported and sneaky.unsupported == ("MyLlamaForCausalLMX",)
    assert any("Transformers backend" in n for n in sneaky.notes)
    wrong_case = check_support(["qwen2forcausallm"])
    assert not wrong_case.supported
    assert any("did you mean Qwen2ForCausalLM" in n for n in wrong_case.notes)


def test_check_support_reports_categories_and_removed_architectures() -> None:
    mm = check_support(["Gemma3ForConditionalGeneration"])
    assert mm.supported and "multimodal" in mm.categories
    both = check_support(["Qwen2ForCausalLM"])
    assert set(both.categories) == {"text-generation", "embedding"}
    gone = check_support(["MllamaForConditionalGeneration"])
    assert not gone.supported
    assert gone.removed[0].last_supported_in == "0.10.2"
    assert gone.notes == ("MllamaForConditionalGeneration was supported until vLLM 0.10.2 and has since been removed",)
    data = gone.to_dict()
    assert data["removed"][0]["lastSupportedIn"] == "0.10.2"
    assert data["source"]["vllmVersion"] == "0.33.0"
    json.dumps(data)


def test_check_support_with_nothing_to_check() -> None:
    verdict = check_support([])
    assert not verdict.supported and verdict.notes == ("config.json lists no architectures",)


def test_registry_from_data_supports_removed_in_map() -> None:
    registry = ArchitectureRegistry.from_data(
        {
            "vllmVersion": "0.12.0",
            "architectures": {"A": {"module": "a", "class": "A", "categories": ["text-generation"]}},
            "previouslySupported": {"Old": "0.9.2"},
            "removed": {"Old": {"removedIn": "0.10.0"}, "Gone": {"removedIn": "0.11.0"}},
        },
        source="github",
        fetched_at="2025-01-01T00:00:00Z",
    )
    assert registry.removed["Old"].message == "Old was supported until vLLM 0.9.2 and removed in vLLM 0.10.0"
    assert registry.removed["Gone"].message == "Gone was removed in vLLM 0.11.0"
    verdict = registry.check(["Gone", "A"])
    assert verdict.supported and verdict.matched_names == ["A"] and verdict.unsupported == ("Gone",)
    assert verdict.source.to_dict() == {
        "source": "github",
        "vllmVersion": "0.12.0",
        "note": None,
        "fetchedAt": "2025-01-01T00:00:00Z",
    }
    with pytest.raises(ValueError, match="'architectures' must be an object"):
        ArchitectureRegistry.from_data({"architectures": []})


def test_category_names_from_registry_dicts() -> None:
    assert category_from_dict_name("_TEXT_GENERATION_MODELS") == "text-generation"
    assert category_from_dict_name("_CROSS_ENCODER_MODELS") == "cross-encoder"
    assert category_from_dict_name("_TRANSFORMERS_BACKEND_MODELS") == "transformers-backend"
    assert category_from_dict_name("_VLLM_MODELS") is None
    assert category_from_dict_name("_PREVIOUSLY_SUPPORTED_MODELS") is None
    assert category_from_dict_name("MODELS") is None


def test_parse_registry_source() -> None:
    parsed = parse_registry_source(REGISTRY_SNIPPET)
    archs = parsed["architectures"]
    assert archs["LlamaForCausalLM"] == {
        "module": "llama",
        "class": "LlamaForCausalLM",
        "categories": ["text-generation"],
    }
    assert archs["AquilaModel"]["class"] == "LlamaForCausalLM"
    assert archs["Qwen2ForCausalLM"]["categories"] == ["text-generation", "embedding"]
    assert archs["Qwen2VLForConditionalGeneration"]["categories"] == ["embedding", "multimodal"]
    assert archs["XLMRobertaForSequenceClassification"] == {
        "module": "roberta",
        "class": "RobertaForSequenceClassification",
        "categories": ["cross-encoder"],
    }
    assert archs["DeepSeekMTPModel"]["categories"] == ["speculative-decoding"]
    assert archs["SmolLM3ForCausalLM"]["categories"] == ["transformers-supported"]
    assert archs["TransformersForCausalLM"]["categories"] == ["transformers-backend"]
    assert "MLPSpeculatorPreTrainedModel" not in archs  # commented out
    assert "NotModuleLevel" not in archs
    assert list(archs) == sorted(archs)
    assert len(archs) == 16
    assert parsed["previouslySupported"] == {
        "Phi3SmallForCausalLM": "0.9.2",
        "MllamaForConditionalGeneration": "0.10.2",
    }
    # ** spreads are not expanded: LlamaForCausalLM stays text-generation only, like the bundled list
    assert bundled_registry().architectures["LlamaForCausalLM"].categories == ("text-generation",)


def test_parsed_source_plugs_into_a_registry() -> None:
    data = {**parse_registry_source(REGISTRY_SNIPPET), "vllmVersion": "0.11.0", "source": "GitHub main"}
    registry = ArchitectureRegistry.from_data(data, source="github")
    assert registry.check(["GraniteMoeHybridForCausalLM"]).supported
    assert registry.check(["Phi3SmallForCausalLM"]).removed[0].last_supported_in == "0.9.2"
    assert [a.name for a in registry.list_architectures(category="multimodal")] == [
        "Gemma3ForConditionalGeneration",
        "LlavaForConditionalGeneration",
        "Qwen2VLForConditionalGeneration",
    ]


def test_parse_registry_source_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="not valid Python"):
        parse_registry_source("_TEXT_GENERATION_MODELS = {")
    with pytest.raises(ValueError, match="defines no"):
        parse_registry_source("x = 1\n")
    # never executed: a side effect in the source does not run
    parsed = parse_registry_source(
        'import os\nos.system("false")\n_TEXT_GENERATION_MODELS = {"A": ("a", "A"), "B": ("b",), 3: ("c", "C")}\n'
    )
    assert list(parsed["architectures"]) == ["A"]
