"""Portal pages: home, system and health, sign-in and sign-out; the "Redis is down" banner."""

from __future__ import annotations

import time

from flask import Response, current_app, flash, redirect, render_template, request, url_for

from portal import auth
from portal.services import history, system
from portal.services import jobs as job_service
from portal.web import bp


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


def redis_banner() -> tuple[str, str] | None:
    """ "Redis is down" on every page, checked at most every few seconds per process."""
    cache = current_app.extensions.setdefault("redis_banner", {"at": -1e9, "state": "ok"})
    now = time.monotonic()
    if now - cache["at"] > REDIS_BANNER_TTL:
        cache["state"], cache["at"] = system.check_redis(), now
    if cache["state"] == "ok":
        return None
    return ("error", "Redis is unavailable: installs and other jobs cannot be queued or run until it is back.")
