"""A git smart-HTTP server for tests: `git http-backend` (CGI) behind a token check.

    with GitServer(token="t0k") as server:
        url = server.create_repo("acme/catalog", {"models/a.json": "..."})   # branch main
        # CATALOG_REPO_URL=url ; pushes need `Authorization: Basic base64(x-access-token:t0k)`

Requests without the token get 401 (so a clone or push without it fails). `server.reject_pushes(name)`
installs a pre-receive hook that declines every push. `server.requests` records (method, path, authorized).
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support.loopback import LoopbackServer

BACKEND = "/usr/lib/git-core/git-http-backend"
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent", "GIT_TERMINAL_PROMPT": "0"}


def git(*args: str, stdin: str | None = None, extra: dict[str, str] | None = None) -> str:
    """Run git quietly for fixtures; raise with its stderr on failure."""
    env = {**os.environ, **_GIT_ENV, "GIT_AUTHOR_NAME": "Seed", "GIT_AUTHOR_EMAIL": "seed@example.com"}
    env.update(GIT_COMMITTER_NAME="Seed", GIT_COMMITTER_EMAIL="seed@example.com", **(extra or {}))
    proc = subprocess.run(["git", *args], input=stdin, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


class GitServer(LoopbackServer):
    """Bare repositories under a temp root, served over smart HTTP with a required token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._tmp = tempfile.TemporaryDirectory(prefix="gitserver-")
        self.root = Path(self._tmp.name)
        self.requests: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                if not header.startswith("Basic "):
                    return False
                try:
                    _user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                except ValueError:
                    return False
                return password == server.token

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                ok = self._authorized()
                with server.lock:
                    server.requests.append((self.command, parts.path, ok))
                body = self._body() if self.command == "POST" else b""
                if not ok:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                env = {
                    **_GIT_ENV,
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": parts.path,
                    "QUERY_STRING": parts.query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "REMOTE_USER": "x-access-token",  # enables receive-pack (push)
                    "REMOTE_ADDR": "127.0.0.1",
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                }
                proc = subprocess.run([BACKEND], input=body, capture_output=True, env=env, check=False)
                head, _, payload = proc.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode("latin-1").split("\r\n"):
                    name, _, value = line.partition(":")
                    if name.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif name:
                        headers.append((name, value.strip()))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._listen(Handler)

    def stop(self) -> None:
        """Stop serving and delete the repositories."""
        super().stop()
        self._tmp.cleanup()

    def bare(self, name: str) -> Path:
        """The bare repository directory of `owner/name`."""
        return self.root / f"{name}.git"

    def create_repo(self, name: str, files: dict[str, str], *, branch: str = "main") -> str:
        """A bare repository whose `branch` (also HEAD) holds `files`; returns its clone URL."""
        bare = self.bare(name)
        bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "--bare", "--quiet", f"--initial-branch={branch}", str(bare))
        self.commit(name, files, branch=branch, message="Seed catalog")
        return f"{self.url}/{name}.git"

    def commit(self, name: str, files: dict[str, str], *, branch: str, message: str, parent: str | None = None) -> str:
        """Commit `files` (on top of `parent`, default the branch tip) straight into the bare repo."""
        bare = str(self.bare(name))
        with tempfile.TemporaryDirectory() as tmp:
            index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            tip = parent or self.tip(name, branch)
            if tip:
                git("--git-dir", bare, "read-tree", tip, extra=index)
            for path, text in files.items():
                blob = git("--git-dir", bare, "hash-object", "-w", "--stdin", stdin=text).strip()
                git("--git-dir", bare, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", extra=index)
            tree = git("--git-dir", bare, "write-tree", extra=index).strip()
            commit = git("--git-dir", bare, "commit-tree", tree, "-m", message, *(["-p", tip] if tip else [])).strip()
            git("--git-dir", bare, "update-ref", f"refs/heads/{branch}", commit)
            return commit

    def tip(self, name: str, branch: str) -> str | None:
        """The commit a branch points at, or None."""
        try:
            return git(
                "--git-dir", str(self.bare(name)), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"
            ).strip()
        except RuntimeError:
            return None

    def show(self, name: str, ref: str, path: str) -> bytes:
        """Raw bytes of `path` at `ref`."""
        proc = subprocess.run(
            ["git", "--git-dir", str(self.bare(name)), "show", f"{ref}:{path}"], capture_output=True, check=True
        )
        return proc.stdout

    def message(self, name: str, ref: str) -> str:
        """The full commit message (and author) of `ref`."""
        return git("--git-dir", str(self.bare(name)), "log", "-1", "--format=%an <%ae>%n%B", ref)

    def reject_pushes(self, name: str) -> None:
        """Decline every push to the repository (a pre-receive hook, like a protected branch)."""
        hook = self.bare(name) / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\necho 'pushes to this repository are not allowed' >&2\nexit 1\n")
        hook.chmod(0o755)
