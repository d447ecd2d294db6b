"""Activation through the API against the dev cluster over HTTP (the official client, no mocks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.devcluster.cluster import DevCluster
from portal.services import history
from tests.support.fixtures_cluster import write_entry_file

GROUP_VERSION = "serving.kserve.io/v1beta1"


def wait_for_phase(client: FlaskClient, phase: str, timeout: float = 5.0) -> dict[str, Any]:
    """Poll GET /active until the active model reaches `phase`."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get("/active").json
        if body.get("phase") == phase:
            return body
        time.sleep(0.05)
    raise AssertionError(f"never reached {phase}: {body}")


def events(name: str) -> list[Any]:
    rows, _ = history.query_events(event=name, limit=50)
    return list(reversed(rows))  # oldest first


def test_activate_ready_deactivate(cluster_app: Flask, devcluster: DevCluster) -> None:
    client = cluster_app.test_client()
    assert client.get("/active").json == {"status": "none", "message": "No active model"}

    response = client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "success" and body["model"]["id"] == "tiny-gpt2-test"
    assert body["inferenceservice"]["action"] == "created" and body["inferenceservice"]["name"] == "active-llm"

    pending = client.get("/active").json
    assert pending["status"] == "active" and pending["modelId"] == "tiny-gpt2-test"
    assert pending["phase"] == "pending" and pending["ready"] in ("False", "Unknown")

    ready = wait_for_phase(client, "ready")
    assert ready["ready"] == "True" and ready["url"].startswith("http://active-llm.ai")
    assert ready["model"]["id"] == "tiny-gpt2-test"
    assert ready["inferenceservice"]["metadata"]["annotations"]["model-manager/model-id"] == "tiny-gpt2-test"

    again = client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert again.json["inferenceservice"]["action"] == "updated"
    assert again.json["inferenceservice"]["previousModelId"] == "tiny-gpt2-test"

    gone = client.post("/models/deactivate", json={})
    assert gone.status_code == 200 and gone.json["result"]["action"] == "deleted"
    assert devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai") is None
    assert client.get("/active").json["status"] == "none"
    assert client.post("/models/deactivate").json["result"]["action"] == "already_deleted"

    activated = events("model_activated")
    assert [e.meta["action"] for e in activated] == ["created", "updated"]
    first = activated[0]
    assert first.actor == "anonymous" and first.model_id == "tiny-gpt2-test"
    assert first.meta["previousModelId"] is None and len(first.meta["manifestHash"]) == 16
    assert [e.meta["action"] for e in events("model_deactivated")] == ["deleted", "already_deleted"]


def test_unschedulable_entry_reports_the_reason(cluster_app: Flask, cluster_catalog: Path) -> None:
    write_entry_file(
        cluster_catalog,
        {
            "id": "too-big",
            "hfModelId": "Org/Huge",
            "nodeSelector": {"kubernetes.io/hostname": "venus"},
            "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "resources": {"limits": {"amd.com/gpu": "4"}, "requests": {"amd.com/gpu": "4"}},
        },
    )
    client = cluster_app.test_client()
    assert client.post("/models/activate", json={"id": "too-big"}).status_code == 200
    failed = wait_for_phase(client, "failed")
    assert failed["reason"] == "Unschedulable" and "amd.com/gpu" in failed["message"]

    panel = client.get("/ui/active", headers={"HX-Request": "true"})
    assert panel.status_code == 286
    html = panel.get_data(as_text=True)
    assert 'id="active_model"' in html and "Unschedulable" in html and "amd.com/gpu" in html
    assert 'hx-trigger="every 1s"' not in html


