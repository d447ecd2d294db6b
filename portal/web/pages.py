"""Portal pages of the foundation: home, system, jobs, history, sign-in."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from portal import auth
from portal.services import history, system
from portal.services import jobs as job_service
from portal.web import BANNER_PROVIDERS, bp

PAGE_SIZE = 25


def _page() -> int:
    try:
        return max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        return 1


@bp.get("/")
def index() -> str:
    """Home: health at a glance and recent activity."""
    recent_jobs, _ = job_service.list_jobs(limit=5)
    events, _ = history.query_events(limit=5)
    return render_template("home.html", health=system.health(), jobs=recent_jobs, events=events)


@bp.get("/system", endpoint="system")
def system_page() -> str:
    """System information and health in human form."""
    info = system.system_info()
    return render_template("system/system.html", info=info, health=info["health"])


@bp.get("/system/health")
def health_partial() -> str:
    """The health panel alone (htmx refresh)."""
    return render_template("system/_health.html", health=system.health())


@bp.get("/jobs")
def jobs() -> str:
    """Recent jobs with filters."""
    status = request.args.get("status") or None
    page = _page()
    try:
        rows, total = job_service.list_jobs(
            limit=PAGE_SIZE,
            offset=(page - 1) * PAGE_SIZE,
            status=status,
            job_type=request.args.get("type") or None,
        )
    except Exception as exc:
        flash(str(exc), "error")
        rows, total = [], 0
    context: dict[str, Any] = {
        "jobs": rows,
        "total": total,
        "page": page,
        "page_size": PAGE_SIZE,
        "status": status,
    }
    if request.headers.get("HX-Request") == "true" and request.args.get("partial") == "table":
        return render_template("jobs/_job_table.html", **context)
    return render_template("jobs/jobs.html", **context)


@bp.get("/jobs/<string:job_id>")
def job_detail(job_id: str) -> str:
    """One job with its logs."""
    job = job_service.get_job(job_id)
    return render_template("jobs/job.html", job=job, logs=job_service.job_logs(job_id))


@bp.get("/history", endpoint="history")
def history_page() -> str:
    """Timeline with filters, newest first, paginated."""
    page = _page()
    event = request.args.get("event") or None
    model_id = request.args.get("modelId") or None
    since_text = request.args.get("since") or None
    error = None
    try:
        since = history.parse_since(since_text)
        rows, total = history.query_events(
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, event=event, model_id=model_id, since=since
        )
    except Exception as exc:
        error, rows, total = str(exc), [], 0
    context = {
        "events": rows,
        "total": total,
        "page": page,
        "page_size": PAGE_SIZE,
        "event": event,
        "model_id": model_id,
        "since": since_text,
        "error": error,
    }
    if request.headers.get("HX-Request") == "true":
        return render_template("history/_timeline.html", **context)
    return render_template("history/history.html", **context)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response | tuple[str, int] | str:
    """Paste the API token to get a portal session."""
    next_url = request.values.get("next") or url_for("web.index")
    if not next_url.startswith("/") or next_url.startswith("//"):
        next_url = url_for("web.index")
    if request.method == "POST":
        if auth.sign_in(request.form.get("token", "")):
            flash("Signed in.", "success")
            return redirect(next_url)  # type: ignore[return-value]
        return render_template("sign_in.html", error="That token is not right.", next=next_url), 422
    return render_template("sign_in.html", error=None, next=next_url)


@bp.post("/sign-out")
def sign_out() -> Response:
    """End the portal session."""
    auth.sign_out()
    flash("Signed out.", "success")
    return redirect(url_for("web.index"))  # type: ignore[return-value]


REDIS_BANNER_TTL = 5.0


def _redis_banner() -> tuple[str, str] | None:
    """ "Redis is down" on every page, checked at most every few seconds per process."""
    cache = current_app.extensions.setdefault("redis_banner", {"at": -1e9, "state": "ok"})
    now = time.monotonic()
    if now - cache["at"] > REDIS_BANNER_TTL:
        cache["state"], cache["at"] = system.check_redis(), now
    if cache["state"] == "ok":
        return None
    return ("error", "Redis is unavailable: installs and other jobs cannot be queued or run until it is back.")


BANNER_PROVIDERS.append(_redis_banner)
