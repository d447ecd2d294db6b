"""Catalog API: list/filter/get, broken files, refresh across processes, manifest, status, /system/info."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from tests.support.fixtures_cluster import copy_example_catalog, write_entry_file

EXAMPLE_IDS = ["llama-3.1-8b-instruct", "qwen2.5-1.5b-instruct", "tiny-gpt2-test"]


def _app(make_app: Callable[..., Flask], root: Path, **extra: str) -> Flask:
    return make_app(MODEL_CATALOG_ROOT=str(root), **extra)


def test_models_sorted_filtered_and_404(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    models = copy_example_catalog(tmp_path / "cat")
    write_entry_file(models, {"id": "aaa-first", "displayName": "First", "hfModelId": "Org/Qwen-Like"}, "zzz.json")
    client = _app(make_app, models.parent).test_client()

    listed = client.get("/models")
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json] == ["aaa-first", *EXAMPLE_IDS]
    assert listed.json[1]["hfModelId"] == "meta-llama/Llama-3.1-8B-Instruct"

    assert [e["id"] for e in client.get("/models?q=QWEN").json] == ["aaa-first", "qwen2.5-1.5b-instruct"]
    assert [e["id"] for e in client.get("/models?q=gpt2 tiny").json] == []
    assert [e["id"] for e in client.get("/models?q=Tiny GPT-2").json] == ["tiny-gpt2-test"]

    one = client.get("/models/tiny-gpt2-test")
    assert one.status_code == 200 and one.json["displayName"] == "Tiny GPT-2 Test"
    missing = client.get("/models/nope")
    assert missing.status_code == 404
    assert missing.json["code"] == "model_not_found" and missing.json["error"]


def test_empty_catalog_is_an_empty_list(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    (tmp_path / "empty" / "models").mkdir(parents=True)
    client = _app(make_app, tmp_path / "empty").test_client()
    response = client.get("/models")
    assert response.status_code == 200 and response.json == []
    assert client.get("/catalog/status").json["status"] == "empty"


def test_broken_files_are_reported_and_good_ones_served(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    models = copy_example_catalog(tmp_path / "cat")
    (models / "bad-json.json").write_text('{"id": "x",\n  "displayName": }\n', encoding="utf-8")
    write_entry_file(models, {"id": "typed", "vllm": {"tensorParallelSize": "1"}})
    write_entry_file(models, {"displayName": "no id"}, "no-id.json")
    write_entry_file(models, {"id": "Bad Name!"}, "bad-name.json")
    write_entry_file(models, {"id": "tiny-gpt2-test"}, "zz-duplicate.json")
    write_entry_file(models, {"id": "with-unknown", "colour": "blue"})
    client = _app(make_app, models.parent).test_client()

    ids = [e["id"] for e in client.get("/models").json]
    assert ids == [*EXAMPLE_IDS, "with-unknown"]
    status = client.get("/catalog/status").json
    assert status["count"] == 4 and status["errors"] == 5 and status["warnings"] == 1
    by_file = {i["file"]: i for i in status["issues"]}
    assert by_file["bad-json.json"]["line"] == 2 and "invalid JSON" in by_file["bad-json.json"]["message"]
    assert by_file["typed.json"]["field"] == "vllm.tensorParallelSize"
    assert by_file["no-id.json"]["field"] == "id"
    assert by_file["bad-name.json"]["field"] == "id"
    assert "duplicate id" in by_file["zz-duplicate.json"]["message"]
    assert by_file["with-unknown.json"]["severity"] == "warning" and by_file["with-unknown.json"]["field"] == "colour"

    info = client.get("/system/info").json["catalog"]
    assert info["count"] == 4 and info["errors"] == 5 and info["status"] == "live"
    assert "5 file(s) have errors" in client.get("/ui/").get_data(as_text=True)


def test_refresh_reaches_every_process(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    models = copy_example_catalog(tmp_path / "cat")
    # Two apps = two gunicorn workers sharing Redis; a long interval so only /refresh can reload.
    first = _app(make_app, models.parent, CATALOG_REFRESH_INTERVAL="1h").test_client()
    second = _app(make_app, models.parent, CATALOG_REFRESH_INTERVAL="1h").test_client()
    assert len(first.get("/models").json) == 3 and len(second.get("/models").json) == 3

    write_entry_file(models, {"id": "new-model", "hfModelId": "Org/New"})
    assert len(second.get("/models").json) == 3  # cached until refreshed
    refreshed = first.post("/refresh", json={})
    assert refreshed.status_code == 200
    body = refreshed.json
    assert body["status"] == "success" and body["message"] == "Catalog refreshed"
    assert body["models"][0]["id"] == "llama-3.1-8b-instruct" and body["count"] == 4
    assert body["errors"] == 0 and body["issues"] == []
    assert "new-model" in [e["id"] for e in second.get("/models").json]


def test_missing_directory_keeps_the_last_good_catalog(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    models = copy_example_catalog(tmp_path / "cat")
    client = _app(make_app, models.parent, CATALOG_REFRESH_INTERVAL="0s").test_client()
    assert len(client.get("/models").json) == 3
    moved = tmp_path / "moved"
    models.rename(moved)
    assert len(client.get("/models").json) == 3
    status = client.get("/catalog/status").json
    assert status["status"] == "missing" and "last good catalog" in status["message"]


def test_manifest_endpoint(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    models = copy_example_catalog(tmp_path / "cat")
    write_entry_file(
        models,
        {"id": "blocked-args", "hfModelId": "Org/M", "vllm": {"extraArgs": ["--port", "8000", "--enforce-eager"]}},
    )
    client = _app(make_app, models.parent).test_client()
    body = client.get("/models/tiny-gpt2-test/manifest").json
    manifest = body["manifest"]
    assert manifest["kind"] == "InferenceService" and manifest["metadata"]["name"] == "active-llm"
    assert manifest["metadata"]["annotations"]["model-manager/model-id"] == "tiny-gpt2-test"
    assert body["model"]["id"] == "tiny-gpt2-test"
    assert "kind: InferenceService" in body["yaml"]
    assert "droppedArgs" not in body
    blocked = client.get("/models/blocked-args/manifest").json
    assert blocked["droppedArgs"] == ["--port", "8000"]
    assert blocked["manifest"]["spec"]["predictor"]["model"]["args"][-1] == "--enforce-eager"
    assert client.get("/models/nope/manifest").status_code == 404


def test_models_json_is_valid_after_cache(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    models = copy_example_catalog(tmp_path / "cat")
    client = _app(make_app, models.parent).test_client()
    first = client.get("/models")
    second = client.get("/models")
    assert first.headers["Content-Type"].startswith("application/json")
    assert json.loads(first.data) == json.loads(second.data)


def test_system_info_has_a_cluster_section(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    client = make_app(MODEL_MANAGER_DEVCLUSTER="true").test_client()
    cluster = client.get("/system/info").json["cluster"]
    assert cluster["demo"] is True and cluster["configured"] is False and cluster["namespace"] == "ai"
    assert "demo cluster" in client.get("/ui/").get_data(as_text=True).lower()
