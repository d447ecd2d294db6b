"""Domain exceptions shared by services; the API and portal edges map them to HTTP answers."""

from __future__ import annotations

from typing import Any


class PortalError(Exception):
    """Base of every error a service raises on purpose: carries status, code and details."""

    status: int = 500
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body: {"error", "code", "details"}."""
        return {"error": self.message, "code": self.code, "details": self.details}


class InvalidInput(PortalError):
    """The caller sent something we cannot accept (400)."""

    status = 400
    code = "invalid_input"


class Unauthorized(PortalError):
    """Missing or wrong credentials (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(PortalError):
    """Credentials are fine but not enough (403)."""

    status = 403
    code = "forbidden"


class NotFound(PortalError):
    """The thing asked for does not exist (404)."""

    status = 404
    code = "not_found"


class Conflict(PortalError):
    """The request clashes with current state (409)."""

    status = 409
    code = "conflict"


class InsufficientStorage(PortalError):
    """The volume lacks room for the requested work (507)."""

    status = 507
    code = "insufficient_storage"


class UpstreamError(PortalError):
    """A dependency answered with an error (502)."""

    status = 502
    code = "upstream_error"


class Unavailable(PortalError):
    """A dependency could not be reached (503)."""

    status = 503
    code = "unavailable"


class UpstreamTimeout(PortalError):
    """A dependency did not answer in time (504)."""

    status = 504
    code = "upstream_timeout"


class NotConfigured(PortalError):
    """A feature is switched off by configuration (501)."""

    status = 501
    code = "not_configured"
