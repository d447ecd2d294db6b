"""Portal views for catalog pull requests (editor → job card → PR link, pending list) and notification tests."""

from __future__ import annotations

from typing import Any

from flask import render_template

from portal.auth import current_actor
from portal.errors import PortalError
from portal.extensions import current_settings
from portal.services import catalog_pr, notify
from portal.web import bp


@bp.app_context_processor
def _catalog_pr_globals() -> dict[str, Any]:
    settings = current_settings()
    return {"catalog_pr_repo": settings.catalog_repo if catalog_pr.enabled(settings) else None}


@bp.post("/catalog/pr")
def catalog_open_pr() -> tuple[str, int]:
    """Queue a pull request for the entry in the editor; answers the job card (which polls itself)."""
    from portal.web.discover import _editor_entry

    try:
        job = catalog_pr.request_pull_request({"entry": _editor_entry()}, actor=current_actor())
    except PortalError as exc:
        return render_template("discover/_save_result.html", error=exc.message, path=None, job=None), 422
    return render_template("discover/_save_result.html", error=None, path=None, job=job), 202


@bp.get("/catalog/pending")
def catalog_pending() -> str:
    """The pending changes (open or merged-but-not-synced pull requests) partial."""
    return render_template("catalog/_pending_changes.html", pending=catalog_pr.list_pull_requests(pending_only=True))


@bp.get("/system/notifications")
def notification_channels() -> str:
    """The notification channels partial (configured or not, never a URL)."""
    return render_template(
        "system/_notifications.html", notifications=notify.notifications_info(current_settings())["notifications"]
    )


@bp.post("/system/notifications/test")
def notification_test() -> str:
    """Send a test message to every channel; the outcome replaces the result line."""
    try:
        result: dict[str, Any] | None = notify.send_test(None, actor=current_actor())
        error = None
    except PortalError as exc:
        result, error = exc.details or None, exc.message
    return render_template("system/_notification_test.html", result=result, error=error)