def test_concurrent_activations_are_serialized(cluster_app: Flask, devcluster: DevCluster) -> None:
    devcluster.set_latency(0.05)  # widen the window in which the two requests overlap
    results: dict[str, int] = {}

    def activate(model_id: str) -> None:
        with cluster_app.app_context():
            response = cluster_app.test_client().post("/models/activate", json={"id": model_id})
            results[model_id] = response.status_code

    threads = [threading.Thread(target=activate, args=(m,)) for m in ("tiny-gpt2-test", "llama-3.1-8b-instruct")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    devcluster.clear_faults()
    assert results == {"tiny-gpt2-test": 200, "llama-3.1-8b-instruct": 200}

    activated = events("model_activated")
    assert sorted(e.model_id for e in activated) == ["llama-3.1-8b-instruct", "tiny-gpt2-test"]
    first, later = activated
    assert first.meta["action"] == "created" and later.meta["action"] == "updated"
    assert later.meta["previousModelId"] == first.model_id
    live = devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai")
    assert live is not None and live["metadata"]["annotations"]["model-manager/model-id"] == later.model_id


def test_stale_resource_version_is_retried_once(cluster_app: Flask, devcluster: DevCluster) -> None:
    client = cluster_app.test_client()
    assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200
    before = len(devcluster.requests)
    # The API server's answer when somebody else wrote the object between our read and our replace.
    devcluster.fail_next(
        409,
        method="PUT",
        path="inferenceservices/active-llm",
        reason="Conflict",
        message='Operation cannot be fulfilled on inferenceservices.serving.kserve.io "active-llm": '
        "the object has been modified; please apply your changes to the latest version and try again",
    )
    response = client.post("/models/activate", json={"id": "qwen2.5-1.5b-instruct"})
    assert response.status_code == 200, response.json
    # Only the calls about the object: the cluster watcher's list/watch requests run alongside.
    calls = [
        (r.method, r.path.rsplit("/", 1)[-1])
        for r in list(devcluster.requests)[before:]
        if r.path.endswith("/active-llm")
    ]
    assert calls == [("GET", "active-llm"), ("PUT", "active-llm"), ("GET", "active-llm"), ("PUT", "active-llm")]
    live = devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai")
    assert live is not None and live["metadata"]["annotations"]["model-manager/model-id"] == "qwen2.5-1.5b-instruct"

    # Two conflicts in a row: a clear 409, nothing recorded as done.
    devcluster.fail_next(409, n=2, method="PUT", path="inferenceservices/active-llm", reason="Conflict")
    conflict = client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert conflict.status_code == 409 and conflict.json["code"] == "inferenceservice_conflict"
    assert [e.model_id for e in events("model_activated")] == ["tiny-gpt2-test", "qwen2.5-1.5b-instruct"]
    assert events("model_activation_failed")[-1].meta["code"] == "inferenceservice_conflict"


def test_real_concurrent_write_between_read_and_replace(cluster_app: Flask, devcluster: DevCluster) -> None:
    """A genuine stale resourceVersion: the object changes while our replace is on its way."""
    client = cluster_app.test_client()
    assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200
    live = devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai")
    assert live is not None
    # Someone else (kubectl) edits the object; our next replace must not clobber blindly with the old
    # version, and it does not need to: the portal reads the current version first.
    live["metadata"].setdefault("labels", {})["edited-by"] = "kubectl"
    devcluster.add(live)
    response = client.post("/models/activate", json={"id": "qwen2.5-1.5b-instruct"})
    assert response.status_code == 200
    assert response.json["inferenceservice"]["previousModelId"] == "tiny-gpt2-test"


def test_unknown_and_bad_bodies(cluster_app: Flask) -> None:
    client = cluster_app.test_client()
    assert client.post("/models/activate", json={}).status_code == 400
    assert client.post("/models/activate", json={"id": 5}).status_code == 400
    missing = client.post("/models/activate", json={"id": "nope"})
    assert missing.status_code == 404 and missing.json["code"] == "model_not_found"
    assert client.post("/models/test", json={}).status_code == 400
    assert client.post("/models/test", json={"id": "tiny-gpt2-test", "timeoutSeconds": 31}).status_code == 400
    bad_url = client.post("/models/test", json={"id": "tiny-gpt2-test", "readinessUrl": "file:///etc/passwd"})
    assert bad_url.status_code == 400 and bad_url.json["code"] == "invalid_readiness_url"
    assert events("model_activated") == []


def test_dry_run_create_then_update(cluster_app: Flask, devcluster: DevCluster) -> None:
    client = cluster_app.test_client()
    first = client.post("/models/test", json={"id": "tiny-gpt2-test"})
    assert first.status_code == 200, first.json
    assert first.json["status"] == "success" and first.json["dryRun"]["action"] == "create"
    assert first.json["dryRun"]["warnings"] == []
    assert first.json["dryRun"]["manifest"]["metadata"]["name"] == "active-llm"
    assert devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai") is None  # nothing stored

    client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    second = client.post("/models/test", json={"id": "llama-3.1-8b-instruct"})
    assert second.json["dryRun"]["action"] == "update"
    live = devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai")
    assert live is not None and live["metadata"]["annotations"]["model-manager/model-id"] == "tiny-gpt2-test"


def test_dry_run_refused_by_the_api_server(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    # KServe's validating webhook refuses the object (as it does e.g. for a name it cannot serve).
    denial = (
        'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: 1llm is not valid'
    )
    devcluster.fail_next(403, n=2, method="POST", message=denial, reason="Forbidden")
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
    )
    client = app.test_client()
    refused = client.post("/models/test", json={"id": "tiny-gpt2-test"})
    assert refused.status_code == 422, refused.json
    assert refused.json["code"] == "manifest_invalid" and "1llm" in refused.json["error"]
    activate = client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert activate.status_code == 422
    with app.app_context():
        assert events("model_activated") == []
        assert events("model_activation_failed")[0].meta["code"] == "manifest_invalid"


def test_readiness_probe(cluster_app: Flask, devcluster: DevCluster) -> None:
    client = cluster_app.test_client()
    ok = client.post(
        "/models/test", json={"id": "tiny-gpt2-test", "readinessUrl": f"{devcluster.url}/version", "timeoutSeconds": 2}
    ).json
    assert ok["status"] == "success" and ok["readiness"]["status"] == "ok" and ok["readiness"]["code"] == 200
    assert "gitVersion" in ok["readiness"]["preview"] and len(ok["readiness"]["preview"].encode()) <= 512
    failing = client.post(
        "/models/test", json={"id": "tiny-gpt2-test", "readinessUrl": f"{devcluster.url}/nothing-here"}
    ).json
    assert failing["status"] == "warning" and failing["readiness"]["status"] == "fail"
    closed = client.post(
        "/models/test", json={"id": "tiny-gpt2-test", "readinessUrl": "http://127.0.0.1:9/", "timeoutSeconds": 1}
    ).json
    assert closed["status"] == "warning" and closed["readiness"]["status"] == "error"


def test_unreachable_cluster_is_503_and_nothing_recorded(
    make_app: Callable[..., Flask], tmp_path: Path, cluster_catalog: Path
) -> None:
    dead = DevCluster(ready_delay=0.1)
    dead.start()
    kubeconfig = dead.write_kubeconfig(tmp_path / "dead.kubeconfig")
    dead.stop()  # the port is closed now
    app = make_app(KUBECONFIG=str(kubeconfig), MODEL_CATALOG_ROOT=str(cluster_catalog.parent))
    client = app.test_client()
    response = client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert response.status_code == 503 and response.json["code"] == "cluster_unreachable"
    assert client.get("/active").status_code == 503
    assert client.post("/models/deactivate").status_code == 503
    html = client.get("/ui/active/header").get_data(as_text=True)
    assert "cluster unreachable" in html
    assert client.get("/ui/catalog").status_code == 200
    with app.app_context():
        assert events("model_activated") == [] and events("model_deactivated") == []
        assert events("model_activation_failed")[0].meta["status"] == 503


def test_slow_cluster_is_504(make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path) -> None:
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        KUBE_TIMEOUT="0.3s",
    )
    devcluster.set_latency(1.0)
    client = app.test_client()
    response = client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert response.status_code == 504 and response.json["code"] == "cluster_timeout"
    devcluster.clear_faults()
    with app.app_context():
        assert events("model_activated") == []


