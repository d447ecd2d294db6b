"""Weights API: validation and Hub error mapping, conflicts, 507, path safety, listing, usage, delete guard."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Job
from portal.services import weights
from tests.support.fixtures_weights import isolated_queue
from tests.support.hub import HubServer


def _root(app: Flask) -> Path:
    return Path(app.config["SETTINGS"].weights_storage_path)


def _fake_install(root: Path, name: str, size: int = 1000, model_id: str | None = None) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"x" * size)
    (path / "config.json").write_text("{}")
    if model_id:
        marker = {"modelId": model_id, "revision": "a" * 40, "installedAt": "2026-01-01T00:00:00Z"}
        (path / ".model-manager").write_text(json.dumps(marker))
    return path


def test_bad_ids_and_inputs_are_400(install_app: Flask) -> None:
    client = install_app.test_client()
    for body in ({}, {"hfModelId": "no-slash"}, {"hfModelId": "a/b/c"}, {"hfModelId": "../x"}):
        response = client.post("/weights/install", json=body)
        assert response.status_code == 400, body
        assert set(response.json) == {"error", "code", "details"}
    bad_files = client.post("/weights/install", json={"hfModelId": "acme/x", "files": ["../etc/passwd"]})
    assert bad_files.status_code == 400
    bad_target = client.post("/weights/install", json={"hfModelId": "acme/x", "target": "../../etc"})
    assert bad_target.status_code == 400 and bad_target.json["code"] == "path_traversal"
    reserved = client.post("/weights/install", json={"hfModelId": "acme/x", "target": ".hf-cache/x"})
    assert reserved.status_code == 400 and reserved.json["code"] == "reserved_path"


def test_missing_repo_and_revision_are_404(install_app: Flask, hub: HubServer, small_repo: Any) -> None:
    client = install_app.test_client()
    missing = client.post("/weights/install", json={"hfModelId": "acme/nope"})
    assert missing.status_code == 404 and missing.json["code"] == "hf_not_found"
    assert missing.json["details"]["hfModelId"] == "acme/nope"
    revision = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm", "revision": "nobranch"})
    assert revision.status_code == 404 and revision.json["code"] == "hf_revision_not_found"
    assert revision.json["details"]["revision"] == "nobranch"
    no_match = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm", "files": ["*.gguf"]})
    assert no_match.status_code == 400 and no_match.json["code"] == "no_files"


def test_gated_repo_needs_a_token(make_app: Any, hub: HubServer) -> None:
    hub.add_repo("acme/gated", {"model.safetensors": b"\0" * 20_000}, gated=True, authorized_tokens={hub.token})
    hub.add_token("hf_other")
    for token, status in (("", 401), ("hf_other", 403)):
        app = make_app(HF_ENDPOINT=hub.url, HUGGINGFACE_API_TOKEN=token, **isolated_queue())
        with app.app_context():
            response = app.test_client().post("/weights/install", json={"hfModelId": "acme/gated"})
            assert response.status_code == status, response.json
            assert response.json["code"] == "hf_gated", "the same code discovery and fit answer"
            assert "HUGGINGFACE_API_TOKEN" in response.json["error"]
            assert "hf_other" not in json.dumps(response.json), "the token never appears in a response"
    app = make_app(HF_ENDPOINT=hub.url, HUGGINGFACE_API_TOKEN=hub.token, **isolated_queue())
    with app.app_context():
        assert app.test_client().post("/weights/install", json={"hfModelId": "acme/gated"}).status_code == 202


def test_hub_down_is_503(install_app: Flask, hub: HubServer, small_repo: Any) -> None:
    hub.set_down(True, mode="refuse")
    client = install_app.test_client()
    response = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm"})
    assert response.status_code == 503 and response.json["code"] == "hf_unavailable"
    page = client.get("/ui/weights").get_data(as_text=True)
    assert "Hugging Face is unreachable" in page, "a failed install raises the same banner as discovery"


def test_no_space_is_507_before_any_job(make_app: Any, hub: HubServer, small_repo: Any) -> None:
    app = make_app(HF_ENDPOINT=hub.url, WEIGHTS_VOLUME_LIMIT_BYTES="1000", **isolated_queue())
    with app.app_context():
        response = app.test_client().post("/weights/install", json={"hfModelId": "acme/tiny-llm"})
        assert response.status_code == 507
        assert response.json["details"]["requiredBytes"] > 1000
        assert db.session.query(Job).count() == 0


def test_conflicts_return_409(install_app: Flask, hub: HubServer, small_repo: Any) -> None:
    client = install_app.test_client()
    first = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm"})
    assert first.status_code == 202
    again = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm", "overwrite": True})
    assert again.status_code == 409 and again.json["code"] == "install_in_progress"
    assert again.json["details"]["job"]["id"] == first.json["job"]["id"]
    _fake_install(_root(install_app), "acme/other", model_id="acme/other")
    exists = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm", "target": "acme/other"})
    assert exists.status_code == 409 and exists.json["code"] == "weights_exist"


def test_list_info_and_usage(install_app: Flask) -> None:
    root = _root(install_app)
    _fake_install(root, "acme/big", 5000, model_id="acme/big")
    _fake_install(root, "acme/small", 100, model_id="acme/small")
    _fake_install(root, "legacy-model", 2000)
    _fake_install(root, ".hf-cache/models--x", 9000)
    _fake_install(root, "lost+found/x", 9000)
    (root / "acme" / "half.partial").mkdir()
    client = install_app.test_client()
    names = [w["name"] for w in client.get("/weights").json["weights"]]
    assert names == ["acme/big", "legacy-model", "acme/small"]
    info = client.get("/weights/acme/big/info").json
    assert info["sizeBytes"] == 5002 and info["fileCount"] == 2 and info["hfModelId"] == "acme/big"
    assert info["sizeHuman"] == "4.9 KiB" and info["storageUri"] == "pvc://venus-model-storage/acme/big"
    assert client.get("/weights/info?name=acme/big").json == info
    assert client.get("/weights/info?name=acme/missing").status_code == 404
    assert client.get("/weights/info").status_code == 400
    usage = client.get("/weights/usage").json
    assert usage["usedBytes"] == 5002 + 102 + 2002 and usage["modelCount"] == 3
    assert usage["totalBytes"] > 0 and usage["availableBytes"] > 0 and 0 <= usage["usedPercent"] <= 100


@pytest.mark.parametrize(
    "name",
    [
        "../outside",
        "acme/../../outside",
        "%2e%2e/outside",
        "%2e%2e%2foutside",
        "%252e%252e%252foutside",
        "/etc",
        "..\\outside",
    ],
)
def test_path_traversal_is_refused(install_app: Flask, name: str) -> None:
    root = _root(install_app)
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "keep.txt").write_text("keep")
    client = install_app.test_client()
    assert client.get("/weights/info", query_string={"name": name}).status_code == 400
    assert client.delete("/weights", json={"name": name}).status_code == 400
    with pytest.raises(Exception) as info:
        weights.delete_weights(name, actor="t", active=(None, None))
    assert getattr(info.value, "status", None) == 400
    assert (outside / "keep.txt").exists()


def test_path_in_url_and_symlink_out_of_root(install_app: Flask) -> None:
    root = _root(install_app)
    outside = root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "keep.txt").write_text("keep")
    (root / "acme").mkdir()
    os.symlink(outside, root / "acme" / "escape")
    client = install_app.test_client()
    assert client.get("/weights/acme/escape/info").status_code == 400
    assert client.delete("/weights/acme/escape").status_code == 400
    assert client.delete("/weights/%2e%2e/outside").status_code in (400, 404)
    assert client.get("/weights/%2e%2e%2foutside/info").status_code in (400, 404)
    assert (outside / "keep.txt").exists()
    for reserved in (".hf-cache", "modules", "lost+found", "acme/.secret"):
        (root / reserved).mkdir(parents=True, exist_ok=True)
        assert client.delete("/weights", json={"name": reserved}).status_code == 400
        assert (root / reserved).exists()


def test_delete_removes_the_install_and_empty_parents(install_app: Flask) -> None:
    root = _root(install_app)
    _fake_install(root, "acme/a", model_id="acme/a")
    _fake_install(root, "solo/b", model_id="solo/b")
    client = install_app.test_client()
    response = client.delete("/weights/acme/a")
    assert response.status_code == 200 and response.json["status"] == "success"
    assert not (root / "acme").exists()
    assert client.delete("/weights", json={"name": "solo/b"}).status_code == 200
    assert client.delete("/weights", json={"name": "solo/b"}).status_code == 404
    assert root.exists()
    rows = client.get("/history?event=weight_deleted").json["events"]
    assert {r["modelId"] for r in rows} == {"acme/a", "solo/b"}


def test_delete_of_the_active_models_weights_needs_force(install_app: Flask) -> None:
    root = _root(install_app)
    _fake_install(root, "acme/live", model_id="acme/live")
    active = ("pvc://venus-model-storage/acme/live", "live-model")
    with pytest.raises(Exception) as info:
        weights.delete_weights("acme/live", actor="t", active=active)
    assert getattr(info.value, "status", None) == 409 and "live-model" in str(info.value)
    assert (root / "acme" / "live").exists()
    weights.delete_weights("acme/live", actor="t", active=active, force=True)
    assert not (root / "acme" / "live").exists()


def test_delete_is_not_blocked_when_the_cluster_is_unreachable(install_app: Flask) -> None:
    _fake_install(_root(install_app), "acme/x", model_id="acme/x")
    response = install_app.test_client().delete("/weights/acme/x")
    assert response.status_code == 200
