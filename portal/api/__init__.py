"""The JSON API: flask-smorest blueprints at the paths of the service we replace."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from flask import Flask, Response, request

from portal import auth
from portal.errors_http import error_response
from portal.extensions import api, csrf

# Paths that are not the JSON API (the portal has its own CSRF + session rules).
NON_API_PREFIXES = ("/ui", "/static", "/rq")


def api_modules() -> list[ModuleType]:
    """Every module of this package that defines a smorest `blp`, in name order (system first)."""
    import portal.api as package

    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))
    names.sort(key=lambda name: name != "system")
    modules = [importlib.import_module(f"portal.api.{name}") for name in names]
    return [module for module in modules if hasattr(module, "blp")]


def register_api(app: Flask) -> None:
    """Register every API blueprint (each area is one module with a `blp`), the docs routes and the token guard."""
    from portal.api import docs
    from portal.api.converters import register_converters

    register_converters(app, api)
    for module in api_modules():
        csrf.exempt(module.blp)
        api.register_blueprint(module.blp)
    docs.register(app)

    @app.before_request
    def _require_token() -> Response | None:
        if request.path.startswith(NON_API_PREFIXES):
            return None
        if auth.api_request_allowed():
            return None
        return error_response(
            401,
            "this operation needs the API token: send Authorization: Bearer <token>",
            "unauthorized",
            {},
            {"WWW-Authenticate": 'Bearer realm="model-manager"'},
        )
