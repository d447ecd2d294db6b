"""A tiny local GitHub REST API stub: file contents, and pull requests.

    with GitHubStub() as gh:
        gh.add_file("vllm-project/vllm", "vllm/model_executor/models/registry.py", text, ref="v0.33.0")
        # GITHUB_API_URL=gh.url

Pull requests: `POST /repos/{o}/{r}/pulls` (422 when the head already has an open PR),
`GET /repos/{o}/{r}/pulls?head=o:branch&state=open`, `GET /repos/{o}/{r}/pulls/{n}`; `gh.merge(n)` and
`gh.close(n)` change a PR's state; `gh.fail_next(status, message)` answers the next pulls request with
an error; with `gh.token` set, pulls requests need `Authorization: Bearer <token>` (else 401).

`gh.requests` records (path, query, authorization) tuples, `gh.calls` (method, path, json body) of the
pulls endpoints; `gh.set_down(True)` answers 503.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.loopback import LoopbackServer

CONTENTS = "/repos/{repo}/contents/{path}"


class GitHubStub(LoopbackServer):
    """Serves file contents (base64, like GitHub) and the pull request endpoints described above."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], str] = {}
        self.requests: list[tuple[str, dict[str, list[str]], str | None]] = []
        self.down = False
        self.lock = threading.Lock()
        self.token: str | None = None
        self.pulls: dict[int, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.failures: list[tuple[int, str]] = []
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
                if len(segments) >= 4 and segments[0] == "repos" and segments[3] == "pulls":
                    self._send(*stub._pulls("GET", segments, query, None, self.headers.get("Authorization")))
                    return
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

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    self._send(400, {"message": "Problems parsing JSON"})
                    return
                with stub.lock:
                    stub.requests.append((unquote(parts.path), {}, self.headers.get("Authorization")))
                segments = unquote(parts.path).strip("/").split("/")
                if len(segments) == 4 and segments[0] == "repos" and segments[3] == "pulls":
                    self._send(*stub._pulls("POST", segments, {}, body, self.headers.get("Authorization")))
                    return
                self._send(404, {"message": "Not Found"})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._listen(Handler)

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

    def _pulls(
        self, method: str, segments: list[str], query: dict[str, list[str]], body: Any, auth: str | None
    ) -> tuple[int, Any]:
        repo = "/".join(segments[1:3])
        with self.lock:
            self.calls.append((method, "/" + "/".join(segments), body))
            if self.down:
                return 503, {"message": "Service Unavailable"}
            if self.failures:
                status, message = self.failures.pop(0)
                return status, {"message": message}
            if self.token is not None and auth != f"Bearer {self.token}":
                return 401, {"message": "Bad credentials"}
            if method == "POST":
                head, base = str(body.get("head") or ""), str(body.get("base") or "")
                if not head or not base or not body.get("title"):
                    return 422, {
                        "message": "Validation Failed",
                        "errors": [{"message": "head, base and title are required"}],
                    }
                if any(
                    p["head"]["ref"] == head and p["state"] == "open" and p["_repo"] == repo
                    for p in self.pulls.values()
                ):
                    return 422, {
                        "message": "Validation Failed",
                        "errors": [{"message": f"A pull request already exists for {repo.split('/')[0]}:{head}."}],
                    }
                number = len(self.pulls) + 1
                pr = {
                    "_repo": repo,
                    "number": number,
                    "state": "open",
                    "merged": False,
                    "merged_at": None,
                    "draft": bool(body.get("draft")),
                    "title": body["title"],
                    "body": body.get("body") or "",
                    "head": {"ref": head},
                    "base": {"ref": base},
                    "url": f"{self.url}/repos/{repo}/pulls/{number}",
                    "html_url": f"https://github.example/{repo}/pull/{number}",
                }
                self.pulls[number] = pr
                return 201, self._public(pr)
            if len(segments) == 5:
                found = self.pulls.get(int(segments[4])) if segments[4].isdigit() else None
                if found is None or found["_repo"] != repo:
                    return 404, {"message": "Not Found"}
                return 200, self._public(found)
            head = (query.get("head") or [""])[0].split(":", 1)[-1]
            state = (query.get("state") or ["open"])[0]
            listed = [
                self._public(p)
                for p in self.pulls.values()
                if p["_repo"] == repo
                and (not head or p["head"]["ref"] == head)
                and (state == "all" or p["state"] == state)
            ]
            return 200, listed

    @staticmethod
    def _public(pr: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in pr.items() if not k.startswith("_")}

    def fail_next(self, status: int, message: str = "error") -> None:
        """Answer the next pulls request with this status and message."""
        with self.lock:
            self.failures.append((status, message))

    def merge(self, number: int) -> None:
        """Mark a PR merged (and closed), as GitHub does."""
        with self.lock:
            self.pulls[number].update(state="closed", merged=True, merged_at="2026-12-02T00:00:00Z")

    def close(self, number: int) -> None:
        """Close a PR without merging."""
        with self.lock:
            self.pulls[number].update(state="closed")
