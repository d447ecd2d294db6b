"""Kubernetes `Status` failures, with the reasons, codes and messages the real API server uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portal.devcluster.resources import ResourceType

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A failed request, rendered as a Kubernetes `Status` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """Return the `Status` body, keys in the order the API server writes them."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rtype: ResourceType, name: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = kind
    return details


def not_found(rtype: ResourceType, name: str) -> ApiError:
    """`<plural>.<group> "name" not found`."""
    return ApiError(404, "NotFound", f'{rtype.qualified} "{name}" not found', _details(rtype, name, rtype.plural))


def already_exists(rtype: ResourceType, name: str) -> ApiError:
    """`<plural>.<group> "name" already exists`."""
    return ApiError(
        409, "AlreadyExists", f'{rtype.qualified} "{name}" already exists', _details(rtype, name, rtype.plural)
    )


def conflict(rtype: ResourceType, name: str, why: str) -> ApiError:
    """`Operation cannot be fulfilled on <plural>.<group> "name": <why>`."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rtype.qualified} "{name}": {why}',
        _details(rtype, name, rtype.plural),
    )


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def cause_text(cause: dict[str, str]) -> str:
    """Render one cause the way `field.Error.Error()` does: `<field>: <message>`."""
    field = cause.get("field", "")
    return f"{field}: {cause['message']}" if field else cause["message"]


def invalid(rtype: ResourceType, name: str, causes: list[dict[str, str]]) -> ApiError:
    """422 Invalid with one `StatusCause` per field error."""
    texts = [cause_text(c) for c in causes]
    summary = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = _details(rtype, name, rtype.kind)
    details["causes"] = causes
    return ApiError(422, "Invalid", f'{rtype.qualified_kind} "{name}" is invalid: {summary}', details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest; the API server sends no details with these."""
    return ApiError(400, "BadRequest", message)


def namespace_not_found(namespace: str) -> ApiError:
    """What NamespaceLifecycle admission answers for a write into a missing namespace."""
    return ApiError(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})


def path_not_found() -> ApiError:
    """404 for a URL that names no resource."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> ApiError:
    """405 for a verb the resource does not support."""
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_patch(accepted: list[str]) -> ApiError:
    """415 for a patch type the resource does not take (strategic merge on custom resources)."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: " + ", ".join(accepted),
        {},
    )


def generic(code: int, message: str | None = None, reason: str | None = None) -> ApiError:
    """Any status code with its usual reason, for failure injection."""
    reason = reason or REASONS.get(code, "InternalError" if code >= 500 else "BadRequest")
    headers = {"Retry-After": "1"} if code in (429, 503) else None
    return ApiError(code, reason, message or f"injected failure ({code} {reason})", {}, headers)
