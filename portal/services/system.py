"""System: health checks and the /system/info report."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, current_app
from sqlalchemy import text

from portal import __version__
from portal.config import Settings, format_duration, redact_url
from portal.extensions import current_settings, db, redis_holder
from portal.services import history
from portal.services import jobs as job_service

CHECK_TIMEOUT = 2.0


def check_database() -> str:
    """`ok` or the reason the database does not answer."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        return "ok"
    except Exception as exc:  # any driver error means "down" for a health check
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def check_redis() -> str:
    """`ok` or the reason Redis does not answer (its own 2 s socket timeouts)."""
    url = current_settings().redis_url
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT, socket_timeout=CHECK_TIMEOUT)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except redis.RedisError as exc:
        return f"error: {type(exc).__name__}"


def _bounded(check: Callable[[], str]) -> str:
    """Run a check with a hard time limit so /healthz always answers quickly."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def run() -> str:
        with app.app_context():
            return check()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(run)
        try:
            return future.result(timeout=CHECK_TIMEOUT + 0.5)
        except concurrent.futures.TimeoutError:
            return "error: timeout"


def health() -> dict[str, Any]:
    """`{"status": "ok"|"degraded", "checks": {"database": …, "redis": …}}`."""
    checks = {"database": check_database(), "redis": _bounded(check_redis)}
    failed = [name for name, value in checks.items() if value != "ok"]
    report: dict[str, Any] = {"status": "ok" if not failed else "degraded", "checks": checks}
    if failed:
        report["failed"] = failed
        report["message"] = "unavailable: " + ", ".join(failed)
    return report


def queue_depth() -> int | None:
    """Jobs waiting in RQ, or None when Redis is down."""
    try:
        return int(redis_holder(current_app).queue.count)
    except redis.RedisError:
        return None


InfoSection = Callable[[Settings], dict[str, Any]]


def register_info_sections(app: Flask, sections: list[InfoSection]) -> None:
    """Set the functions whose dicts other areas (catalog, cluster, GPU profiles) add to /system/info."""
    app.extensions["info_sections"] = list(sections)


def system_info() -> dict[str, Any]:
    """Reference §9.3 fields that exist here; never a secret."""
    settings = current_settings()
    info: dict[str, Any] = {
        "version": __version__,
        "catalog": {"root": str(settings.model_catalog_root), "modelsDir": str(settings.catalog_models_dir)},
        "weights": {
            "path": str(settings.weights_storage_path),
            "pvcName": settings.weights_pvc_name,
            "inferenceModelRoot": settings.inference_model_root,
        },
        "state": {"path": str(settings.state_path), "enabled": True},
        "auth": {"enabled": settings.auth_enabled, "proxyHeader": settings.auth_proxy_user_header or None},
        "persistence": {
            "driver": settings.datastore_driver,
            "dsn": redact_url(settings.database_uri),
            "pvcName": settings.database_pvc_name,
            "stateDir": str(settings.state_path),
        },
        "cache": {
            "catalogTTL": format_duration(settings.catalog_refresh_interval),
            "huggingfaceTTL": format_duration(settings.huggingface_cache_ttl),
            "vllmTTL": format_duration(settings.vllm_cache_ttl),
        },
        "gpu": {
            "profilesPath": str(settings.gpu_profile_path or "bundled"),
        },
        "huggingface": {
            "endpoint": settings.hf_endpoint,
            "tokenConfigured": bool(settings.huggingface_api_token),
        },
        "github": {
            "apiUrl": settings.github_api_url,
            "tokenConfigured": bool(settings.github_token),
            "catalogRepo": settings.catalog_repo or None,
        },
        "redis": {
            "url": redact_url(settings.redis_url),
            "queue": settings.queue_name,
            "queueDepth": queue_depth(),
        },
        "health": health(),
    }
    for section in current_app.extensions.get("info_sections", []):
        info.update(section(settings))
    try:
        recent, _ = job_service.list_jobs(limit=10)
        info["recentJobs"] = [job.to_dict() for job in recent]
        events, _ = history.query_events(limit=5)
        info["recentHistory"] = [event.to_dict() for event in events]
    except Exception:  # a down database must not break the info page
        db.session.rollback()
        info["recentJobs"], info["recentHistory"] = [], []
    return info
