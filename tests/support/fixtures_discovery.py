"""Fixtures for discovery tests: an app wired to the local Hub, the dev cluster and the GitHub stub."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.services import vllm_registry
from tests.support.hub import Blob, GeneratedContent, HubServer, ModelRepo
from tests.support.safetensors_writer import data_size, encode_header, llama_tensor_specs, parameter_counts

__all__ = ["discovery_app", "llama_like", "make_discovery_app"]

LLAMA_31_8B_BYTES = 16_060_522_496


LLAMA_31_8B_SHAPE = {
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
}


def llama_like(hub: HubServer, repo_id: str = "acme/llama-8b", **repo_options: Any) -> ModelRepo:
    """Llama-3.1-8B exactly (8,030,261,248 BF16 parameters, 131072 context) without 15 GiB of hashing.

    The safetensors file is generated on the fly behind a real header; its sha256 is given rather
    than computed (nothing here downloads it).
    """
    specs = llama_tensor_specs(dtype="BF16", **LLAMA_31_8B_SHAPE)
    header = encode_header(specs, {"format": "pt"})
    content = GeneratedContent(len(header) + data_size(specs), prefix=header)
    blob = Blob.from_content(content, lfs=True, sha256=hashlib.sha256(header).hexdigest())
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "head_dim": 128,
        "max_position_embeddings": 131072,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        **LLAMA_31_8B_SHAPE,
    }
    options: dict[str, Any] = {
        "downloads": 5000,
        "likes": 300,
        "license": "llama3.1",
        "pipeline_tag": "text-generation",
        "library_name": "transformers",
    }
    options.update(repo_options)
    sha = hub.add_repo(repo_id, {"config.json": json.dumps(config), "model.safetensors": blob}, **options)
    return ModelRepo(repo_id, sha, config, parameter_counts(specs), ["model.safetensors"], {"model.safetensors": blob})


@pytest.fixture
def make_discovery_app(
    make_app: Callable[..., Flask], hub: HubServer, tmp_path: Path
) -> Iterator[Callable[..., Flask]]:
    """Build an app pointed at the local Hub (and whatever else the test passes)."""
    vllm_registry.reset_memo()

    def build(**overrides: Any) -> Flask:
        return make_app(HF_ENDPOINT=hub.url, KUBE_TIMEOUT="3", **overrides)

    yield build
    vllm_registry.reset_memo()


@pytest.fixture
def discovery_app(make_discovery_app: Callable[..., Flask], devcluster: Any) -> Iterator[Flask]:
    """An app on the local Hub and the dev cluster (L4 + MI210 nodes), context pushed."""
    app = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig))
    with app.app_context():
        yield app