def test_not_configured(client: FlaskClient) -> None:
    response = client.post("/models/activate", json={"id": "x"})
    assert response.status_code in (404, 501)
    assert client.get("/active").status_code == 501
    assert "no cluster configured" in client.get("/ui/active/header").get_data(as_text=True)


def test_rollback(cluster_app: Flask) -> None:
    client = cluster_app.test_client()
    nothing = client.post("/models/rollback", json={})
    assert nothing.status_code == 409 and nothing.json["code"] == "no_rollback_target"
    client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    assert client.post("/models/rollback").status_code == 409
    client.post("/models/activate", json={"id": "qwen2.5-1.5b-instruct"})
    back = client.post("/models/rollback")
    assert back.status_code == 200, back.json
    assert back.json["rollback"] == {"from": "qwen2.5-1.5b-instruct", "to": "tiny-gpt2-test"}
    assert client.get("/active").json["modelId"] == "tiny-gpt2-test"
    last = events("model_activated")[-1]
    assert last.model_id == "tiny-gpt2-test" and last.meta["rollbackFrom"] == "qwen2.5-1.5b-instruct"


@pytest.mark.parametrize("path", ["/models/activate", "/models/deactivate", "/models/rollback", "/models/test"])
def test_token_guards_runtime_routes(make_app: Callable[..., Flask], path: str) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN="tok-123").test_client()
    assert client.post(path, json={}).status_code == 401
    allowed = client.post(path, json={}, headers={"Authorization": "Bearer tok-123"})
    assert allowed.status_code in (400, 409, 501), allowed.json


