"""A local webhook receiver (Slack-style or generic) for notification tests.

    with WebhookReceiver(secret="s3cret") as hook:
        # SLACK_WEBHOOK_URL=hook.url + "/slack" ; NOTIFY_WEBHOOK_URLS=hook.url + "/hook"
        hook.wait_for(1)
        hook.received[0].json["event"]

Each request is recorded with its path, headers, raw body and whether the HMAC signature verified.
`hook.fail_with(500)` answers with that status (still recording the attempt); `hook.stop()` makes the
URL refuse connections.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer

SIGNATURE_HEADER = "X-Model-Manager-Signature-256"


@dataclass
class Delivery:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool | None

    @property
    def json(self) -> Any:
        """The body parsed."""
        return json.loads(self.body)


class WebhookReceiver(LoopbackServer):
    """Records POSTs; verifies `sha256=` HMAC signatures when given the secret."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.received: list[Delivery] = []
        self.status = 200
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                signature = self.headers.get(SIGNATURE_HEADER)
                ok = None
                if receiver.secret is not None and signature is not None:
                    expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    ok = hmac.compare_digest(expected, signature)
                with receiver.cond:
                    receiver.received.append(Delivery(self.path, dict(self.headers.items()), body, ok))
                    status = receiver.status
                    receiver.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self._listen(Handler)

    def fail_with(self, status: int) -> None:
        """Answer every later request with `status`."""
        with self.cond:
            self.status = status

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Delivery]:
        """Wait until at least `count` requests arrived; returns them all."""
        with self.cond:
            self.cond.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)

    def events(self, path: str | None = None) -> list[str]:
        """The `event` of each generic delivery (optionally of one path)."""
        with self.cond:
            return [d.json.get("event") for d in self.received if path is None or d.path == path]
