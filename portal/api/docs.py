"""OpenAPI document (`/openapi`, `/openapi.json`) and Swagger UI (`/docs`) from vendored assets."""

from __future__ import annotations

import copy
from typing import Any

from flask import Flask, Response, jsonify, render_template

from portal.auth import MUTATING_METHODS
from portal.extensions import api, csrf


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document, with the bearer requirement on every mutating operation."""
    spec = copy.deepcopy(api.spec.to_dict())
    for operations in spec.get("paths", {}).values():
        for method, operation in operations.items():
            if method.upper() in MUTATING_METHODS and isinstance(operation, dict):
                operation.setdefault("security", [{"bearerAuth": []}])
                operation.setdefault("responses", {}).setdefault(
                    "401",
                    {"description": "The API token is missing or wrong (when MODEL_MANAGER_API_TOKEN is set)"},
                )
    return dict(spec)


def register(app: Flask) -> None:
    """Add the documentation routes."""

    @app.get("/openapi")
    @app.get("/openapi.json")
    def openapi() -> Response:
        """The OpenAPI 3 document as JSON."""
        return jsonify(openapi_document())

    @app.get("/docs")
    def docs() -> str:
        """Swagger UI, served from static/vendor (no CDN: clusters are often air-gapped)."""
        return render_template("docs.html")

    csrf.exempt(openapi)
