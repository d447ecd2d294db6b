"""The request and response types shared by the dev cluster's routing, reads and writes."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from portal.devcluster.controller import KServeController
from portal.devcluster.errors import ApiError
from portal.devcluster.resources import ResourceType
from portal.devcluster.schema import format_warning
from portal.devcluster.store import Store


@dataclass
class Request:
    """One HTTP request, already read off the socket."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    """What to send back; `stream` bodies are written chunk by chunk (watch)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | None = None


def json_response(status: int, payload: Any, warnings: list[str] | None = None) -> Response:
    """A JSON response with optional `Warning` headers."""
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    headers = [("Warning", format_warning(w)) for w in warnings or []]
    return Response(status, body, headers=headers)


def status_response(err: ApiError) -> Response:
    """The `Status` body of a failure."""
    response = json_response(err.code, err.status())
    response.headers.extend(err.headers.items())
    return response


@dataclass
class Target:
    """What a resource URL names: the type, and the namespace, name and subresource if any."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class ServerState:
    """What the read and write handlers share: the store, the controller and the clock."""

    def __init__(
        self,
        store: Store,
        controller: KServeController,
        clock: Callable[[], float],
        *,
        token: str | None = None,
    ) -> None:
        self.store = store
        self.controller = controller
        self.clock = clock
        self.token = token
        self.server_address = ""
        self.stopping = threading.Event()
        self._crd_objects: list[dict[str, Any]] | None = None


def truthy(value: str | None) -> bool:
    """A query flag as Kubernetes reads it (`true` or `1`)."""
    return (value or "").lower() in ("true", "1")
