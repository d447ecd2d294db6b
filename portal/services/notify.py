"""Notifications: Slack and generic webhooks, delivered by RQ jobs with retries; the volume alert.

Channels come from the environment: `SLACK_WEBHOOK_URL` (Slack incoming-webhook JSON with blocks)
and `NOTIFY_WEBHOOK_URLS` (comma list; body `{event, severity, text, data, occurredAt}`, signed with
HMAC-SHA256 of the raw body in `X-Model-Manager-Signature-256: sha256=<hex>` when
`NOTIFY_WEBHOOK_SECRET` is set). `emit()` queues one delivery job per channel and never raises: a
failing webhook never fails the operation that triggered it. The job tries `NOTIFY_MAX_ATTEMPTS`
times with exponential backoff (`NOTIFY_RETRY_BACKOFF` * 2^n) and records `notification_sent` or
`notification_failed` in history with the channel name. Jobs carry the channel *name*, never its
URL: URLs are secrets and are read from the settings by the worker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from flask import current_app

from portal import __version__
from portal.config import Settings, format_duration
from portal.errors import Unavailable, UpstreamError
from portal.extensions import current_settings, redis_holder
from portal.metrics import NOTIFICATIONS, WEIGHTS_CAPACITY, WEIGHTS_USED
from portal.services import history

log = logging.getLogger(__name__)

DELIVER_FUNC = "jobs.notify.deliver"
SIGNATURE_HEADER = "X-Model-Manager-Signature-256"
EVENT_HEADER = "X-Model-Manager-Event"
POST_TIMEOUT = 10.0
ALERT_KEY = "model-manager:notify:storage-alert"
READY_WATCH_KEY = "model-manager:notify:ready-watch"

# event → (severity, title shown in Slack)
EVENTS: dict[str, tuple[str, str]] = {
    "weights_installed": ("info", "Weights installed"),
    "weights_install_failed": ("error", "Weights install failed"),
    "model_activated": ("info", "Model activated"),
    "model_rolled_back": ("warning", "Model rolled back"),
    "model_activation_failed": ("error", "Activation failed"),
    "model_not_ready": ("error", "Model not Ready"),
    "catalog_pr_opened": ("info", "Catalog pull request opened"),
    "catalog_pr_merged": ("info", "Catalog pull request merged"),
    "storage_alert": ("warning", "Weights volume filling up"),
    "storage_resolved": ("info", "Weights volume usage back to normal"),
    "test": ("info", "Test notification"),
}


class DeliveryError(Exception):
    """One delivery attempt failed; the message never contains the URL."""


@dataclass(frozen=True)
class Channel:
    """A configured destination: `slack` or `webhook-<n>`."""

    name: str
    kind: str
    url: str = field(repr=False)


def channels(settings: Settings) -> list[Channel]:
    """Every configured channel, in a stable order."""
    found = [Channel("slack", "slack", settings.slack_webhook_url)] if settings.slack_webhook_url else []
    found += [Channel(f"webhook-{n}", "webhook", url) for n, url in enumerate(settings.notify_webhook_urls, 1)]
    return found


def channel_summary(settings: Settings) -> list[dict[str, Any]]:
    """Channels for display: names and whether they are configured, never a URL."""
    summary = [{"name": "slack", "kind": "slack", "configured": bool(settings.slack_webhook_url)}]
    if settings.notify_webhook_urls:
        summary += [
            {"name": c.name, "kind": c.kind, "configured": True} for c in channels(settings) if c.kind != "slack"
        ]
    else:
        summary.append({"name": "webhooks", "kind": "webhook", "configured": False})
    return summary


def notifications_info(settings: Settings) -> dict[str, Any]:
    """The `notifications` section of /system/info ("configured", never the URLs)."""
    return {
        "notifications": {
            "slackWebhookConfigured": bool(settings.slack_webhook_url),
            "webhooksConfigured": len(settings.notify_webhook_urls),
            "webhookSigning": bool(settings.notify_webhook_secret),
            "channels": channel_summary(settings),
            "pvcAlertThreshold": settings.pvc_alert_threshold,
            "maxAttempts": settings.notify_max_attempts,
        }
    }


def make_message(event: str, text: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The generic notification body `{event, severity, text, data, occurredAt}`."""
    severity = EVENTS.get(event, ("info", event))[0]
    return {
        "event": event,
        "severity": severity,
        "text": text,
        "data": dict(data or {}),
        "occurredAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def emit(event: str, text: str, data: Mapping[str, Any] | None = None) -> int:
    """Queue one delivery job per configured channel; returns how many. Never raises."""
    try:
        found = channels(current_settings())
        if not found:
            return 0
        message = make_message(event, text, data)
        settings = current_settings()
        timeout = int(settings.notify_max_attempts * (POST_TIMEOUT + 1) + _total_backoff(settings) + 30)
        queue = redis_holder(current_app).queue
        for channel in found:
            queue.enqueue(
                DELIVER_FUNC,
                channel.name,
                message,
                job_timeout=timeout,
                result_ttl=600,
                failure_ttl=86400,
                description=f"notify {event} to {channel.name}",
            )
        return len(found)
    except Exception:  # a notification must never fail the operation it reports
        log.warning("notification %s could not be queued", event, exc_info=True)
        return 0


def _total_backoff(settings: Settings) -> float:
    return float(sum(settings.notify_retry_backoff * 2**n for n in range(settings.notify_max_attempts - 1)))


def _payload(channel: Channel, message: Mapping[str, Any]) -> bytes:
    if channel.kind != "slack":
        return json.dumps(message, sort_keys=True).encode()
    title = EVENTS.get(str(message["event"]), ("info", str(message["event"])))[1]
    context = f"`{message['event']}` · {message['severity']} · {message['occurredAt']}"
    slack = {
        "text": f"{title}: {message['text']}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title}},
            {"type": "section", "text": {"type": "mrkdwn", "text": str(message["text"])}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }
    return json.dumps(slack).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header value: `sha256=` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(channel: Channel, message: Mapping[str, Any], settings: Settings) -> None:
    """One delivery attempt; DeliveryError (without the URL) when it fails."""
    body = _payload(channel, message)
    headers = {"Content-Type": "application/json", "User-Agent": f"model-manager/{__version__}"}
    if channel.kind == "webhook":
        headers[EVENT_HEADER] = str(message["event"])
        if settings.notify_webhook_secret:
            headers[SIGNATURE_HEADER] = sign(body, settings.notify_webhook_secret)
    try:
        response = requests.post(channel.url, data=body, headers=headers, timeout=POST_TIMEOUT, allow_redirects=False)
    except requests.Timeout:
        raise DeliveryError(f"no answer within {POST_TIMEOUT:.0f} s") from None
    except requests.RequestException as exc:
        # The exception text names the URL (a secret): keep only its kind.
        raise DeliveryError(f"could not connect ({type(exc).__name__})") from None
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code}")


def _record(outcome: str, channel: Channel, message: Mapping[str, Any], attempts: int, error: str | None) -> None:
    metadata: dict[str, Any] = {"channel": channel.name, "event": message["event"], "attempts": attempts}
    if error:
        metadata["error"] = error
    NOTIFICATIONS.labels(channel.name, "sent" if outcome == "notification_sent" else "failed").inc()
    history.record(outcome, actor="system", metadata=metadata)


def deliver(channel_name: str, message: Mapping[str, Any]) -> bool:
    """The delivery job: try with exponential backoff, then record the outcome. True when delivered."""
    settings = current_settings()
    channel = next((c for c in channels(settings) if c.name == channel_name), None)
    if channel is None:
        log.warning("notification channel %s is no longer configured; dropping %s", channel_name, message["event"])
        return False
    error = ""
    for attempt in range(1, settings.notify_max_attempts + 1):
        try:
            post(channel, message, settings)
        except DeliveryError as exc:
            error = str(exc)
            log.warning(
                "notification %s to %s failed (attempt %d/%d): %s",
                message["event"],
                channel.name,
                attempt,
                settings.notify_max_attempts,
                error,
            )
            if attempt < settings.notify_max_attempts:
                time.sleep(settings.notify_retry_backoff * 2 ** (attempt - 1))
            continue
        _record("notification_sent", channel, message, attempt, None)
        return True
    _record("notification_failed", channel, message, settings.notify_max_attempts, error)
    return False


def send_test(text: str | None, *, actor: str) -> dict[str, Any]:
    """Send a test message to every channel now (503 when none is configured, 502 when one fails)."""
    settings = current_settings()
    found = channels(settings)
    if not found:
        raise Unavailable(
            "no notification channel is configured: set SLACK_WEBHOOK_URL or NOTIFY_WEBHOOK_URLS",
            code="notifications_not_configured",
        )
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    message = make_message(
        "test", (text or "").strip() or f"Model Manager test notification sent by {actor} at {stamp}"
    )
    results = []
    for channel in found:
        try:
            post(channel, message, settings)
        except DeliveryError as exc:
            _record("notification_failed", channel, message, 1, str(exc))
            results.append({"channel": channel.name, "status": "failed", "error": str(exc)})
        else:
            _record("notification_sent", channel, message, 1, None)
            results.append({"channel": channel.name, "status": "sent"})
    history.record("notification_test", actor=actor, metadata={"channels": results})
    failed = [r["channel"] for r in results if r["status"] == "failed"]
    if failed:
        raise UpstreamError(
            f"failed to deliver the test notification to {', '.join(failed)}",
            code="notification_failed",
            details={"channels": results},
        )
    return {"status": "sent", "channels": results}


# --- events of the other areas: one call each -------------------------------------------------------


def install_finished(job: Any) -> None:
    """An install job completed or failed: tell the team, then re-evaluate the volume alert."""
    result = job.result or {}
    if job.status == "completed":
        size = int(result.get("sizeBytes") or 0)
        emit(
            "weights_installed",
            f"Weights for {job.model_id} installed at {result.get('name')} ({size / 1e9:.2f} GB, "
            f"revision {str(result.get('revision') or '')[:12]}) by {job.actor}",
            {
                "jobId": job.id,
                "hfModelId": job.model_id,
                **{k: result.get(k) for k in ("name", "revision", "sizeBytes")},
            },
        )
    else:
        emit(
            "weights_install_failed",
            f"Install of {job.model_id} failed: {job.error}",
            {"jobId": job.id, "hfModelId": job.model_id, "target": job.target, "error": job.error},
        )
    volume_changed()


def volume_changed() -> None:
    """Weights were installed or deleted: re-evaluate the alert (never raises)."""
    try:
        check_volume()
    except Exception:
        log.warning("weights volume check failed", exc_info=True)


def activation_applied(model_id: str, metadata: Mapping[str, Any], *, actor: str) -> None:
    """A model was activated (or rolled back to): notify and watch that it becomes Ready in time."""
    rollback_from = metadata.get("rollbackFrom")
    if "rollbackFrom" in metadata:
        emit(
            "model_rolled_back",
            f"Rolled back to {model_id} (from {rollback_from or 'nothing'}) by {actor}",
            {"modelId": model_id, "from": rollback_from, "actor": actor},
        )
    else:
        emit(
            "model_activated",
            f"{model_id} activated by {actor} ({metadata.get('action')}, previous: {metadata.get('previousModelId')})",
            {"modelId": model_id, "actor": actor, "previousModelId": metadata.get("previousModelId")},
        )
    try:
        deadline = time.time() + current_settings().activation_ready_timeout
        watch = json.dumps({"modelId": model_id, "deadline": deadline})
        redis_holder(current_app).connection.set(READY_WATCH_KEY, watch)
    except Exception:
        log.warning("cannot arm the readiness watch for %s", model_id, exc_info=True)


def activation_failed(model_id: str, error: str, *, actor: str) -> None:
    """An activation was refused or failed."""
    emit("model_activation_failed", f"Activation of {model_id} by {actor} failed: {error}", {"modelId": model_id})


def check_readiness() -> str | None:
    """Periodic: notify once when the watched model is not Ready by its deadline (with the reason)."""
    from portal.services.activation import active_status

    connection = redis_holder(current_app).connection
    raw = connection.get(READY_WATCH_KEY)
    if not raw:
        return None
    watch = json.loads(raw)
    status = active_status()
    if status.get("modelId") != watch["modelId"] or status.get("phase") == "ready":
        connection.delete(READY_WATCH_KEY)
        return "ready" if status.get("phase") == "ready" else "replaced"
    if time.time() < float(watch["deadline"]):
        return "waiting"
    if not connection.delete(READY_WATCH_KEY):
        return None  # another worker reported it
    timeout = format_duration(current_settings().activation_ready_timeout)
    reason = status.get("reason") or "no reason given"
    emit(
        "model_not_ready",
        f"{watch['modelId']} is not Ready after {timeout}: {reason}: {status.get('message') or ''}".rstrip(": "),
        {"modelId": watch["modelId"], "reason": status.get("reason"), "message": status.get("message")},
    )
    return "not_ready"


def check_volume() -> dict[str, Any] | None:
    """Update the volume gauges; notify once when usage crosses PVC_ALERT_THRESHOLD (up, then down)."""
    from portal.services import weights

    usage = weights.usage()
    total = int(usage["totalBytes"] or 0)
    if not total:
        return None
    used = total - int(usage["availableBytes"] or 0)
    WEIGHTS_USED.set(used)
    WEIGHTS_CAPACITY.set(total)
    state = "above" if usage["alert"] else "below"
    previous = redis_holder(current_app).connection.getset(ALERT_KEY, state)
    previous_state = previous.decode() if isinstance(previous, bytes) else previous
    if previous_state == state or (previous_state is None and state == "below"):
        return {"state": state, "changed": False}
    percent = usage["usedPercent"]
    threshold = current_settings().pvc_alert_threshold * 100
    data = {"usedPercent": percent, "thresholdPercent": threshold, "usedBytes": used, "totalBytes": total}
    if state == "above":
        history.record("alert_triggered", actor="system", metadata={"kind": "storage", **data})
        emit("storage_alert", f"Weights volume usage {percent}% exceeds the {threshold:g}% threshold", data)
    else:
        history.record("alert_resolved", actor="system", metadata={"kind": "storage", **data})
        emit("storage_resolved", f"Weights volume usage {percent}% is back below the {threshold:g}% threshold", data)
    return {"state": state, "changed": True}
