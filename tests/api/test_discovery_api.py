"""Discovery API against the local Hub server and the dev cluster (no mocks)."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tests.support.fixtures_discovery import llama_like
from tests.support.hub import DEFAULT_TOKEN, HubServer, make_model_repo


def test_search_returns_insights_with_fit_per_cluster_profile(discovery_app: Flask, hub: HubServer) -> None:
    repo = llama_like(hub)
    make_model_repo(hub, "acme/tiny-chat", downloads=10, likes=1)
    client = discovery_app.test_client()
    response = client.get("/huggingface/search?q=acme&sort=downloads")
    assert response.status_code == 200, response.json
    body = response.json
    assert [r["id"] for r in body["results"]] == ["acme/llama-8b", "acme/tiny-chat"]
    llama = body["results"][0]
    assert llama["compatible"] is True
    assert llama["vllm"]["matchedArchitectures"] == ["LlamaForCausalLM"]
    assert llama["weightsBytes"] == sum(repo.parameters.values()) * 2 == 16_060_522_496  # reference case C
    assert llama["license"] == "llama3.1"
    # The dev cluster has an L4 node and an MI210 node: fit is judged on those profiles only.
    levels = {row["profile"]: row["level"] for row in llama["fit"]}
    assert set(levels) == {"nvidia-l4", "amd-mi210"} == set(body["clusterProfiles"])
    assert levels["nvidia-l4"] == "reduced"  # 131072 tokens do not fit on 24 GB; a shorter context does
    assert levels["amd-mi210"] == "fits"
    tiny = {row["profile"]: row["level"] for row in body["results"][1]["fit"]}
    assert set(tiny.values()) == {"fits"}


def test_second_search_is_served_from_redis_without_hub_requests(discovery_app: Flask, hub: HubServer) -> None:
    for i in range(3):
        make_model_repo(hub, f"acme/model-{i}")
    client = discovery_app.test_client()
    hub.reset_requests()
    first = client.get("/huggingface/search?q=acme")
    assert first.status_code == 200
    # One listing request plus one config.json per uncached result.
    assert hub.count("/api/models") == 1
    assert len(hub.requests) <= 1 + 3
    hub.reset_requests()
    second = client.get("/huggingface/search?q=acme")
    assert second.json["results"] == first.json["results"]
    assert hub.requests == []
    # A new query lists again but reuses cached insights (same revisions): one request.
    hub.reset_requests()
    client.get("/huggingface/search?q=acme&limit=2")
    assert len(hub.requests) == 1


def test_search_without_cluster_judges_every_profile(make_discovery_app: Any, hub: HubServer) -> None:
    make_model_repo(hub, "acme/tiny")
    app = make_discovery_app()
    body = app.test_client().get("/huggingface/search?q=tiny").json
    assert len(body["results"][0]["fit"]) == 12
    assert body["inventory"]["available"] is False


def test_search_arguments_are_validated(discovery_app: Flask) -> None:
    client = discovery_app.test_client()
    assert client.get("/huggingface/search?limit=51").status_code in (400, 422)
    assert client.get("/huggingface/search?sort=random").status_code in (400, 422)


def test_model_details_config_files_and_fit_matrix(discovery_app: Flask, hub: HubServer) -> None:
    repo = llama_like(hub)
    body = discovery_app.test_client().get("/huggingface/models/acme/llama-8b").json
    assert body["insight"]["id"] == "acme/llama-8b"
    assert body["config"]["layers"] == 32 and body["config"]["kvHeads"] == 8
    assert body["config"]["kvBytesPerToken"] == 131072
    files = {f["name"]: f["size"] for f in body["files"]}
    assert files["model.safetensors"] == repo.files["model.safetensors"].size
    assert body["insight"]["parameterCount"] == 8_030_261_248
    reports = {r["profile"]: r for r in body["fitReports"]}
    assert len(reports) == 12
    l4 = reports["nvidia-l4"]
    assert l4["verdict"] == "does_not_start" and l4["level"] == "reduced"
    assert l4["inCluster"] is True
    assert any(f["kind"] == "max-model-len" for f in l4["fixes"])
    assert l4["memory"]["weightsBytes"] == sum(repo.parameters.values()) * 2
    assert reports["nvidia-t4"]["level"] == "no"  # 15 GiB of weights on a 14.75 GiB card
    assert reports["nvidia-a100-80gb"]["verdict"] == "fits"


def test_unknown_model_is_404_and_bad_id_400(discovery_app: Flask, hub: HubServer) -> None:
    client = discovery_app.test_client()
    response = client.get("/huggingface/models/acme/nothing")
    assert response.status_code == 404
    assert response.json["code"] == "hf_not_found"
    assert client.get("/huggingface/models/a/b/c").status_code == 400


def test_hub_down_is_503_with_message(discovery_app: Flask, hub: HubServer) -> None:
    hub.set_down(True)
    client = discovery_app.test_client()
    response = client.get("/huggingface/search?q=x")
    assert response.status_code == 503
    assert response.json["code"] == "hf_unavailable"
    assert "unreachable" in response.json["error"]
    assert client.get("/huggingface/models/acme/x").status_code == 503


def test_gated_model_needs_the_token(make_discovery_app: Any, devcluster: Any, hub: HubServer) -> None:
    llama_like(hub, "meta/gated-llama", gated="manual")
    app = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig))
    client = app.test_client()
    detail = client.get("/huggingface/models/meta/gated-llama").json
    assert detail["insight"]["gated"] == "manual"
    assert detail["insight"]["fit"] == []
    assert any("HUGGINGFACE_API_TOKEN" in note for note in detail["insight"]["notes"])
    generated = client.post("/catalog/generate", json={"hfModelId": "meta/gated-llama"})
    assert generated.status_code == 401
    assert generated.json["code"] == "hf_gated"
    assert "HUGGINGFACE_API_TOKEN" in generated.json["error"]

    authorised = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig), HUGGINGFACE_API_TOKEN=DEFAULT_TOKEN)
    detail = authorised.test_client().get("/huggingface/models/meta/gated-llama").json
    assert detail["insight"]["fit"]


def test_architecture_matching_is_exact(discovery_app: Flask, hub: HubServer) -> None:
    make_model_repo(hub, "acme/impostor", architectures=["MyLlamaForCausalLMX"])
    insight = discovery_app.test_client().get("/huggingface/models/acme/impostor").json["insight"]
    assert insight["compatible"] is False
    assert insight["vllm"]["unsupported"] == ["MyLlamaForCausalLMX"]


def test_generate_entry_for_cluster_gpu(discovery_app: Flask, hub: HubServer) -> None:
    make_model_repo(hub, "Acme/Tiny_Chat-1B", extra_config={"auto_map": {"AutoModel": "x.Y"}})
    client = discovery_app.test_client()
    body = client.post("/catalog/generate", json={"hfModelId": "Acme/Tiny_Chat-1B", "gpuType": "nvidia-l4"}).json
    entry = body["model"]
    assert entry["id"] == "acme-tiny-chat-1b"
    assert entry["storageUri"] == "hf://Acme/Tiny_Chat-1B"
    assert entry["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    assert entry["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L4"}
    assert entry["vllm"]["trustRemoteCode"] is True
    assert entry["vllm"]["maxModelLen"] == 4096
    assert body["validation"]["valid"] is True, body["validation"]
    mi210 = client.post("/vllm/discover", json={"hfModelId": "Acme/Tiny_Chat-1B", "gpuType": "amd-mi210"}).json
    assert mi210["tolerations"] == [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert mi210["nodeSelector"] == {"amd.com/gpu.product": "AMD-Instinct-MI210"}


def test_generated_entry_reduces_max_model_len_to_what_fits(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    body = (
        discovery_app.test_client()
        .post("/catalog/generate", json={"hfModelId": "acme/llama-8b", "gpuType": "nvidia-l4"})
        .json
    )
    vllm = body["model"]["vllm"]
    assert "trustRemoteCode" not in vllm
    # Reference case B: about 40K tokens fit on an L4 (rounded down to a multiple of 1,024).
    assert 30_000 <= vllm["maxModelLen"] <= 41_000
    assert body["validation"]["valid"] is True, body["validation"]


def test_profiles_with_cluster_counts(discovery_app: Flask) -> None:
    body = discovery_app.test_client().get("/recommendations/profiles").json
    rows = {p["name"]: p["cluster"] for p in body["profiles"]}
    assert rows["nvidia-l4"] == {"total": 1, "free": 1, "nodes": 1}
    assert rows["amd-mi210"]["total"] == 1
    assert rows["nvidia-h100-80gb"]["total"] == 0


def test_recommendations_for_a_hub_model(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    body = client.get("/recommendations/nvidia-l4?hfModelId=acme/llama-8b").json
    flags = {f["flag"]: f for f in body["flags"]}
    assert flags["--dtype"]["value"] == "bfloat16"
    assert all(f["reason"] for f in body["flags"])
    assert "--max-model-len" in flags or "--kv-cache-dtype" in flags
    plain = client.get("/recommendations/nvidia-t4").json
    assert {f["flag"]: f["value"] for f in plain["flags"]}["--dtype"] == "float16"
    assert client.get("/recommendations/nope").status_code == 404


def test_supported_models_and_architecture_lookup(discovery_app: Flask) -> None:
    client = discovery_app.test_client()
    body = client.get("/vllm/supported-models?category=text-generation&search=llama").json
    names = [a["name"] for a in body["architectures"]]
    assert "LlamaForCausalLM" in names and body["source"]["source"] == "bundled"
    arch = client.get("/vllm/model/LlamaForCausalLM").json
    assert arch["module"] == "llama" and "text-generation" in arch["categories"]
    assert client.get("/vllm/model/MyLlamaForCausalLMX").status_code == 404


def _valid_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "tiny",
        "hfModelId": "acme/tiny",
        "runtime": "vllm-runtime",
        "storageUri": "hf://acme/tiny",
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}],
        "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}},
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
        "vllm": {"maxModelLen": 4096},
    }
    entry.update(changes)
    return entry


def _statuses(body: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["checks"]}


def test_validate_passes_for_a_good_entry(discovery_app: Flask, hub: HubServer) -> None:
    make_model_repo(hub, "acme/tiny")
    response = discovery_app.test_client().post("/catalog/validate", json=_valid_entry())
    assert response.status_code == 200, response.json
    statuses = _statuses(response.json)
    assert statuses == {
        "schema": "pass",
        "manifest": "pass",
        "architecture": "pass",
        "fit": "pass",
        "storage": "pass",
        "secret:hf-token": "pass",
        "gpu-capacity": "pass",
        "runtime": "pass",
    }


def test_each_check_fails_on_purpose(discovery_app: Flask, hub: HubServer, tmp_path: Any) -> None:
    make_model_repo(hub, "acme/tiny")
    make_model_repo(hub, "acme/odd", architectures=["OddForCausalLM"])
    llama_like(hub)
    client = discovery_app.test_client()
    settings = discovery_app.config["SETTINGS"]
    (settings.weights_storage_path / "acme").mkdir(parents=True)
    (settings.weights_storage_path / "acme" / "file").write_text("x")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"id": "Bad Id"}, "schema", "fail"),
        (_valid_entry(hfModelId="acme/odd"), "architecture", "fail"),
        (_valid_entry(hfModelId="acme/llama-8b", vllm={"maxModelLen": 131072}), "fit", "fail"),
        (_valid_entry(storageUri="pvc://missing-pvc/acme/tiny"), "storage", "fail"),
        (_valid_entry(storageUri="pvc://venus-model-storage/acme/file"), "weights", "fail"),
        (_valid_entry(storageUri="pvc://venus-model-storage/acme/absent"), "weights", "warn"),
        (
            _valid_entry(env=[{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k"}}}]),
            "secret:nope",
            "fail",
        ),
        (
            _valid_entry(env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm-nope", "key": "k"}}}]),
            "configmap:cm-nope",
            "fail",
        ),
        (_valid_entry(nodeSelector={"kubernetes.io/hostname": "venus"}), "gpu-capacity", "fail"),
        (_valid_entry(resources={"limits": {"nvidia.com/gpu": "2"}}), "gpu-capacity", "fail"),
        (_valid_entry(runtime="no-such-runtime"), "runtime", "fail"),
        (
            _valid_entry(vllm={"maxModelLen": 4096, "tensorParallelSize": 1}, volumes=[{"name": "v"}]),
            "schema",
            "fail",
        ),
    ]
    for entry, name, status in cases:
        response = client.post("/catalog/validate", json=entry)
        statuses = _statuses(response.json)
        assert statuses.get(name) == status, (name, response.json)
        if status == "fail":
            assert response.status_code == 400 and response.json["valid"] is False


def test_cluster_unreachable_makes_cluster_checks_warn(make_discovery_app: Any, hub: HubServer, tmp_path: Any) -> None:
    make_model_repo(hub, "acme/tiny")
    kubeconfig = tmp_path / "dead.kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: ai}}]\n"
        "current-context: x\n"
    )
    app = make_discovery_app(KUBECONFIG=str(kubeconfig))
    response = app.test_client().post("/catalog/validate", json=_valid_entry(storageUri="pvc://venus-model-storage/a"))
    assert response.status_code == 200, response.json
    statuses = _statuses(response.json)
    for name in ("storage", "secret:hf-token", "gpu-capacity", "runtime"):
        assert statuses[name] == "warn"
    assert statuses["architecture"] == "pass"


def test_preview_is_always_200(discovery_app: Flask, hub: HubServer) -> None:
    client = discovery_app.test_client()
    body = client.post("/catalog/preview", json={}).json
    assert body["status"] == "warning" and body["validation"]["valid"] is False
    make_model_repo(hub, "acme/tiny")
    good = client.post("/catalog/preview", json=_valid_entry())
    assert good.status_code == 200 and "status" not in good.json
    assert good.json["manifest"]["kind"] == "InferenceService"
    assert client.post("/catalog/validate", data="nope", content_type="application/json").status_code == 400


def test_compatibility_of_catalog_entry(
    discovery_app: Flask, hub: HubServer, cluster_catalog: Any, make_discovery_app: Any, devcluster: Any
) -> None:
    llama_like(hub, "meta-llama/Llama-3.1-8B-Instruct")
    app = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig), MODEL_CATALOG_ROOT=str(cluster_catalog.parent))
    client = app.test_client()
    all_profiles = client.get("/models/llama-3.1-8b-instruct/compatibility").json
    assert all_profiles["compatible"] is True
    assert all_profiles["best"] == "nvidia-l4"  # in the cluster, free, smallest that fits 32K
    assert len(all_profiles["candidates"]) == 12
    one = client.get("/models/llama-3.1-8b-instruct/compatibility?gpuType=nvidia-t4").json
    assert one["compatible"] is False and one["gpuType"] == "nvidia-t4"
    assert client.get("/models/nope/compatibility").status_code == 404
