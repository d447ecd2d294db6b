"""Notifications through real RQ jobs to a local webhook receiver (Slack and generic, HMAC-signed)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker

from portal.extensions import db, redis_holder
from portal.models import HistoryEvent
from portal.services import notify
from tests.api.test_runtime_api import wait_for_phase
from tests.support.fixtures_cluster import write_entry_file
from tests.support.webhook import WebhookReceiver


def run_jobs(app: Flask) -> None:
    """Run every queued RQ job (deliveries included) in this process."""
    holder = redis_holder(app)
    SimpleWorker([holder.queue], connection=holder.connection).work(burst=True)


def notify_env(hook: WebhookReceiver, **extra: str) -> dict[str, str]:
    """Settings for one Slack channel and one signed generic webhook at the receiver."""
    return {
        "SLACK_WEBHOOK_URL": f"{hook.url}/slack/T000/B000/secretpart",
        "NOTIFY_WEBHOOK_URLS": f"{hook.url}/hook",
        "NOTIFY_WEBHOOK_SECRET": "hook-secret",
        "NOTIFY_RETRY_BACKOFF": "10ms",
        **extra,
    }


def recorded(event: str) -> list[dict[str, Any]]:
    """History records of one kind, oldest first (fresh read)."""
    db.session.rollback()
    rows = db.session.query(HistoryEvent).filter(HistoryEvent.event == event).order_by(HistoryEvent.id)
    return [dict(row.meta or {}) for row in rows]


@pytest.fixture
def notify_app(make_app: Callable[..., Flask], webhook: WebhookReceiver) -> Iterator[Flask]:
    """An app with both channels pointing at the receiver."""
    app = make_app(**notify_env(webhook))
    with app.app_context():
        yield app


def test_emit_delivers_once_per_channel_signed_and_recorded(
    notify_app: Flask, webhook: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert notify.emit("catalog_pr_opened", "PR #3 for qwen", {"number": 3}) == 2
    run_jobs(notify_app)
    got = webhook.wait_for(2)
    assert len(got) == 2
    generic = next(d for d in got if d.path == "/hook")
    assert generic.signature_ok is True and generic.headers["X-Model-Manager-Event"] == "catalog_pr_opened"
    body = generic.json
    assert body["event"] == "catalog_pr_opened" and body["severity"] == "info" and body["text"] == "PR #3 for qwen"
    assert body["data"] == {"number": 3} and body["occurredAt"].endswith("Z")
    slack = next(d for d in got if d.path.startswith("/slack")).json
    assert slack["text"] == "Catalog pull request opened: PR #3 for qwen"
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "context"]
    sent = recorded("notification_sent")
    assert sorted(m["channel"] for m in sent) == ["slack", "webhook-1"]
    assert all("http" not in str(m) for m in sent)  # the channel, never the URL
    assert "secretpart" not in caplog.text and "/hook" not in caplog.text


def test_a_wrong_secret_does_not_verify(make_app: Callable[..., Flask], webhook: WebhookReceiver) -> None:
    app = make_app(**notify_env(webhook, NOTIFY_WEBHOOK_SECRET="other", SLACK_WEBHOOK_URL=""))
    with app.app_context():
        notify.emit("test", "hello")
        run_jobs(app)
    assert [d.signature_ok for d in webhook.wait_for(1)] == [False]


def test_receiver_failing_is_retried_then_recorded_failed(notify_app: Flask, webhook: WebhookReceiver) -> None:
    webhook.fail_with(500)
    notify.emit("weights_install_failed", "Install of acme/x failed")
    run_jobs(notify_app)
    assert len(webhook.received) == 2 * 5  # NOTIFY_MAX_ATTEMPTS=5 per channel
    failed = recorded("notification_failed")
    assert sorted((m["channel"], m["attempts"], m["error"]) for m in failed) == [
        ("slack", 5, "HTTP 500"),
        ("webhook-1", 5, "HTTP 500"),
    ]
    assert recorded("notification_sent") == []


def test_test_endpoint(make_app: Callable[..., Flask], webhook: WebhookReceiver) -> None:
    nothing = make_app().test_client().post("/notifications/test", json={})
    assert nothing.status_code == 503 and "SLACK_WEBHOOK_URL" in nothing.json["error"]

    app = make_app(**notify_env(webhook))
    client = app.test_client()
    sent = client.post("/notifications/test", json={"message": "ping"})
    assert sent.status_code == 200 and sent.json["status"] == "sent"
    assert [d.json.get("text") for d in webhook.wait_for(2)] == ["Test notification: ping", "ping"]

    webhook.fail_with(502)
    failed = client.post("/notifications/test", json={})
    assert failed.status_code == 502 and failed.json["code"] == "notification_failed"
    text = failed.get_data(as_text=True) + client.get("/system/info").get_data(as_text=True)
    text += client.get("/ui/system").get_data(as_text=True)
    assert "secretpart" not in text and webhook.url not in text
    info = client.get("/system/info").json["notifications"]
    assert info["slackWebhookConfigured"] is True and info["webhooksConfigured"] == 1


def test_volume_threshold_crossing_notifies_once_up_and_once_down(
    make_app: Callable[..., Flask], webhook: WebhookReceiver, tmp_path: Path
) -> None:
    app = make_app(**notify_env(webhook, SLACK_WEBHOOK_URL="", WEIGHTS_VOLUME_LIMIT_BYTES="10000"))
    with app.app_context():
        weights = app.config["SETTINGS"].weights_storage_path
        assert notify.check_volume() == {"state": "below", "changed": False}
        (weights / "acme" / "big").mkdir(parents=True)
        (weights / "acme" / "big" / "model.safetensors").write_bytes(b"\0" * 9000)
        assert notify.check_volume() == {"state": "above", "changed": True}
        assert notify.check_volume() == {"state": "above", "changed": False}
        metrics = app.test_client().get("/metrics").get_data(as_text=True)
        assert "model_manager_weights_used_bytes 9000.0" in metrics
        app.test_client().delete("/weights", json={"name": "acme/big"})  # the delete re-evaluates by itself
        assert notify.check_volume() == {"state": "below", "changed": False}
        run_jobs(app)
        assert webhook.events() == ["storage_alert", "storage_resolved"]
        assert "90.0%" in webhook.received[0].json["text"]
        assert len(recorded("alert_triggered")) == len(recorded("alert_resolved")) == 1
        metrics = app.test_client().get("/metrics").get_data(as_text=True)
        assert "model_manager_weights_capacity_bytes 10000.0" in metrics
        assert "model_manager_weights_used_bytes 0.0" in metrics
        assert 'model_manager_notifications_total{channel="webhook-1",status="sent"}' in metrics


def test_activation_rollback_and_not_ready_are_notified(
    make_app: Callable[..., Flask], webhook: WebhookReceiver, devcluster: Any, cluster_catalog: Path
) -> None:
    write_entry_file(
        cluster_catalog,
        {
            "id": "too-big",
            "hfModelId": "sshleifer/tiny-gpt2",
            "nodeSelector": {"kubernetes.io/hostname": "venus"},
            "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "resources": {"limits": {"amd.com/gpu": "4"}, "requests": {"amd.com/gpu": "4"}},
        },
    )
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        KUBE_TIMEOUT="3",
        ACTIVATION_READY_TIMEOUT="0s",
        **notify_env(webhook, SLACK_WEBHOOK_URL=""),
    )
    with app.app_context():
        client = app.test_client()
        assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200
        assert client.post("/models/activate", json={"id": "too-big"}).status_code == 200
        wait_for_phase(client, "failed")
        assert notify.check_readiness() == "not_ready"
        assert notify.check_readiness() is None  # reported once
        assert client.post("/models/rollback").status_code == 200
        assert client.post("/models/activate", json={"id": "no-such-model"}).status_code == 404  # nothing applied
        devcluster.fail_next(500, method="PUT", message="etcd is unhappy")
        assert client.post("/models/activate", json={"id": "too-big"}).status_code == 502
        run_jobs(app)
    events = webhook.events()
    assert events == [
        "model_activated",
        "model_activated",
        "model_not_ready",
        "model_rolled_back",
        "model_activation_failed",
    ]
    assert "too-big" in webhook.received[4].json["text"] and webhook.received[4].json["severity"] == "error"
    not_ready = webhook.received[2].json
    assert not_ready["severity"] == "error" and "Unschedulable" in not_ready["text"] and "too-big" in not_ready["text"]
    assert "Rolled back to tiny-gpt2-test (from too-big)" in webhook.received[3].json["text"]


def test_periodic_tasks_are_enqueued_once_per_interval(notify_app: Flask) -> None:
    from portal.services import periodic

    first = periodic.run_due()
    assert {"weights-volume-check", "activation-readiness-check", "catalog-pr-poll"} <= set(first)
    assert periodic.run_due() == []
    run_jobs(notify_app)
    queue = redis_holder(notify_app).queue
    assert queue.failed_job_registry.count == 0 and queue.finished_job_registry.count >= 3
