"""An install run by a real worker process notifies the team; a dead webhook never fails the install."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from portal.extensions import db
from portal.models import HistoryEvent, Job
from tests.support.fixtures_weights import isolated_queue
from tests.support.hub import HubServer
from tests.support.webhook import WebhookReceiver


def test_install_is_notified_once_and_a_down_receiver_is_retried_then_recorded(
    make_app: Callable[..., Flask], hub: HubServer, small_repo: Any, worker_process: Any, webhook: WebhookReceiver
) -> None:
    down = WebhookReceiver().start()
    down.stop()  # nothing listens on its port any more
    app = make_app(
        HF_ENDPOINT=hub.url,
        NOTIFY_WEBHOOK_URLS=f"{webhook.url}/up,{down.url}/down",
        NOTIFY_MAX_ATTEMPTS="3",
        NOTIFY_RETRY_BACKOFF="10ms",
        **isolated_queue(),
    )
    with app.app_context():
        response = app.test_client().post("/weights/install", json={"hfModelId": "acme/tiny-llm"})
        assert response.status_code == 202, response.json
        out = worker_process().wait()  # burst: the install, then the deliveries it queued
        db.session.rollback()
        job = db.session.get(Job, response.json["job"]["id"])
        assert job is not None and job.status == "completed", (job and job.error, out[-3000:])
        events = {row.event: row.meta for row in db.session.query(HistoryEvent)}
    assert webhook.events() == ["weights_installed"]
    message = webhook.received[0].json
    assert "acme/tiny-llm" in message["text"] and message["data"]["jobId"] == job.id
    assert events["notification_sent"]["channel"] == "webhook-1"
    failed = events["notification_failed"]
    assert (failed["channel"], failed["attempts"], failed["event"]) == ("webhook-2", 3, "weights_installed")
    assert "could not connect" in failed["error"] and down.url not in str(failed)


def test_failed_install_is_notified_with_the_reason(
    make_app: Callable[..., Flask], hub: HubServer, small_repo: Any, worker_process: Any, webhook: WebhookReceiver
) -> None:
    hub.corrupt(small_repo.weight_files[0])
    app = make_app(HF_ENDPOINT=hub.url, NOTIFY_WEBHOOK_URLS=f"{webhook.url}/hook", **isolated_queue())
    with app.app_context():
        response = app.test_client().post("/weights/install", json={"hfModelId": "acme/tiny-llm"})
        assert response.status_code == 202, response.json
        out = worker_process().wait()
        db.session.rollback()
        job = db.session.get(Job, response.json["job"]["id"])
        assert job is not None and job.status == "failed", out[-3000:]
    assert webhook.events() == ["weights_install_failed"]
    message = webhook.received[0].json
    assert message["severity"] == "error" and "checksum mismatch" in message["text"]
    assert message["data"]["jobId"] == job.id
