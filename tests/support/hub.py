"""A local Hugging Face Hub-compatible HTTP server for tests and benchmarks.

The real `huggingface_hub` client talks to it over HTTP (pass `endpoint=hub.url`, or set `HF_ENDPOINT`
before `huggingface_hub` is imported). Repos are built at test time; failure knobs (throttle, dropped
connections, corrupted bytes, Hub down) and request accounting are settable while it runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import yaml

from tests.support.hub_content import (
    GITATTRIBUTES,
    Blob,
    BytesContent,
    Commit,
    DiskContent,
    FileContent,
    GeneratedContent,
    Repo,
    as_content,
    is_lfs_path,
    iso,
    new_commit_sha,
    read_card_data,
    read_json_file,
    safetensors_header,
    safetensors_parameters,
)
from tests.support.safetensors_writer import (
    DTYPE_SIZES,
    TORCH_DTYPES,
    TensorSpec,
    build_safetensors,
    data_size,
    encode_header,
    llama_tensor_specs,
    parameter_counts,
    shard_filename,
    split_into_shards,
)

__all__ = [
    "DEFAULT_TOKEN",
    "Blob",
    "BytesContent",
    "DiskContent",
    "FileContent",
    "GeneratedContent",
    "HubRequest",
    "HubServer",
    "ModelRepo",
    "hours_ago",
    "make_model_repo",
]

DEFAULT_TOKEN = "hf_local_test_token"

GatedMode = bool | Literal["auto", "manual"]
DownMode = Literal["refuse", "reset", "503"]
FileValue = bytes | str | FileContent | Blob

# Properties `expand=` accepts for models (huggingface_hub's ExpandModelProperty_T).
EXPAND_PROPERTIES = frozenset(
    {
        "author",
        "baseModels",
        "cardData",
        "childrenModelCount",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "widgetData",
    }
)
INFO_FIELDS = (
    "_id",
    "id",
    "modelId",
    "author",
    "sha",
    "lastModified",
    "private",
    "disabled",
    "gated",
    "downloads",
    "likes",
    "library_name",
    "tags",
    "pipeline_tag",
    "cardData",
    "config",
    "transformersInfo",
    "siblings",
    "spaces",
    "createdAt",
    "safetensors",
    "usedStorage",
    "model-index",
)
LIST_FIELDS = (
    "_id",
    "id",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
LIST_FULL_FIELDS = ("author", "sha", "lastModified", "gated", "disabled", "siblings")
SORT_KEYS = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "trendingScore": "trendingScore",
    "trending_score": "trendingScore",
    "createdAt": "createdAt",
    "created_at": "createdAt",
}
# Keys of config.json the Hub copies into the model API's `config` (the rest is not exposed there).
API_CONFIG_KEYS = ("architectures", "model_type", "auto_map")
API_QUANT_KEYS = ("quant_method", "bits", "load_in_4bit", "load_in_8bit")
API_TOKENIZER_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template")
ROUTE_KEYWORDS = frozenset({"revision", "tree", "refs", "paths-info", "safetensors-metadata"})
_INVERT = bytes(255 - i for i in range(256))
_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


@dataclass
class HubRequest:
    """One request the server received; `status` and `bytes_sent` are filled in as it is answered."""

    method: str
    path: str
    query: str
    range: str | None
    authorization: bool
    status: int | None = None
    repo_id: str | None = None
    filename: str | None = None
    bytes_sent: int = 0


@dataclass
class _Fault:
    filename: str
    repo_id: str | None
    times: int | None
    n_bytes: int = 0

    def matches(self, key: tuple[str, str]) -> bool:
        return self.filename == key[1] and (self.repo_id is None or self.repo_id == key[0])


@dataclass
class _StatusFault:
    filename: str
    repo_id: str | None
    times: int
    status: int
    retry_after: str | None

    def matches(self, key: tuple[str, str]) -> bool:
        return self.filename == key[1] and (self.repo_id is None or self.repo_id == key[0])


@dataclass(frozen=True)
class _HiddenHash:
    filename: str | None
    repo_id: str | None
    sources: frozenset[str]


class _Abort(Exception):
    """Raised inside a handler to drop the connection without an answer."""


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], hub: HubServer, role: str) -> None:
        self.hub = hub
        self.role = role
        super().__init__(address, _HubHandler)


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LocalHub/1.0"
    timeout = 120
    server: _HubHTTPServer

    # -- plumbing -------------------------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.hub._track(self.connection, True)

    def finish(self) -> None:
        self.server.hub._track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        """Answer GET."""
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        """Answer HEAD."""
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        """Answer POST."""
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        hub = self.server.hub
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(length) if length else b""
        self._head = method == "HEAD"
        self._record = hub._begin(method, unquote(split.path), split.query, self.headers)
        try:
            down = hub._down
            if down == "reset" or down == "refuse":
                raise _Abort
            if down == "503":
                self._error(503, None, "Service Unavailable")
                return
            if hub.strict_tokens and not split.path.startswith("/cdn-lfs/"):
                token = self._token()
                if token is not None and token not in hub.tokens:
                    self._error(401, None, "Invalid credentials in Authorization header")
                    return
            self._route(method, split.path, parse_qs(split.query, keep_blank_values=True))
        except _Abort:
            self._abort()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            if self._record.status is None:
                self._error(500, None, "Internal error in the local test Hub")
            else:
                self._abort()

    def _abort(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _token(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        return None

    def _send(self, status: int, headers: Mapping[str, str], body: bytes = b"") -> None:
        self._record.status = status
        self.send_response(status)
        self.send_header("X-Request-Id", uuid.uuid4().hex)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not self._head:
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)

    def _error(self, status: int, code: str | None, message: str, headers: Mapping[str, str] | None = None) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    # -- routing ----------------------------------------------------------------------------------
    def _route(self, method: str, raw_path: str, query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        if raw_path.startswith("/cdn-lfs/"):
            self._serve_cdn(raw_path, query)
            return
        if self.server.role == "cdn":
            self._error(404, None, "Not Found")
            return
        if raw_path in ("/api/models", "/api/models/") and method == "GET":
            self._list_models(query)
            return
        if raw_path == "/api/whoami-v2":
            self._whoami()
            return
        if raw_path == "/api/agent-harnesses":
            self._json(200, {"standardEnvVars": [], "harnesses": {}})
            return
        if raw_path.startswith("/api/models/"):
            segments = [unquote(s) for s in raw_path[len("/api/models/") :].split("/") if s != ""]
            repo_id, tail = hub._split_repo(segments)
            self._api_repo(method, repo_id, tail, query)
            return
        marker = raw_path.find("/resolve/")
        if marker > 1 and method in ("GET", "HEAD"):
            repo_id = unquote(raw_path[1:marker])
            revision_raw, _, file_raw = raw_path[marker + len("/resolve/") :].partition("/")
            self._resolve(repo_id, unquote(revision_raw), unquote(file_raw))
            return
        self._error(404, None, "Not Found")

    def _repo_for(self, repo_id: str, *, files: bool) -> Repo | None:
        """Look a repo up and answer the access error if it cannot be read; None when answered."""
        hub = self.server.hub
        repo = hub._repos_get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        token = self._token()
        valid = token is not None and token in hub.tokens
        allowed = valid and (repo.authorized_tokens is None or token in repo.authorized_tokens)
        if repo.private and not allowed:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if files and repo.disabled:
            self._error(403, None, "Access to this resource is disabled.")
            return None
        if files and repo.gated and not allowed:
            if valid:
                message = (
                    f"Access to model {repo.repo_id} is restricted and you are not in the authorized list. "
                    f"Visit {hub.url}/{repo.repo_id} to ask for access."
                )
                self._error(403, "GatedRepo", message)
            else:
                message = (
                    f"Access to model {repo.repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in."
                )
                self._error(401, "GatedRepo", message)
            return None
        self._record.repo_id = repo.repo_id
        return repo

    def _commit_for(self, repo: Repo, revision: str | None) -> Commit | None:
        commit = repo.resolve(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return commit

    def _api_repo(self, method: str, repo_id: str, tail: list[str], query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        action = tail[0] if tail else ""
        if action == "paths-info" and method == "POST" and len(tail) == 2:
            self._paths_info(repo_id, tail[1])
            return
        if method != "GET":
            self._error(405, None, "Method Not Allowed")
            return
        if action in ("", "revision"):
            if action == "revision" and len(tail) != 2:
                self._error(404, None, "Not Found")
                return
            repo = self._repo_for(repo_id, files=False)
            if repo is None:
                return
            commit = self._commit_for(repo, tail[1] if action else None)
            if commit is None:
                return
            expand = query.get("expand", []) + query.get("expand[]", [])
            unknown = sorted(set(expand) - EXPAND_PROPERTIES)
            if unknown:
                self._error(400, None, f'"expand" must be one of {sorted(EXPAND_PROPERTIES)}; got {unknown}')
                return
            blobs = _truthy(query.get("blobs"))
            fields: Sequence[str] = ["_id", "id", *expand] if expand else INFO_FIELDS
            with hub._lock:
                payload = hub._model_json(repo, commit, fields, blobs=blobs)
            self._json(200, payload)
        elif action == "tree" and len(tail) >= 2:
            self._tree(repo_id, tail[1], "/".join(tail[2:]), query)
        elif action == "refs" and len(tail) == 1:
            repo = self._repo_for(repo_id, files=False)
            if repo is not None:
                self._json(200, hub._refs_json(repo, include_prs=bool(query.get("include_prs"))))
        elif action == "safetensors-metadata" and len(tail) >= 2:
            self._sharded_safetensors(repo_id, "/".join(tail[1:]))
        else:
            self._error(404, None, "Not Found")

    # -- API endpoints ----------------------------------------------------------------------------
    def _list_models(self, query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        token = self._token()
        try:
            items, next_cursor = hub._list_models(query, token)
        except ValueError as exc:
            self._error(400, None, str(exc))
            return
        headers: dict[str, str] = {}
        if next_cursor is not None:
            pairs = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
            pairs.append(("cursor", str(next_cursor)))
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            headers["Link"] = f'<http://{host}/api/models?{urlencode(pairs)}>; rel="next"'
        self._json(200, items, headers)

    def _whoami(self) -> None:
        hub = self.server.hub
        token = self._token()
        if token is None or token not in hub.tokens:
            self._error(401, None, "Invalid credentials in Authorization header")
            return
        self._json(
            200,
            {
                "type": "user",
                "id": hashlib.sha1(token.encode(), usedforsecurity=False).hexdigest()[:24],
                "name": "local-tester",
                "fullname": "Local Tester",
                "email": None,
                "emailVerified": True,
                "isPro": False,
                "canPay": False,
                "avatarUrl": "",
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "tests", "role": "read"}},
            },
        )

    def _tree(self, repo_id: str, revision: str, path: str, query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        repo = self._repo_for(repo_id, files=False)
        if repo is None:
            return
        commit = self._commit_for(repo, revision)
        if commit is None:
            return
        entries = _tree_listing(commit, path, recursive=_truthy(query.get("recursive")))
        if entries is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
            return
        expand = _truthy(query.get("expand"))
        cursor = int((query.get("cursor") or ["0"])[0] or 0)
        page = entries[cursor : cursor + hub.page_size]
        with hub._lock:
            payload = [
                hub._without_hash(repo.repo_id, p, "tree", _tree_entry(repo, commit, p, blob, expand=expand))
                for p, blob in page
            ]
        headers: dict[str, str] = {}
        if cursor + hub.page_size < len(entries):
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
            pairs = [(k, v) for k, values in query.items() if k != "cursor" for v in values]
            pairs.append(("cursor", str(cursor + hub.page_size)))
            url = f"http://{host}{urlsplit(self.path).path}?{urlencode(pairs)}"
            headers["Link"] = f'<{url}>; rel="next"'
        self._json(200, payload, headers)

    def _paths_info(self, repo_id: str, revision: str) -> None:
        form = parse_qs(self._body.decode(errors="replace"), keep_blank_values=True)
        repo = self._repo_for(repo_id, files=False)
        if repo is None:
            return
        commit = self._commit_for(repo, revision)
        if commit is None:
            return
        expand = _truthy(form.get("expand"))
        result = []
        for raw in form.get("paths", []):
            path = raw.strip("/")
            if path in commit.files:
                entry = _tree_entry(repo, commit, path, commit.files[path], expand=expand)
                result.append(self.server.hub._without_hash(repo.repo_id, path, "tree", entry))
            elif any(p.startswith(path + "/") for p in commit.files):
                result.append(_tree_entry(repo, commit, path, None, expand=expand))
        self._json(200, result)

    def _sharded_safetensors(self, repo_id: str, filename: str) -> None:
        repo = self._repo_for(repo_id, files=True)
        if repo is None:
            return
        commit = self._commit_for(repo, "main")
        if commit is None:
            return
        index = read_json_file(commit, filename)
        if index is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on main")
            return
        folder = filename.rsplit("/", 1)[0] + "/" if "/" in filename else ""
        headers: dict[str, Any] = {}
        for shard in sorted(set(index.get("weight_map", {}).values())):
            blob = commit.files.get(folder + shard)
            header = safetensors_header(blob) if blob is not None else None
            if header is None:
                self._error(404, "EntryNotFound", f"{folder + shard} is not a safetensors file")
                return
            headers[shard] = header
        index = {k: v for k, v in index.items() if k != "weight_map"}
        self._json(200, {"index": index, "headers": headers})

    # -- files ------------------------------------------------------------------------------------
    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        hub = self.server.hub
        repo = self._repo_for(repo_id, files=True)
        if repo is None:
            return
        commit = self._commit_for(repo, revision)
        if commit is None:
            return
        self._record.filename = filename
        blob = commit.files.get(filename)
        if blob is None:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit.sha})
            return
        headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes"}
        if blob.lfs:
            location = hub._cdn_location(blob, repo.repo_id, filename, commit.sha)
            body = f"Found. Redirecting to {location}".encode()
            headers.update(
                {
                    "Location": location,
                    "ETag": f'"{blob.git_oid}"',
                    "X-Linked-Etag": f'"{blob.sha256}"',
                    "X-Linked-Size": str(blob.size),
                    "Content-Type": "text/plain; charset=utf-8",
                }
            )
            if hub._hides(repo.repo_id, filename, "resolve"):
                del headers["ETag"], headers["X-Linked-Etag"]
            self._send(302, headers, body)
            return
        if not hub._hides(repo.repo_id, filename, "resolve"):
            headers["ETag"] = f'"{blob.git_oid}"'
        headers["Content-Type"] = _content_type(filename)
        self._send_blob(blob, headers, (repo.repo_id, filename))

    def _serve_cdn(self, raw_path: str, query: dict[str, list[str]]) -> None:
        hub = self.server.hub
        sha256 = raw_path.rstrip("/").rsplit("/", 1)[-1]
        blob = hub._blob_by_sha(sha256)
        if blob is None:
            self._error(404, None, "NoSuchKey")
            return
        repo_id = (query.get("repo") or [""])[0]
        filename = (query.get("file") or [sha256])[0]
        self._record.repo_id = repo_id or None
        self._record.filename = filename
        basename = filename.rsplit("/", 1)[-1]
        headers = {
            "ETag": f'"{blob.sha256}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(basename)}; filename=\"{quote(basename)}\"",
        }
        if hub._hides(repo_id, filename, "resolve"):
            del headers["ETag"]
        commit = (query.get("commit") or [""])[0]
        if commit:
            # Only read by the client when the CDN shares the Hub's origin (redirect followed on HEAD).
            headers["X-Repo-Commit"] = commit
        self._send_blob(blob, headers, (repo_id, filename))

    def _send_blob(self, blob: Blob, headers: dict[str, str], key: tuple[str, str]) -> None:
        failure = None if self._head else self.server.hub._take_failure(key)
        if failure is not None:
            extra = {"Retry-After": failure.retry_after} if failure.retry_after is not None else {}
            self._error(failure.status, None, "Injected failure of the local test Hub", extra)
            return
        start, end, status = 0, blob.size, 200
        requested = self.headers.get("Range")
        if requested:
            parsed = _parse_range(requested, blob.size)
            if parsed is None:
                self._send(416, {**headers, "Content-Range": f"bytes */{blob.size}"})
                return
            if parsed != "ignore":
                start, end = parsed
                status = 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        headers["Content-Length"] = str(end - start)
        self._send(status, headers)
        if not self._head:
            self._write_body(blob, start, end, key)

    def _write_body(self, blob: Blob, start: int, end: int, key: tuple[str, str]) -> None:
        hub = self.server.hub
        with hub._lock:
            hub._sending += 1
        try:
            self._write_chunks(blob, start, end, key)
        finally:
            with hub._lock:
                hub._sending -= 1

    def _write_chunks(self, blob: Blob, start: int, end: int, key: tuple[str, str]) -> None:
        hub = self.server.hub
        drop_at = hub._take_drop(key, end - start)
        corrupt = hub._take_corrupt(key)
        sent = 0
        for chunk in blob.content.iter_range(start, end, hub._chunk_size()):
            data = chunk.translate(_INVERT) if corrupt else chunk
            if drop_at is not None and sent + len(data) > drop_at:
                data = data[: drop_at - sent]
                if data:
                    hub._throttle_wait(len(data))
                    self.wfile.write(data)
                    self._record.bytes_sent += len(data)
                raise _Abort
            hub._throttle_wait(len(data))
            self.wfile.write(data)
            sent += len(data)
            self._record.bytes_sent += len(data)


class HubServer:
    """Local Hub: model API, tree listing, resolve/CDN downloads, failure knobs and request log."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = DEFAULT_TOKEN,
        cdn: Literal["same-origin", "separate-origin"] = "same-origin",
        page_size: int = 1000,
        lfs_threshold: int = 10 * 1024,
        full_api_config: bool = False,
        strict_tokens: bool = False,
    ) -> None:
        self.host = host
        self.cdn = cdn
        self.lfs_threshold = lfs_threshold
        self.full_api_config = full_api_config
        self._initial = {"page_size": page_size, "strict_tokens": strict_tokens, "token": token}
        self.page_size = page_size
        self.strict_tokens = strict_tokens
        self.token = token
        self.tokens: set[str] = {token} if token else set()
        self._lock = threading.RLock()
        self._repos: dict[str, Repo] = {}
        self._blobs: dict[str, Blob] = {}
        self._records: list[HubRequest] = []
        self._drops: list[_Fault] = []
        self._corrupts: list[_Fault] = []
        self._failures: list[_StatusFault] = []
        self._sending = 0
        self._hidden: list[_HiddenHash] = []
        self._rate: float | None = None
        self._throttle_lock = threading.Lock()
        self._throttle_clock = 0.0
        self._down: DownMode | None = None
        self._connections: set[socket.socket] = set()
        self._servers: dict[str, tuple[_HubHTTPServer, threading.Thread]] = {}
        self._ports: dict[str, int] = {"hub": port, "cdn": 0}

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving on loopback (idempotent) and return the base URL."""
        with self._lock:
            if not self._servers:
                self._start_servers()
        return self.url

    def stop(self) -> None:
        """Stop serving and drop every open connection."""
        with self._lock:
            self._stop_servers()
            self._down = None

    def __enter__(self) -> HubServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the Hub (what `HF_ENDPOINT` / `endpoint=` should be)."""
        if not self._ports["hub"]:
            raise RuntimeError("HubServer is not started")
        return f"http://{self.host}:{self._ports['hub']}"

    @property
    def cdn_url(self) -> str:
        """Base URL LFS downloads are redirected to."""
        if self.cdn == "separate-origin":
            return f"http://{self.host}:{self._ports['cdn']}"
        return self.url

    def reset(self) -> None:
        """Forget repos, tokens added later, faults and recorded requests; bring the Hub back up."""
        if self._down is not None:
            self.set_down(False)
        with self._lock:
            self._repos.clear()
            self._blobs.clear()
            self._records.clear()
            self._drops.clear()
            self._corrupts.clear()
            self._failures.clear()
            self._hidden.clear()
            self.page_size = int(self._initial["page_size"] or 1000)
            self.strict_tokens = bool(self._initial["strict_tokens"])
            initial_token = self._initial["token"]
            self.token = str(initial_token) if initial_token else None
            self.tokens = {self.token} if self.token else set()
        self.throttle(None)

    def _start_servers(self) -> None:
        roles = ["hub", "cdn"] if self.cdn == "separate-origin" else ["hub"]
        for role in roles:
            server = _HubHTTPServer((self.host, self._ports[role]), self, role)
            self._ports[role] = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"hub-{role}"
            )
            thread.start()
            self._servers[role] = (server, thread)

    def _stop_servers(self) -> None:
        servers = list(self._servers.values())
        self._servers.clear()
        for server, _thread in servers:
            server.shutdown()
            server.server_close()
        self._close_connections()
        for _server, thread in servers:
            thread.join(timeout=5)

    def _close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def _track(self, connection: socket.socket, alive: bool) -> None:
        with self._lock:
            if alive:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # -- repos --------------------------------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, FileValue] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        gated: GatedMode = False,
        private: bool = False,
        disabled: bool = False,
        pipeline_tag: str | None = None,
        library_name: str | None = None,
        tags: Sequence[str] = (),
        license: str | None = None,
        card_data: Mapping[str, Any] | None = None,
        downloads: int = 0,
        downloads_all_time: int | None = None,
        likes: int = 0,
        trending_score: int = 0,
        created_at: datetime | None = None,
        last_modified: datetime | None = None,
        authorized_tokens: Iterable[str] | None = None,
        apps: Sequence[str] = (),
        gitattributes: bool = True,
        message: str = "Initial commit",
    ) -> str:
        """Create a model repo with one commit on `main`; returns the commit sha.

        Without a README.md in `files`, one is written whose YAML front matter (the Hub's `cardData`)
        holds license, library_name, pipeline_tag, tags and `card_data`.
        """
        contents: dict[str, FileValue] = {}
        if gitattributes:
            contents[".gitattributes"] = GITATTRIBUTES
        if config is not None:
            contents["config.json"] = json.dumps(config, indent=2)
        front = {
            "license": license,
            "library_name": library_name,
            "pipeline_tag": pipeline_tag,
            "tags": list(tags) or None,
            **(card_data or {}),
        }
        front = {k: v for k, v in front.items() if v is not None}
        if front:
            name = repo_id.rsplit("/", 1)[-1]
            contents["README.md"] = (
                f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n# {name}\n\n"
                "Synthetic model repository served by the local test Hub.\n"
            )
        contents.update(files or {})
        now = datetime.now(UTC)
        created = created_at or last_modified or now
        if gated is True:
            gated = "auto"
        repo = Repo(
            repo_id=repo_id,
            created_at=created,
            gated=gated,
            private=private,
            disabled=disabled,
            downloads=downloads,
            downloads_all_time=downloads if downloads_all_time is None else downloads_all_time,
            likes=likes,
            trending_score=trending_score,
            pipeline_tag=pipeline_tag,
            library_name=library_name,
            extra_tags=list(tags),
            apps=list(apps),
            authorized_tokens=set(authorized_tokens) if authorized_tokens is not None else None,
        )
        blobs = self._make_blobs(contents)
        with self._lock:
            if repo_id in self._repos:
                raise ValueError(f"repo {repo_id} already exists")
            sha = new_commit_sha(repo_id, None, blobs)
            repo.commits[sha] = Commit(sha, blobs, last_modified or created, message, None)
            repo.branches["main"] = sha
            self._repos[repo_id] = repo
            self._index_blobs(blobs)
        return sha

    def add_commit(
        self,
        repo_id: str,
        files: Mapping[str, FileValue] | None = None,
        *,
        branch: str = "main",
        delete: Iterable[str] = (),
        message: str = "Update files",
        date: datetime | None = None,
    ) -> str:
        """Commit added/changed/deleted files on a branch (created from main if new); returns the sha."""
        blobs = self._make_blobs(files or {})
        with self._lock:
            repo = self._repos[repo_id]
            parent_sha = repo.branches.get(branch) or repo.branches["main"]
            tree = dict(repo.commits[parent_sha].files)
            for path in delete:
                tree.pop(path, None)
            tree.update(blobs)
            sha = new_commit_sha(repo_id, parent_sha, tree)
            repo.commits[sha] = Commit(sha, tree, date or datetime.now(UTC), message, parent_sha)
            repo.branches[branch] = sha
            self._index_blobs(blobs)
        return sha

    def add_large_file(
        self,
        repo_id: str,
        path_in_repo: str,
        *,
        size: int | None = None,
        source_path: str | Path | None = None,
        seed: int = 0,
        prefix: bytes = b"",
        sha256: str | None = None,
        branch: str = "main",
    ) -> str:
        """Commit a large LFS file backed by a disk file or generated on the fly (never held in RAM)."""
        content: FileContent
        if source_path is not None:
            content = DiskContent(source_path)
        elif size is not None:
            content = GeneratedContent(size, seed=seed, prefix=prefix)
        else:
            raise ValueError("give size= (generated content) or source_path=")
        blob = Blob.from_content(content, lfs=True, sha256=sha256)
        return self.add_commit(repo_id, {path_in_repo: blob}, branch=branch, message=f"Add {path_in_repo}")

    def create_branch(self, repo_id: str, branch: str, *, revision: str = "main") -> str:
        """Point a new branch at a revision; returns its commit sha."""
        with self._lock:
            repo = self._repos[repo_id]
            commit = repo.resolve(revision)
            if commit is None:
                raise KeyError(revision)
            repo.branches[branch] = commit.sha
            return commit.sha

    def create_tag(self, repo_id: str, tag: str, *, revision: str = "main") -> str:
        """Create a git tag at a revision; returns its commit sha."""
        with self._lock:
            repo = self._repos[repo_id]
            commit = repo.resolve(revision)
            if commit is None:
                raise KeyError(revision)
            repo.git_tags[tag] = commit.sha
            return commit.sha

    def update_repo(self, repo_id: str, **changes: Any) -> None:
        """Change Hub-side metadata (downloads, likes, gated, private, disabled, ...) of a repo."""
        with self._lock:
            repo = self._repos[repo_id]
            for key, value in changes.items():
                if not hasattr(repo, key) or key.startswith("_") or key in ("commits", "branches", "git_tags"):
                    raise AttributeError(key)
                stored = value
                if key == "gated" and value is True:
                    stored = "auto"
                if key == "authorized_tokens" and value is not None:
                    stored = set(value)
                setattr(repo, key, stored)

    def remove_repo(self, repo_id: str) -> None:
        """Delete a repo."""
        with self._lock:
            self._repos.pop(repo_id, None)

    def repo(self, repo_id: str) -> Repo:
        """The stored repo (commits, refs, metadata)."""
        with self._lock:
            return self._repos[repo_id]

    def commit_sha(self, repo_id: str, revision: str = "main") -> str:
        """Commit sha a revision resolves to."""
        with self._lock:
            commit = self._repos[repo_id].resolve(revision)
            if commit is None:
                raise KeyError(revision)
            return commit.sha

    def blob(self, repo_id: str, filename: str, revision: str = "main") -> Blob:
        """Stored file (size, sha256, git oid, lfs flag, content) at a revision."""
        with self._lock:
            commit = self._repos[repo_id].resolve(revision)
            if commit is None:
                raise KeyError(revision)
            return commit.files[filename]

    def add_token(self, token: str) -> None:
        """Accept another token as valid."""
        with self._lock:
            self.tokens.add(token)

    def _make_blobs(self, files: Mapping[str, FileValue]) -> dict[str, Blob]:
        blobs: dict[str, Blob] = {}
        for path, value in files.items():
            if isinstance(value, Blob):
                blobs[path.strip("/")] = value
                continue
            content = as_content(value)
            lfs = isinstance(value, DiskContent | GeneratedContent) or is_lfs_path(
                path, content.size, self.lfs_threshold
            )
            blobs[path.strip("/")] = Blob.from_content(content, lfs=lfs)
        return blobs

    def _index_blobs(self, blobs: Mapping[str, Blob]) -> None:
        for blob in blobs.values():
            if blob.lfs:
                self._blobs[blob.sha256] = blob

    def _repos_get(self, repo_id: str) -> Repo | None:
        with self._lock:
            return self._repos.get(repo_id)

    def _blob_by_sha(self, sha256: str) -> Blob | None:
        with self._lock:
            return self._blobs.get(sha256)

    def _split_repo(self, segments: list[str]) -> tuple[str, list[str]]:
        if not segments:
            return "", []
        with self._lock:
            known = set(self._repos)
        two = "/".join(segments[:2])
        if len(segments) >= 2 and two in known:
            return two, segments[2:]
        if segments[0] in known:
            return segments[0], segments[1:]
        if len(segments) >= 2 and segments[1] not in ROUTE_KEYWORDS:
            return two, segments[2:]
        return segments[0], segments[1:]

    def _cdn_location(self, blob: Blob, repo_id: str, filename: str, commit: str) -> str:
        query = urlencode({"repo": repo_id, "file": filename, "commit": commit})
        path = f"/cdn-lfs/{quote(repo_id)}/{blob.sha256}?{query}"
        return f"{self.cdn_url}{path}" if self.cdn == "separate-origin" else path

    # -- JSON views ---------------------------------------------------------------------------------
    def _model_json(self, repo: Repo, commit: Commit, fields: Sequence[str], *, blobs: bool) -> dict[str, Any]:
        """Model API object restricted to `fields` (those the repo has)."""
        card = repo.derived(commit, "card", read_card_data)
        config = repo.derived(commit, "config", lambda c: read_json_file(c, "config.json"))
        tokenizer = repo.derived(commit, "tokenizer", lambda c: read_json_file(c, "tokenizer_config.json"))
        params = repo.derived(commit, "safetensors", safetensors_parameters)
        pipeline_tag = repo.pipeline_tag or card.get("pipeline_tag")
        library = repo.library_name or card.get("library_name") or ("transformers" if config else None)
        values: dict[str, Any] = {
            "_id": hashlib.sha1(repo.repo_id.encode(), usedforsecurity=False).hexdigest()[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.author,
            "sha": commit.sha,
            "lastModified": iso(commit.date),
            "createdAt": iso(repo.created_at),
            "private": repo.private,
            "disabled": repo.disabled,
            "gated": repo.gated,
            "downloads": repo.downloads,
            "downloadsAllTime": repo.downloads_all_time,
            "likes": repo.likes,
            "trendingScore": repo.trending_score,
            "tags": _model_tags(repo, commit, card, config, tokenizer, pipeline_tag, library),
            "siblings": [
                self._without_hash(repo.repo_id, path, "info", _sibling(path, commit.files[path], blobs=blobs))
                for path in sorted(commit.files)
            ],
            "spaces": [],
            "usedStorage": repo.used_storage(),
        }
        if library:
            values["library_name"] = library
        if pipeline_tag:
            values["pipeline_tag"] = pipeline_tag
        if card:
            values["cardData"] = card
            if "model-index" in card:
                values["model-index"] = card["model-index"]
            base = card.get("base_model")
            if base:
                values["baseModels"] = {"relation": "finetune", "models": _as_list(base)}
        if config is not None:
            values["config"] = self._api_config(config, tokenizer)
            if library == "transformers" and config.get("architectures"):
                values["transformersInfo"] = {
                    "auto_model": "AutoModelForCausalLM" if pipeline_tag in (None, "text-generation") else "AutoModel",
                    "pipeline_tag": pipeline_tag,
                    "processor": "AutoTokenizer",
                }
        if params:
            values["safetensors"] = {"parameters": dict(params), "total": sum(params.values())}
        return {key: values[key] for key in fields if key in values}

    def _api_config(self, config: Mapping[str, Any], tokenizer: Mapping[str, Any] | None) -> dict[str, Any]:
        if self.full_api_config:
            result = dict(config)
        else:
            result = {k: config[k] for k in API_CONFIG_KEYS if k in config}
            quant = config.get("quantization_config")
            if isinstance(quant, dict):
                result["quantization_config"] = {k: quant[k] for k in API_QUANT_KEYS if k in quant}
        if tokenizer:
            result["tokenizer_config"] = {k: tokenizer[k] for k in API_TOKENIZER_KEYS if k in tokenizer}
        return result

    def _list_models(self, query: dict[str, list[str]], token: str | None) -> tuple[list[dict[str, Any]], int | None]:
        """Filter, sort and page repos for `GET /api/models`; returns (page, next cursor)."""

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values else None

        expand = query.get("expand", []) + query.get("expand[]", [])
        unknown = sorted(set(expand) - EXPAND_PROPERTIES)
        if unknown:
            raise ValueError(f'"expand" must be one of {sorted(EXPAND_PROPERTIES)}; got {unknown}')
        if expand and (_truthy(query.get("full")) or _truthy(query.get("config"))):
            raise ValueError("expand cannot be combined with full or config")
        fields: list[str]
        if expand:
            fields = ["_id", "id", *expand]
        else:
            fields = list(LIST_FIELDS)
            if _truthy(query.get("full")):
                fields += LIST_FULL_FIELDS
            if _truthy(query.get("cardData")):
                fields.append("cardData")
            if _truthy(query.get("config")):
                fields.append("config")
        search = (one("search") or "").lower()
        author = one("author")
        pipeline_tag = one("pipeline_tag")
        filters = [f.lower() for value in query.get("filter", []) for f in value.split(",") if f]
        gated = one("gated")
        apps = [a for value in query.get("apps", []) for a in value.split(",") if a]
        bounds = _parameter_bounds(one("num_parameters"))
        sort = one("sort")
        if sort is not None and sort not in SORT_KEYS:
            raise ValueError(f"invalid sort {sort!r}")
        direction = int(one("direction") or -1)
        limit = int(one("limit") or 0) or None
        cursor = int(one("cursor") or 0)

        with self._lock:
            valid = token is not None and token in self.tokens
            rows: list[dict[str, Any]] = []
            for repo in self._repos.values():
                if repo.private and not (valid and (repo.authorized_tokens is None or token in repo.authorized_tokens)):
                    continue
                if search and search not in repo.repo_id.lower():
                    continue
                if author and repo.author != author:
                    continue
                commit = repo.head()
                view = self._model_json(repo, commit, [*EXPAND_PROPERTIES, *INFO_FIELDS], blobs=False)
                tags = {t.lower() for t in view.get("tags", [])}
                if pipeline_tag and view.get("pipeline_tag") != pipeline_tag:
                    continue
                if any(f not in tags for f in filters):
                    continue
                if gated is not None and bool(repo.gated) != _truthy([gated]):
                    continue
                if any(app not in repo.apps for app in apps):
                    continue
                if bounds is not None:
                    total = (view.get("safetensors") or {}).get("total")
                    if total is None or not bounds[0] <= total <= bounds[1]:
                        continue
                rows.append(view)
        if sort is not None:
            key = SORT_KEYS[sort]
            rows.sort(key=lambda row: row.get(key) or 0, reverse=direction == -1)
        page_size = min(limit or self.page_size, self.page_size)
        page = rows[cursor : cursor + page_size]
        next_cursor = cursor + page_size if cursor + page_size < len(rows) else None
        return [{k: row[k] for k in fields if k in row} for row in page], next_cursor

    def _refs_json(self, repo: Repo, *, include_prs: bool) -> dict[str, Any]:
        with self._lock:
            payload: dict[str, Any] = {
                "branches": [
                    {"name": name, "ref": f"refs/heads/{name}", "targetCommit": sha}
                    for name, sha in repo.branches.items()
                ],
                "converts": [],
                "tags": [
                    {"name": name, "ref": f"refs/tags/{name}", "targetCommit": sha}
                    for name, sha in repo.git_tags.items()
                ],
            }
        if include_prs:
            payload["pullRequests"] = []
        return payload

    # -- failure knobs ------------------------------------------------------------------------------
    def throttle(self, bytes_per_second: float | None) -> None:
        """Cap the total download rate of file bodies (all connections together); None removes it."""
        with self._throttle_lock:
            self._rate = float(bytes_per_second) if bytes_per_second else None
            self._throttle_clock = time.monotonic()

    def drop_after(self, filename: str, n_bytes: int, *, times: int = 1, repo_id: str | None = None) -> None:
        """Close the connection after `n_bytes` of the body of the next `times` downloads of a file."""
        with self._lock:
            self._drops.append(_Fault(filename, repo_id, times, n_bytes))

    def corrupt(self, filename: str, *, times: int | None = None, repo_id: str | None = None) -> None:
        """Serve flipped bytes (same size, wrong sha256) for a file; `times=None` until cleared."""
        with self._lock:
            self._corrupts.append(_Fault(filename, repo_id, times))

    def fail_download(
        self,
        filename: str,
        status: int = 503,
        *,
        times: int = 1,
        retry_after: float | None = None,
        repo_id: str | None = None,
    ) -> None:
        """Answer the next `times` downloads (GET) of a file with `status` (e.g. 503, or 429 + Retry-After)."""
        after = None if retry_after is None else f"{retry_after:g}"
        with self._lock:
            self._failures.append(_StatusFault(filename, repo_id, times, status, after))

    def hide_hashes(
        self,
        filename: str | None = None,
        *,
        sources: Iterable[str] = ("info", "tree", "resolve"),
        repo_id: str | None = None,
    ) -> None:
        """Advertise no hash for a file (all files when None) in model info (`lfs`), the tree API (`lfs`)
        and/or the resolve headers (`ETag`, `X-Linked-Etag`), as a mirror that does not keep them would."""
        wanted = frozenset(sources)
        unknown = wanted - {"info", "tree", "resolve"}
        if unknown:
            raise ValueError(f"unknown hash sources: {sorted(unknown)}")
        with self._lock:
            self._hidden.append(_HiddenHash(filename, repo_id, wanted))

    def clear_faults(self) -> None:
        """Remove pending drops, corruptions, injected statuses, hidden hashes and the throttle."""
        with self._lock:
            self._drops.clear()
            self._corrupts.clear()
            self._failures.clear()
            self._hidden.clear()
        self.throttle(None)

    def _hides(self, repo_id: str, filename: str, source: str) -> bool:
        with self._lock:
            return any(
                source in h.sources
                and (h.filename is None or h.filename == filename)
                and (h.repo_id is None or h.repo_id == repo_id)
                for h in self._hidden
            )

    def _without_hash(self, repo_id: str, filename: str, source: str, entry: dict[str, Any]) -> dict[str, Any]:
        if self._hides(repo_id, filename, source):
            entry.pop("lfs", None)
        return entry

    def _take_failure(self, key: tuple[str, str]) -> _StatusFault | None:
        with self._lock:
            for fault in self._failures:
                if fault.matches(key):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._failures.remove(fault)
                    return fault
        return None

    def set_down(self, down: bool = True, *, mode: DownMode = "refuse") -> None:
        """Simulate an unreachable Hub: `refuse` connections, `reset` them unanswered, or answer `503`."""
        with self._lock:
            previous = self._down
            if down:
                self._down = mode
                if mode == "refuse" and self._servers:
                    self._stop_servers()
                elif mode != "refuse":
                    self._close_connections()
            else:
                self._down = None
                if previous == "refuse" and not self._servers:
                    self._start_servers()

    def _take_drop(self, key: tuple[str, str], body_length: int) -> int | None:
        with self._lock:
            for fault in self._drops:
                if fault.matches(key) and fault.n_bytes < body_length:
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._drops.remove(fault)
                    return fault.n_bytes
        return None

    def _take_corrupt(self, key: tuple[str, str]) -> bool:
        with self._lock:
            for fault in self._corrupts:
                if fault.matches(key):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._corrupts.remove(fault)
                    return True
        return False

    def _chunk_size(self) -> int:
        rate = self._rate
        if rate is None:
            return 1024 * 1024
        return int(max(4096, min(256 * 1024, rate / 20)))

    def _throttle_wait(self, n_bytes: int) -> None:
        with self._throttle_lock:
            if self._rate is None:
                return
            now = time.monotonic()
            begin = max(now, self._throttle_clock)
            self._throttle_clock = begin + n_bytes / self._rate
            delay = self._throttle_clock - now
        if delay > 0:
            time.sleep(delay)

    # -- request accounting -------------------------------------------------------------------------
    def _begin(self, method: str, path: str, query: str, headers: Any) -> HubRequest:
        record = HubRequest(method, path, query, headers.get("Range"), bool(headers.get("Authorization")))
        with self._lock:
            self._records.append(record)
        return record

    @property
    def requests(self) -> list[HubRequest]:
        """Snapshot of the requests received since the last reset."""
        with self._lock:
            return list(self._records)

    def active_downloads(self) -> int:
        """File bodies being sent right now (a stopped downloader leaves none)."""
        with self._lock:
            return self._sending

    def reset_requests(self) -> None:
        """Forget recorded requests (and byte counts)."""
        with self._lock:
            self._records.clear()

    def count(self, path_prefix: str = "", *, method: str | None = None) -> int:
        """Number of recorded requests whose (unquoted) path starts with `path_prefix`."""
        return sum(
            1
            for r in self.requests
            if r.path.startswith(path_prefix) and (method is None or r.method == method.upper())
        )

    def bytes_sent(self, filename: str | None = None, *, repo_id: str | None = None) -> int:
        """File body bytes sent since the last reset, optionally for one file (resolve and CDN)."""
        return sum(
            r.bytes_sent
            for r in self.requests
            if (filename is None or r.filename == filename) and (repo_id is None or r.repo_id == repo_id)
        )

    def downloads(self, filename: str, *, repo_id: str | None = None) -> list[HubRequest]:
        """GET requests that returned a body of `filename` (200/206, including dropped ones)."""
        return [
            r
            for r in self.requests
            if r.method == "GET"
            and r.filename == filename
            and r.status in (200, 206)
            and (repo_id is None or r.repo_id == repo_id)
        ]


# -- helpers ------------------------------------------------------------------------------------------
def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[0].lower() in ("1", "true", "yes", "on")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _content_type(filename: str) -> str:
    if filename.endswith(".json"):
        return "application/json; charset=utf-8"
    if filename.endswith((".md", ".txt", ".py", ".gitattributes")) or filename == ".gitattributes":
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _parse_range(value: str, size: int) -> tuple[int, int] | Literal["ignore"] | None:
    """(start, end-exclusive); "ignore" for a header we do not support; None if unsatisfiable."""
    match = _RANGE_RE.fullmatch(value)
    if not match or (not match[1] and not match[2]):
        return "ignore"
    if not match[1]:
        suffix = int(match[2])
        if suffix == 0 or size == 0:
            return None
        return max(0, size - suffix), size
    start = int(match[1])
    end = min(int(match[2]) + 1, size) if match[2] else size
    if start >= size or start >= end:
        return None
    return start, end


def _parameter_bounds(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    low, high = 0.0, float("inf")
    for part in value.split(","):
        name, _, amount = part.partition(":")
        amount = amount.strip().upper()
        unit = amount[-1] if amount and amount[-1] in _UNITS else ""
        number = float(amount[: len(amount) - len(unit)]) * _UNITS[unit]
        if name.strip() == "min":
            low = number
        elif name.strip() == "max":
            high = number
        else:
            raise ValueError(f"invalid num_parameters {value!r}")
    return low, high


def _sibling(path: str, blob: Blob, *, blobs: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"rfilename": path}
    if blobs:
        entry["blobId"] = blob.git_oid
        entry["size"] = blob.size
        if blob.lfs:
            entry["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
    return entry


def _model_tags(
    repo: Repo,
    commit: Commit,
    card: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    tokenizer: Mapping[str, Any] | None,
    pipeline_tag: str | None,
    library: str | None,
) -> list[str]:
    tags: list[str] = []
    if library:
        tags.append(library)
    if any(path.endswith(".safetensors") for path in commit.files):
        tags.append("safetensors")
    if config and config.get("model_type"):
        tags.append(str(config["model_type"]))
    if pipeline_tag:
        tags.append(pipeline_tag)
    tags += [str(t) for t in _as_list(card.get("tags") or [])]
    tags += repo.extra_tags
    if tokenizer and tokenizer.get("chat_template"):
        tags.append("conversational")
    for base in _as_list(card.get("base_model") or []):
        tags.append(f"base_model:{base}")
    if card.get("license"):
        tags.append(f"license:{card['license']}")
    tags.append("region:us")
    return list(dict.fromkeys(tags))


def _tree_listing(commit: Commit, path: str, *, recursive: bool) -> list[tuple[str, Blob | None]] | None:
    """Entries (path, blob or None for a directory) under `path`; None if it is not a directory."""
    prefix = path.strip("/")
    if prefix in commit.files:
        return None
    base = prefix + "/" if prefix else ""
    paths = [p for p in commit.files if p.startswith(base)]
    if prefix and not paths:
        return None
    directories: set[str] = set()
    files: list[str] = []
    for p in paths:
        parts = p[len(base) :].split("/")
        if recursive:
            directories.update(base + "/".join(parts[:i]) for i in range(1, len(parts)))
            files.append(p)
        elif len(parts) == 1:
            files.append(p)
        else:
            directories.add(base + parts[0])
    entries: list[tuple[str, Blob | None]] = [(d, None) for d in directories]
    entries += [(f, commit.files[f]) for f in files]
    return sorted(entries, key=lambda entry: entry[0])


def _tree_entry(repo: Repo, commit: Commit, path: str, blob: Blob | None, *, expand: bool) -> dict[str, Any]:
    if blob is None:
        children = sorted(f"{p} {b.git_oid}" for p, b in commit.files.items() if p.startswith(path + "/"))
        oid = hashlib.sha1("\n".join(children).encode(), usedforsecurity=False).hexdigest()
        entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    else:
        entry = {"type": "file", "oid": blob.git_oid, "size": blob.size, "path": path}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": blob.size, "pointerSize": blob.pointer_size}
    if expand:
        changed = repo.last_change(commit, path)
        entry["lastCommit"] = {"id": changed.sha, "title": changed.title, "date": iso(changed.date)}
        if blob is not None:
            entry["securityFileStatus"] = {
                "status": "safe",
                "avScan": {"virusFound": False, "virusNames": None},
                "pickleImportScan": None,
            }
    return entry


# -- realistic model repos ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelRepo:
    """What `make_model_repo` created, for assertions."""

    repo_id: str
    commit: str
    config: dict[str, Any]
    parameters: dict[str, int]
    weight_files: list[str]
    files: dict[str, Blob] = field(repr=False)

    @property
    def total_parameters(self) -> int:
        """Sum of parameters over all dtypes."""
        return sum(self.parameters.values())

    @property
    def weight_bytes(self) -> int:
        """Size of all safetensors files together."""
        return sum(self.files[name].size for name in self.weight_files)


def make_model_repo(
    hub: HubServer,
    repo_id: str,
    *,
    architectures: Sequence[str] = ("LlamaForCausalLM",),
    model_type: str = "llama",
    num_hidden_layers: int = 2,
    hidden_size: int | None = None,
    intermediate_size: int | None = None,
    num_attention_heads: int = 4,
    num_key_value_heads: int | None = None,
    vocab_size: int | None = None,
    max_position_embeddings: int = 4096,
    dtype: str = "BF16",
    norm_dtype: str | None = None,
    tie_word_embeddings: bool = False,
    total_bytes: int | None = None,
    shards: int = 1,
    extra_config: Mapping[str, Any] | None = None,
    extra_files: Mapping[str, FileValue] | None = None,
    chat_template: bool = True,
    seed: int = 0,
    in_memory_limit: int = 64 * 1024 * 1024,
    pipeline_tag: str | None = "text-generation",
    library_name: str | None = "transformers",
    license: str | None = "apache-2.0",
    tags: Sequence[str] = (),
    **repo_options: Any,
) -> ModelRepo:
    """Create a realistic transformers repo (config, tokenizer, README, real safetensors) on `hub`.

    `total_bytes` sizes the weights (by choosing the vocabulary size); shards > 1 writes
    `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json`. Shards bigger than
    `in_memory_limit` are generated on the fly instead of held in memory. Other keyword arguments
    (gated, downloads, likes, card_data, private, ...) go to `HubServer.add_repo`.
    """
    if dtype not in DTYPE_SIZES:
        raise ValueError(f"unknown dtype {dtype}")
    kv_heads = num_key_value_heads or num_attention_heads

    def shape_for(hidden: int) -> dict[str, Any]:
        return {
            "num_hidden_layers": num_hidden_layers,
            "hidden_size": hidden,
            "intermediate_size": intermediate_size or hidden * 3,
            "num_attention_heads": num_attention_heads,
            "num_key_value_heads": kv_heads,
            "dtype": dtype,
            "norm_dtype": norm_dtype,
            "tie_word_embeddings": tie_word_embeddings,
        }

    if hidden_size is None:
        hidden_size = 256
        if total_bytes is not None:
            # Largest width whose layers take at most half the budget; embeddings fill the rest.
            fitting = [
                h
                for h in (4096, 2048, 1024, 512, 256, 128, 64, 32, 16)
                if data_size(llama_tensor_specs(vocab_size=0, **shape_for(h))) <= total_bytes // 2
            ]
            hidden_size = fitting[0] if fitting else 16
    shape = shape_for(hidden_size)
    if vocab_size is None:
        vocab_size = 1024
        if total_bytes is not None:
            body = data_size(llama_tensor_specs(vocab_size=0, **shape))
            if body > total_bytes:
                raise ValueError(f"total_bytes={total_bytes} is smaller than the layers alone ({body} bytes)")
            per_token = hidden_size * DTYPE_SIZES[dtype] * (1 if tie_word_embeddings else 2)
            vocab_size = max(16, (total_bytes - body) // per_token)
    specs = llama_tensor_specs(vocab_size=vocab_size, **shape)
    intermediate = int(shape["intermediate_size"])
    config: dict[str, Any] = {
        "architectures": list(architectures),
        "attention_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "head_dim": hidden_size // num_attention_heads,
        "hidden_act": "silu",
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "max_position_embeddings": max_position_embeddings,
        "model_type": model_type,
        "num_attention_heads": num_attention_heads,
        "num_hidden_layers": num_hidden_layers,
        "num_key_value_heads": kv_heads,
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "tie_word_embeddings": tie_word_embeddings,
        "torch_dtype": TORCH_DTYPES.get(dtype, "bfloat16"),
        "transformers_version": "4.46.0",
        "use_cache": True,
        "vocab_size": vocab_size,
        **(extra_config or {}),
    }
    files: dict[str, FileValue] = {
        "config.json": json.dumps(config, indent=2) + "\n",
        "generation_config.json": json.dumps(
            {
                "bos_token_id": 1,
                "do_sample": True,
                "eos_token_id": 2,
                "temperature": 0.6,
                "top_p": 0.9,
                "transformers_version": "4.46.0",
            },
            indent=2,
        )
        + "\n",
        "tokenizer.json": json.dumps(_tokenizer_json(), indent=2),
        "tokenizer_config.json": json.dumps(_tokenizer_config(max_position_embeddings, chat_template), indent=2),
        "special_tokens_map.json": json.dumps(
            {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2
        ),
    }
    groups = split_into_shards(specs, shards)
    weight_files = [shard_filename(i, len(groups)) for i in range(len(groups))]
    for index, (name, group) in enumerate(zip(weight_files, groups, strict=True)):
        files[name] = _safetensors_content(group, seed=seed + index, in_memory_limit=in_memory_limit)
    if len(groups) > 1:
        weight_map = {spec.name: name for name, group in zip(weight_files, groups, strict=True) for spec in group}
        files["model.safetensors.index.json"] = json.dumps(
            {"metadata": {"total_size": data_size(specs)}, "weight_map": dict(sorted(weight_map.items()))},
            indent=2,
        )
    files.update(extra_files or {})
    sha = hub.add_repo(
        repo_id,
        files,
        pipeline_tag=pipeline_tag,
        library_name=library_name,
        license=license,
        tags=tags,
        **repo_options,
    )
    stored = dict(hub.repo(repo_id).commits[sha].files)
    return ModelRepo(repo_id, sha, config, parameter_counts(specs), weight_files, stored)


def _safetensors_content(specs: Sequence[TensorSpec], *, seed: int, in_memory_limit: int) -> FileValue:
    metadata = {"format": "pt"}
    size = len(encode_header(specs, metadata)) + data_size(specs)
    if size <= in_memory_limit:
        return build_safetensors(specs, metadata=metadata, seed=seed)
    return GeneratedContent(size, seed=seed, prefix=encode_header(specs, metadata))


def _tokenizer_json() -> dict[str, Any]:
    special = ["<unk>", "<s>", "</s>"]
    vocab = {token: i for i, token in enumerate(special)}
    for char in "abcdefghijklmnopqrstuvwxyz ":
        vocab["Ġ" if char == " " else char] = len(vocab)
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": i,
                "content": token,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i, token in enumerate(special)
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "vocab": vocab,
            "merges": [],
        },
    }


def _tokenizer_config(max_length: int, chat_template: bool) -> dict[str, Any]:
    config: dict[str, Any] = {
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": max_length,
        "pad_token": None,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": "<unk>",
    }
    if chat_template:
        config["chat_template"] = (
            "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
            "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
        )
    return config


def hours_ago(hours: float) -> datetime:
    """A UTC datetime `hours` before now (handy for created_at / last_modified)."""
    return datetime.now(UTC) - timedelta(hours=hours)
