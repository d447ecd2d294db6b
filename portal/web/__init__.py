"""The HTML portal under /ui: pages, htmx partials, sign-in."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, redirect, request, url_for

from portal import auth
from portal.config import Settings
from portal.errors_http import error_response
from portal.extensions import current_settings
from portal.web.htmx import is_htmx

bp = Blueprint("web", __name__, url_prefix="/ui")

# Navigation: (endpoint, label). Entries whose endpoint is not registered yet are hidden.
NAVIGATION = [
    ("web.catalog", "Catalog"),
    ("web.deployments", "Deployments"),
    ("web.discover", "Discover"),
    ("web.fit_calculator", "Fit calculator"),
    ("web.weights", "Weights"),
    ("web.jobs", "Jobs"),
    ("web.history", "History"),
    ("web.system", "System"),
]
# A banner provider returns (level, text) for a notice on every page, or None.
BannerProvider = Callable[[], tuple[str, str] | None]


def register_web(app: Flask, *, banners: Iterable[BannerProvider]) -> None:
    """Register the portal blueprint (views of every area), its guards, filters, template helpers and banners."""
    from portal.web import (  # noqa: F401  (views on `bp`)
        catalog,
        catalog_changes,
        deployments,
        discover,
        filters,
        fit,
        history,
        jobs,
        pages,
        weights,
    )

    app.register_blueprint(bp)
    filters.register(app)
    app.extensions["portal_banners"] = list(banners)

    @app.before_request
    def _guard_portal_and_rq() -> Response | None:
        path = request.path
        needs_user = path.startswith("/rq") or (
            path.startswith("/ui")
            and request.method in auth.MUTATING_METHODS
            and request.endpoint not in ("web.sign_in",)
        )
        if not needs_user or auth.portal_user_allowed():
            return None
        if request.method == "GET" and not is_htmx():
            return redirect(url_for("web.sign_in", next=path))  # type: ignore[return-value]
        return error_response(401, "sign in first: this action needs the API token", "unauthorized")

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        settings: Settings = current_settings()
        nav = [(endpoint, label) for endpoint, label in NAVIGATION if endpoint in current_app.view_functions]
        return {
            "nav_items": nav,
            "settings": settings,
            "auth_enabled": settings.auth_enabled,
            "actor": auth.current_actor(),
            "banners": collect_banners(),
            "request_id": g.get("request_id", ""),
            "query_with": query_with,
        }


def query_with(**changes: Any) -> dict[str, str]:
    """The current query arguments with some replaced (None removes one), for `url_for` in links that keep filters."""
    args = request.args.to_dict()
    args.update({k: "" if v is None else str(v) for k, v in changes.items()})
    return {k: v for k, v in args.items() if v != ""}


def page_url(endpoint: str) -> str:
    """The URL of a page with the current query arguments (the address a partial's page shows for its filters)."""
    args: dict[str, Any] = query_with()
    return url_for(endpoint, **args)


def page_number() -> int:
    """The `page` query argument, clamped to 1…100000 (1 when it is not a number)."""
    try:
        return max(1, min(int(request.args.get("page", "1")), 100_000))
    except ValueError:
        return 1


def collect_banners() -> list[tuple[str, str]]:
    """Banners for every page: demo cluster, auth disabled, dependency down."""
    settings: Settings = current_settings()
    banners: list[tuple[str, str]] = []
    if not settings.auth_enabled:
        banners.append(
            (
                "warning",
                "Authentication is disabled: anyone who can reach this portal can change "
                "the cluster. Set MODEL_MANAGER_API_TOKEN to require a token.",
            )
        )
    for provider in current_app.extensions.get("portal_banners", []):
        try:
            banner = provider()
        except Exception:  # a banner must never break a page
            banner = None
        if banner:
            banners.append(banner)
    return banners
