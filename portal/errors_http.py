"""The edge: map domain exceptions, HTTP errors and surprises to JSON (API) or HTML (portal)."""

from __future__ import annotations

import logging
import re
from typing import Any

import htmx_flask
import redis
from flask import Flask, Response, current_app, g, jsonify, render_template, request
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from portal.errors import PortalError

log = logging.getLogger(__name__)


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def wants_html() -> bool:
    """Portal pages get HTML errors; everything else (the API) gets JSON."""
    return request.path.startswith("/ui")


def error_response(
    status: int,
    message: str,
    code: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One error in the shape of its audience: `{"error","code","details"}` or an HTML page."""
    details = details or {}
    if wants_html():
        if htmx_flask.request.htmx:
            body = render_template("_error_fragment.html", status=status, message=message, code=code, details=details)
        else:
            body = render_template("error.html", status=status, message=message, code=code, details=details)
        response = Response(body, status=status, mimetype="text/html")
    else:
        response = jsonify({"error": message, "code": code, "details": details})
        response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _validation_details(exc: HTTPException) -> dict[str, Any]:
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages") or data.get("errors") or {}
    return {"fields": messages} if messages else {}


def handle_http_exception(exc: HTTPException) -> Response:
    """werkzeug/smorest errors: 404, 405, webargs' 422 (→ 400 with field errors), malformed JSON."""
    status = exc.code or 500
    headers: dict[str, str] = {}
    data = getattr(exc, "data", None) or {}
    if isinstance(data, dict) and isinstance(data.get("headers"), dict):
        headers.update(data["headers"])
    if status == 422:
        details = _validation_details(exc)
        return error_response(400, "the request has invalid fields", "validation_error", details, headers)
    if status == 400:
        description = str(data.get("message") or exc.description or "bad request")
        if "invalid json" in f"{description} {data}".lower():
            return error_response(
                400, "the request body is not valid JSON", "malformed_json", {"reason": description}, headers
            )
        return error_response(400, description, "bad_request", _validation_details(exc), headers)
    if status == 404:
        return error_response(
            404, f"no such page or endpoint: {request.path}", "not_found", {"path": request.path}, headers
        )
    if status == 405:
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        if allowed:
            headers["Allow"] = ", ".join(allowed)
        return error_response(
            405,
            f"{request.method} is not allowed on {request.path}",
            "method_not_allowed",
            {"allowed": allowed},
            headers,
        )
    if status == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
        size = f"{limit // 1048576} MiB" if limit >= 1048576 else f"{limit // 1024} KiB"
        return error_response(
            413,
            f"the request body is too large: at most {size} is accepted",
            "payload_too_large",
            {"maxBytes": limit},
            headers,
        )
    return error_response(status, exc.description or exc.name, _snake(exc.name), {}, headers)


def refuse_oversized_body() -> None:
    """413 up front when Content-Length is over MAX_CONTENT_LENGTH, also for views that never read the body."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()


def init_app(app: Flask) -> None:
    """Register the handlers (after smorest, so ours win) and the body-size guard."""
    app.register_error_handler(HTTPException, handle_http_exception)
    app.before_request(refuse_oversized_body)

    @app.errorhandler(PortalError)
    def _portal_error(exc: PortalError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return error_response(exc.status, exc.message, exc.code, exc.details, headers)

    @app.errorhandler(redis.RedisError)
    def _redis_down(exc: redis.RedisError) -> Response:
        log.warning("redis error: %s", exc)
        return error_response(
            503,
            "Redis is unavailable; jobs and caches cannot be used right now",
            "redis_unavailable",
            {"reason": type(exc).__name__},
        )

    @app.errorhandler(DataError)
    def _database_refused_value(exc: DataError) -> Response:
        # e.g. a NUL byte in a path value: PostgreSQL refuses it; that is bad input, not a server fault.
        from portal.extensions import db

        db.session.rollback()
        log.info("database refused a value: %s", exc.orig)
        return error_response(
            400, "a value in the request cannot be stored or looked up (e.g. it holds a NUL byte)", "invalid_value", {}
        )

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        log.warning("database error: %s", exc.orig)
        return error_response(503, "the database is unavailable", "database_unavailable", {})

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error (request_id=%s)", g.get("request_id"))
        return error_response(
            500,
            "internal error; the log has details under this request id",
            "internal_error",
            {"requestId": g.get("request_id")},
        )