def test_dry_run_while_activations_run_is_retried_not_a_gateway_error(
    cluster_app: Flask, devcluster: DevCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """POST /models/test while activations replace the same object: re-read and retry, or a clear 409; never 502."""
    client = cluster_app.test_client()
    assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200
    stop = threading.Event()
    activations: list[int] = []

    def activate_repeatedly() -> None:
        other = cluster_app.test_client()
        ids = ("qwen2.5-1.5b-instruct", "tiny-gpt2-test")
        while not stop.is_set():
            activations.append(other.post("/models/activate", json={"id": ids[len(activations) % 2]}).status_code)

    caplog.set_level("INFO", logger="portal.services.activation")
    writer = threading.Thread(target=activate_repeatedly)
    writer.start()
    answers: list[tuple[int, str]] = []
    try:
        # Until the race has happened a few times (a dry run's replace met a newer resourceVersion), bounded.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("dry-run: Conflict" in m for m in caplog.messages) < 3:
            response = client.post("/models/test", json={"id": "llama-3.1-8b-instruct"})
            answers.append((response.status_code, response.json.get("code") or response.json["dryRun"]["action"]))
    finally:
        stop.set()
        writer.join(timeout=30)
    assert sum("dry-run: Conflict" in m for m in caplog.messages) >= 3, (answers, activations)
    assert set(activations) <= {200, 409}, activations
    assert {status for status, _ in answers} <= {200, 409}, answers
    assert all(what == "inferenceservice_conflict" for status, what in answers if status == 409), answers
    assert any(answer == (200, "update") for answer in answers), answers
    # A dry run stores nothing: the object serves one of the activated models, never the dry-run one.
    live = devcluster.get(GROUP_VERSION, "InferenceService", "active-llm", "ai")
    assert live is not None
    assert live["metadata"]["annotations"]["model-manager/model-id"] in ("qwen2.5-1.5b-instruct", "tiny-gpt2-test")
