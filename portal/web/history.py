"""History page: the timeline of everything the portal did, with filters and pagination."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request

from portal.errors import PortalError
from portal.services import history
from portal.web import bp, page_number, page_url
from portal.web.htmx import partial_response

PAGE_SIZE = 25


def _timeline_context() -> dict[str, Any]:
    page = page_number()
    event = request.args.get("event") or None
    model_id = request.args.get("modelId") or None
    since_text = request.args.get("since") or None
    error = None
    try:
        since = history.parse_since(since_text)
        rows, total = history.query_events(
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, event=event, model_id=model_id, since=since
        )
    except PortalError as exc:
        error, rows, total = exc.message, [], 0
    return {
        "events": rows,
        "total": total,
        "page": page,
        "page_size": PAGE_SIZE,
        "page_endpoint": "web.history",
        "event": event,
        "model_id": model_id,
        "since": since_text,
        "error": error,
    }


@bp.get("/history", endpoint="history")
def history_page() -> str:
    """Timeline with filters, newest first, paginated (always the whole page, also for htmx history restores)."""
    return render_template("history/history.html", **_timeline_context())


@bp.get("/history/timeline")
def history_timeline() -> Response:
    """The timeline alone for the filters; pushes the page's own URL so Back and reload get whole pages."""
    html = render_template("history/_timeline.html", **_timeline_context())
    return partial_response(html, push_url=page_url("web.history"))
