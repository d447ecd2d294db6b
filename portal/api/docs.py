"""OpenAPI document (`/openapi`, `/openapi.json`) and Swagger UI (`/docs`) from vendored assets."""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import Flask, Response, jsonify, render_template

from portal.auth import MUTATING_METHODS
from portal.extensions import api, csrf

ERROR_REF = {"$ref": "#/components/schemas/Error"}
# Every error any operation can answer, documented once here so that new endpoints get them too.
BAD_INPUT = "Invalid input: `details.fields` names each bad field (also malformed JSON)"
NOT_FOUND = "Nothing exists at this path"
TOO_LARGE = "The body is larger than the server accepts (MAX_CONTENT_LENGTH)"
UNAUTHORIZED = "The API token is missing or wrong (when MODEL_MANAGER_API_TOKEN is set)"
# webargs' 422 never reaches a client: the error handler answers 400 (see errors_http).
_SMOREST_VALIDATION = {"$ref": "#/components/responses/UNPROCESSABLE_ENTITY"}
_PATH_PARAMETER = re.compile(r"\{[^}]+\}")


def document_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    """Declare the error statuses `operation` can answer, each with the one error schema."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if responses.get("422") == _SMOREST_VALIDATION:
        del responses["422"]
    has_path_parameters = bool(_PATH_PARAMETER.search(path))
    if operation.get("parameters") or operation.get("requestBody") or has_path_parameters:
        responses.setdefault("400", {"description": BAD_INPUT})
    if has_path_parameters:
        responses.setdefault("404", {"description": NOT_FOUND})
    if method.upper() in MUTATING_METHODS:
        responses.setdefault("413", {"description": TOO_LARGE})
        # Mutations need the token when one is configured (portal.auth.api_request_allowed).
        operation.setdefault("security", [{"bearerAuth": []}])
        responses.setdefault("401", {"description": UNAUTHORIZED})
    for status, response in responses.items():
        if (status == "default" or int(status) >= 400) and "$ref" not in response:
            response.setdefault("content", {"application/json": {"schema": ERROR_REF}})


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3 document: every error status with the error schema, the bearer requirement on mutations."""
    spec = copy.deepcopy(api.spec.to_dict())
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and method != "parameters":
                document_errors(path, method, operation)
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
