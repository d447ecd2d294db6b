"""`GET /fit` (what-if) and `/fit/calibrations` against the local Hub and the dev cluster (no mocks)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask

from portal.services.fit import GIB
from tests.support.fit_cases import CASES, quoted_log
from tests.support.fixtures_discovery import llama_like
from tests.support.hub import HubServer

LLAMA_019 = next(c for c in CASES if c["vllm_version"] == "0.19.0" and c["model"].endswith("Llama-3.1-8B-Instruct"))


def test_what_if_for_a_hub_model_on_one_gpu(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    fits = client.get("/fit?hfModelId=acme/llama-8b&gpuType=nvidia-l4&maxModelLen=8192&vllmVersion=0.19.0")
    assert fits.status_code == 200, fits.json
    body = fits.json
    assert body["gpuType"] == "nvidia-l4" and body["compatible"] is True and body["level"] == "fits"
    assert (body["vllmVersion"], body["vllmVersionSource"]) == ("0.19.0", "requested")
    report = body["report"]
    assert report["settings"]["vllmVersion"] == "0.19.0" and report["settings"]["engine"] == "V1"
    assert report["overheads"]["sources"]["activation"].startswith("model:")
    assert "to spare" in report["summary"]
    too_long = client.get("/fit?hfModelId=acme/llama-8b&gpuType=nvidia-l4&maxModelLen=131072&vllmVersion=0.19.0").json
    assert too_long["compatible"] is False and too_long["level"] == "reduced"
    assert {f["kind"] for f in too_long["report"]["fixes"]} >= {"max-model-len", "kv-cache-dtype"}
    fp8 = client.get(
        "/fit?hfModelId=acme/llama-8b&gpuType=nvidia-l4&maxModelLen=8192&vllmVersion=0.19.0&kvCacheDtype=fp8"
    ).json
    assert fp8["report"]["kvCache"]["tokens"] == pytest.approx(2 * report["kvCache"]["tokens"], abs=16)


def test_flags_change_the_modelled_profiling_run(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    base = "/fit?hfModelId=acme/llama-8b&gpuType=nvidia-h100-80gb&maxModelLen=8192&vllmVersion=0.21.0"
    default = client.get(base).json["report"]
    assert default["settings"]["maxNumBatchedTokens"] == 8192 and default["settings"]["maxNumSeqs"] == 1024
    assert default["memory"]["cudaGraphsGiB"] > 0  # 0.21 budgets CUDA graphs
    eager = client.get(base + "&enforceEager=true&maxNumSeqs=64&maxNumBatchedTokens=2048").json["report"]
    assert eager["memory"]["cudaGraphsBytes"] == 0
    assert eager["settings"]["maxNumSeqsSource"] == "requested"
    assert eager["memory"]["activationBytes"] < default["memory"]["activationBytes"]
    assert eager["kvCache"]["tokens"] > default["kvCache"]["tokens"]


def test_several_gpus_and_the_runtime_version(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    body = discovery_app.test_client().get("/fit?hfModelId=acme/llama-8b&gpuType=nvidia-t4,nvidia-a100-80gb").json
    assert [c["gpu"] for c in body["candidates"]] == ["nvidia-t4", "nvidia-a100-80gb"]
    assert body["best"] == "nvidia-a100-80gb" and "report" not in body
    # the dev cluster's ServingRuntime runs vllm/vllm-openai:v0.6.3.post1
    assert body["vllmVersion"] == "0.6.3.post1"
    assert body["vllmVersionSource"] == "ServingRuntime vllm-runtime image tag"
    assert body["candidates"][1]["report"]["settings"]["engine"] == "V0"


def test_a_catalog_entry_gives_the_defaults(
    make_discovery_app: Any, hub: HubServer, cluster_catalog: Any, devcluster: Any
) -> None:
    llama_like(hub, "meta-llama/Llama-3.1-8B-Instruct")
    app = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig), MODEL_CATALOG_ROOT=str(cluster_catalog.parent))
    body = app.test_client().get("/fit?model=llama-3.1-8b-instruct&gpuType=nvidia-l4").json
    assert body["modelId"] == "llama-3.1-8b-instruct" and body["report"]["settings"]["maxModelLen"] == 32768
    # the entry's vllm block sets the profiling flags and the KV dtype; the request still overrides
    path = cluster_catalog / "llama-3.1-8b-instruct.json"
    entry = json.loads(path.read_text())
    entry["vllm"].update(kvCacheDtype="fp8", maxNumBatchedTokens=4096, maxNumSeqs=64, enforceEager=True)
    path.write_text(json.dumps(entry))
    app.test_client().post("/refresh")
    tuned = app.test_client().get("/fit?model=llama-3.1-8b-instruct&gpuType=nvidia-l4&vllmVersion=0.21.0").json
    settings = tuned["report"]["settings"]
    assert (settings["kvCacheDtype"], settings["maxNumBatchedTokens"], settings["maxNumSeqs"]) == ("fp8", 4096, 64)
    assert settings["enforceEager"] is True and tuned["report"]["memory"]["cudaGraphsBytes"] == 0
    override = app.test_client().get("/fit?model=llama-3.1-8b-instruct&gpuType=nvidia-l4&maxNumSeqs=8").json
    assert override["report"]["settings"]["maxNumSeqs"] == 8


def test_bad_requests_are_4xx(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    both = client.get("/fit?hfModelId=acme/llama-8b&model=x")
    assert both.status_code in (400, 422) and both.json["code"]
    assert client.get("/fit").status_code in (400, 422)
    assert client.get("/fit?hfModelId=acme/llama-8b&gpuMemoryUtilization=1.5").status_code in (400, 422)
    assert client.get("/fit?hfModelId=acme/llama-8b&vllmVersion=latest").status_code in (400, 422)
    unknown = client.get("/fit?hfModelId=acme/llama-8b&gpuType=nvidia-b900")
    assert unknown.status_code == 404 and unknown.json["code"] == "unknown_gpu_type"
    assert client.get("/fit?model=nope").status_code == 404


def test_calibration_from_a_real_log_is_used_by_later_estimates(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    query = "/fit?hfModelId=acme/llama-8b&gpuType=nvidia-h100-80gb&maxModelLen=8192&gpuMemoryUtilization=0.95"
    before = client.get(query + "&vllmVersion=0.19.0").json["report"]
    created = client.post(
        "/fit/calibrations",
        json={
            "log": quoted_log(LLAMA_019),
            "gpuType": "nvidia-h100-80gb",
            "hfModelId": "acme/llama-8b",
            "vllmVersion": "0.19.0",  # the quoted lines do not print it
        },
    )
    assert created.status_code == 201, created.json
    cal = created.json["calibration"]
    assert (cal["vllmVersion"], cal["activationGiB"], cal["nonTorchGiB"]) == ("0.19.0", 1.89, 0.25)
    after = client.get(query + "&vllmVersion=0.19.0").json["report"]
    assert after["overheads"]["source"].startswith("calibrated from a start-up on ")
    assert after["memory"]["kvBudgetBytes"] / GIB == pytest.approx(LLAMA_019["kv_cache_gib"], rel=0.01)
    assert after["kvCache"]["tokens"] != before["kvCache"]["tokens"]
    # another version is not calibrated
    other = client.get(query + "&vllmVersion=0.18.0").json["report"]
    assert other["overheads"]["source"].startswith("model")
    listed = client.get("/fit/calibrations?gpuType=nvidia-h100-80gb").json["calibrations"]
    assert [c["id"] for c in listed] == [cal["id"]]
    assert client.get(f"/fit/calibrations/{cal['id']}").json["activationGiB"] == 1.89
    assert client.get("/fit/calibrations/99999").status_code == 404
    events = client.get("/history").json
    rows = events["events"] if isinstance(events, dict) and "events" in events else events
    assert any(e["event"] == "fit_calibrated" for e in rows)


def test_calibration_by_file_upload(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    case = next(c for c in CASES if c["vllm_version"] == "0.8.2")
    response = discovery_app.test_client().post(
        "/fit/calibrations/upload?gpuType=nvidia-t4&hfModelId=acme/llama-8b",
        data=io.BytesIO(quoted_log(case).encode()),
        content_type="text/plain",
    )
    assert response.status_code == 201, response.json
    assert response.json["calibration"]["activationGiB"] == 0.9
    assert response.json["parsed"]["maxNumSeqs"] == 192


def test_bad_logs_are_400_naming_what_is_missing(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    body = {"gpuType": "nvidia-l4", "hfModelId": "acme/llama-8b"}
    garbage = client.post("/fit/calibrations", json={**body, "log": "hello\nworld"})
    assert garbage.status_code == 400 and garbage.json["code"] == "unrecognised_log"
    assert any("KV-cache line" in m for m in garbage.json["details"]["missing"])
    partial = client.post("/fit/calibrations", json={**body, "log": "GPU KV cache size: 40,160 tokens"})
    assert partial.status_code == 400 and partial.json["code"] == "incomplete_log"
    assert any("activation peak" in m for m in partial.json["details"]["missing"])
    unversioned = client.post("/fit/calibrations", json={**body, "log": quoted_log(CASES[2])})
    assert unversioned.status_code == 400 and unversioned.json["code"] == "missing_vllm_version"
    ok = client.post("/fit/calibrations", json={**body, "log": quoted_log(CASES[2]), "vllmVersion": "0.6.6"})
    assert ok.status_code == 201
    assert client.post("/fit/calibrations", json={**body, "log": ""}).status_code in (400, 422)
    assert (
        client.post("/fit/calibrations", json={**body, "gpuType": "x", "log": quoted_log(LLAMA_019)}).status_code == 404
    )
