"""A tiny local GitHub REST API stub: the contents endpoint for files of a repository at a ref.

    with GitHubStub() as gh:
        gh.add_file("vllm-project/vllm", "vllm/model_executor/models/registry.py", text, ref="v0.33.0")
        # GITHUB_API_URL=gh.url

`gh.requests` records (path, query, authorization) tuples; `gh.set_down(True)` answers 503.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

CONTENTS = "/repos/{repo}/contents/{path}"


class GitHubStub:
    """Serves `GET /repos/<owner>/<repo>/contents/<path>?ref=<ref>` like GitHub (base64 content)."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], str] = {}
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.down = False
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                with stub.lock:
                    stub.requests.append((unquote(parts.path), query, self.headers.get("Authorization")))
                    down = stub.down
                if down:
                    self._send(503, {"message": "Service Unavailable"})
                    return
                segments = unquote(parts.path).strip("/").split("/")
                if len(segments) < 5 or segments[0] != "repos" or segments[3] != "contents":
                    self._send(404, {"message": "Not Found"})
                    return
                repo = "/".join(segments[1:3])
                path = "/".join(segments[4:])
                ref = (query.get("ref") or ["main"])[0]
                text = stub.files.get((repo, path, ref))
                if text is None:
                    self._send(404, {"message": "Not Found"})
                    return
                raw = text.encode()
                self._send(
                    200,
                    {
                        "type": "file",
                        "encoding": "base64",
                        "size": len(raw),
                        "name": path.rsplit("/", 1)[-1],
                        "path": path,
                        "content": base64.encodebytes(raw).decode(),
                    },
                )

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """Base URL (what GITHUB_API_URL should be)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> GitHubStub:
        """Start serving."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> GitHubStub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def add_file(self, repo: str, path: str, text: str, *, ref: str = "main") -> None:
        """Serve `text` as `path` of `repo` at `ref`."""
        with self.lock:
            self.files[(repo, path, ref)] = text

    def set_down(self, down: bool = True) -> None:
        """Answer every request with 503."""
        with self.lock:
            self.down = down

    def count(self, path_prefix: str = "") -> int:
        """Requests whose path starts with the prefix."""
        with self.lock:
            return sum(1 for path, _q, _a in self.requests if path.startswith(path_prefix))
