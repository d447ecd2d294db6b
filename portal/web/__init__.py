"""The HTML portal under /ui: pages, htmx partials, sign-in."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, current_app, g, redirect, request, url_for

from portal import auth
from portal.config import Settings
from portal.errors_http import error_response
from portal.extensions import current_settings

bp = Blueprint("web", __name__, url_prefix="/ui")

# Navigation: (endpoint, label). Entries whose endpoint is not registered yet are hidden.
NAVIGATION = [
    ("web.catalog", "Catalog"),
    ("web.discover", "Discover"),
    ("web.fit_calculator", "Fit calculator"),
    ("web.weights", "Weights"),
    ("web.jobs", "Jobs"),
    ("web.history", "History"),
    ("web.system", "System"),
]
# Banners other areas can add: callables returning (level, text) or None.
BANNER_PROVIDERS: list[Any] = []


def register_web(app: Flask) -> None:
    """Register the portal blueprint, its guards and template helpers."""
    import portal.web as package

    # Each area's views live in one module of this package; importing it registers them on `bp`.
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")):
        importlib.import_module(f"portal.web.{module}")
    app.register_blueprint(bp)

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
        if path.startswith("/ui") and request.headers.get("HX-Request") == "true":
            return error_response(401, "sign in first: this action needs the API token", "unauthorized")
        if request.method == "GET":
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


def query_with(**changes: Any) -> str:
    """The current query string with some arguments replaced (pagination links keep the filters)."""
    args = request.args.to_dict()
    args.update({k: str(v) for k, v in changes.items() if v is not None})
    return urlencode({k: v for k, v in args.items() if v != ""})


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
    for provider in BANNER_PROVIDERS:
        try:
            banner = provider()
        except Exception:  # a banner must never break a page
            banner = None
        if banner:
            banners.append(banner)
    return banners
