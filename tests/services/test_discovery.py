"""Discovery services: start-up profile errors, vLLM refresh from GitHub, local weights, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.config import ConfigError
from portal.services import discovery
from tests.support.github import GitHubStub
from tests.support.hub import HubServer, make_model_repo

REGISTRY_SOURCE = """
_TEXT_GENERATION_MODELS = {
    "LlamaForCausalLM": ("llama", "LlamaForCausalLM"),
    "BrandNewForCausalLM": ("brand_new", "BrandNewForCausalLM"),
}
_EMBEDDING_MODELS = {
    "BertModel": ("bert", "BertEmbeddingModel"),
}
_PREVIOUSLY_SUPPORTED_MODELS = {"OldForCausalLM": "0.9.0"}
"""
REGISTRY = "vllm/model_executor/models/registry.py"


def test_malformed_profile_file_stops_start_up_naming_the_entry(make_app: Any, tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps([{"name": "ok", "memoryGB": 24}, {"name": "broken", "memoryGB": -1}]))
    with pytest.raises(ConfigError) as info:
        make_app(GPU_PROFILE_PATH=str(path))
    message = str(info.value)
    assert message.startswith("GPU_PROFILE_PATH:") and 'entry 1 ("broken")' in message and "\n" not in message
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        make_app(GPU_PROFILE_PATH=str(path))


def test_custom_profile_file_is_used(make_app: Any, tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps([{"name": "my-gpu", "memoryGB": 48, "vendor": "nvidia"}]))
    app = make_app(GPU_PROFILE_PATH=str(path))
    body = app.test_client().get("/recommendations/profiles").json
    assert [p["name"] for p in body["profiles"]] == ["my-gpu"]


def test_vllm_refresh_from_github_then_cached(make_discovery_app: Any, github: GitHubStub) -> None:
    github.add_file("vllm-project/vllm", REGISTRY, REGISTRY_SOURCE, ref="v0.33.0")
    app = make_discovery_app(GITHUB_API_URL=github.url, GITHUB_TOKEN="gh-secret")
    client = app.test_client()
    body = client.get("/vllm/supported-models?refresh=true").json
    assert body["source"]["source"] == "github" and "warning" not in body
    assert {a["name"] for a in body["architectures"]} == {"LlamaForCausalLM", "BrandNewForCausalLM", "BertModel"}
    assert github.requests[-1][2] == "Bearer gh-secret"
    assert "gh-secret" not in json.dumps(body)
    # Later answers (any worker) use the cached copy without asking GitHub again.
    again = client.get("/vllm/supported-models?refresh=true&category=embedding").json
    assert [a["name"] for a in again["architectures"]] == ["BertModel"]
    assert github.count() == 1
    assert client.get("/vllm/model/BrandNewForCausalLM").json["source"]["source"] == "github"


def test_vllm_refresh_falls_back_to_bundled_list(make_discovery_app: Any, github: GitHubStub) -> None:
    github.set_down(True)
    app = make_discovery_app(GITHUB_API_URL=github.url)
    response = app.test_client().get("/vllm/supported-models?refresh=true")
    assert response.status_code == 200
    assert response.json["source"]["source"] == "bundled"
    assert "503" in response.json["warning"] and "bundled" in response.json["warning"]
    unreachable = make_discovery_app(GITHUB_API_URL="http://127.0.0.1:9")  # nothing listens there
    body = unreachable.test_client().get("/vllm/supported-models?refresh=true&ref=v0.1.0").json
    assert body["source"]["source"] == "bundled" and "unreachable" in body["warning"]


def test_installed_weights_are_read_locally_without_the_hub(
    make_discovery_app: Any, hub: HubServer, hf_cache: Path
) -> None:
    repo = make_model_repo(hub, "acme/local-model", num_hidden_layers=3, num_key_value_heads=2)
    app = make_discovery_app()
    settings = app.config["SETTINGS"]
    target = settings.weights_storage_path / "acme" / "local-model"
    target.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (target / name).write_bytes(repo.files[name].content.read_at(0, repo.files[name].size))
    hub.set_down(True)
    entry = {
        "id": "local-model",
        "hfModelId": "acme/local-model",
        "storageUri": f"pvc://{settings.weights_pvc_name}/acme/local-model",
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    with app.app_context():
        fit = discovery.entry_fit(entry, "nvidia-l4")
        assert fit["source"] == "local"
        assert fit["report"]["weights"]["totalBytes"] == sum(repo.parameters.values()) * 2
        assert fit["report"]["weights"]["source"] == "safetensors-files"
        assert fit["report"]["verdict"] == "fits"
        generated = discovery.generate_entry("acme/local-model", gpu_type="nvidia-l4")
        assert generated["entry"]["storageUri"] == f"pvc://{settings.weights_pvc_name}/acme/local-model"
        assert generated["source"] == "local"


def test_local_weights_path_never_escapes_the_root(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    assert discovery.local_weights_dir(settings, "pvc://venus-model-storage/../etc") is None
    assert discovery.local_weights_dir(settings, "pvc://other-pvc/a/b") is None
    assert discovery.local_weights_dir(settings, "hf://a/b") is None


def test_safe_id() -> None:
    assert discovery.safe_id("Qwen/Qwen2.5-0.5B-Instruct") == "qwen-qwen2.5-0.5b-instruct"
    assert discovery.safe_id("Org/My__Model  v2") == "org-my-model-v2"


def test_gpu_requests_read_limits_before_requests() -> None:
    from portal.services.discovery import gpu_requests, gpu_resource

    entry = {"resources": {"limits": {"nvidia.com/gpu": "2", "cpu": "4"}, "requests": {"amd.com/gpu": "1"}}}
    assert gpu_requests(entry) == [("limits", "nvidia.com/gpu", "2"), ("requests", "amd.com/gpu", "1")]
    assert gpu_resource(entry) == ("nvidia.com/gpu", 2)
    assert gpu_resource({"resources": {"limits": {"nvidia.com/gpu": "x"}, "requests": {"nvidia.com/gpu": 1}}}) == (
        "nvidia.com/gpu",
        1,
    )
    assert gpu_requests({}) == [] and gpu_resource({}) is None


def test_search_query_from_api_and_form_arguments() -> None:
    from portal.services.discovery import search_query

    query = search_query({"q": "llama", "tags": "a,b", "tag": ["c"], "limit": 5})
    same = search_query({"q": "llama", "tags": "a,b", "tag": "c", "limit": 5})
    assert query == same
    assert search_query({}).sort == "downloads"
