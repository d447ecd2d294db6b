"""Which vLLM registry answers: the bundled list, or one refreshed from GitHub and cached in Redis.

A refresh fetches ``vllm/model_executor/models/registry.py`` of a vLLM tag through the GitHub
contents API (``GITHUB_API_URL``, ``GITHUB_TOKEN``), parses it with ``parse_registry_source`` (never
executed) and caches the result for ``VLLM_CACHE_TTL``. When GitHub cannot be reached the bundled
list answers and the response says so — a refresh failure is never a 500.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import redis
import requests
from flask import current_app

from portal.config import Settings
from portal.extensions import current_settings, redis_holder
from portal.services.vllm import ArchitectureRegistry, bundled_registry, parse_registry_source

log = logging.getLogger(__name__)

REGISTRY_PATH = "vllm/model_executor/models/registry.py"
CACHE_KEY = "mm:vllm:registry"
HTTP_TIMEOUT = 10.0
# How long a process trusts its parsed copy before re-reading the shared Redis value.
LOCAL_TTL = 5.0

_memo_lock = threading.Lock()
_memo: dict[str, Any] = {"at": 0.0, "stamp": None, "registry": None}


def default_ref() -> str:
    """The tag matching the bundled list (``v0.33.0``)."""
    version = bundled_registry().source.vllm_version
    return f"v{version}" if version else "main"


def _connection() -> redis.Redis | None:
    try:
        return redis_holder(current_app).connection
    except (KeyError, RuntimeError):
        return None


def fetch_from_github(settings: Settings, ref: str) -> dict[str, Any]:
    """Download and parse vLLM's registry.py at ``ref``; raises RuntimeError with the reason."""
    url = f"{settings.github_api_url.rstrip('/')}/repos/vllm-project/vllm/contents/{REGISTRY_PATH}"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if settings.github_token:
        headers["Authorization"] = f"Bearer {settings.github_token}"
    try:
        response = requests.get(url, params={"ref": ref}, headers=headers, timeout=(3.0, HTTP_TIMEOUT))
    except requests.RequestException as exc:
        raise RuntimeError(f"GitHub is unreachable ({settings.github_api_url}): {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise RuntimeError(f"GitHub answered {response.status_code} for {REGISTRY_PATH}@{ref}")
    try:
        body = response.json()
        text = base64.b64decode(str(body["content"]).replace("\n", "")).decode("utf-8")
        data = parse_registry_source(text)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise RuntimeError(f"GitHub's {REGISTRY_PATH}@{ref} could not be parsed: {exc}") from exc
    data["vllmVersion"] = ref.removeprefix("v")
    data["source"] = f"GitHub vllm-project/vllm {REGISTRY_PATH}@{ref}"
    return data


def refresh(ref: str | None = None) -> tuple[ArchitectureRegistry, str | None]:
    """Fetch from GitHub (or reuse the cached copy of that ref); on failure the bundled list and the reason."""
    settings: Settings = current_settings()
    wanted = ref or default_ref()
    conn = _connection()
    cached = _read_cached(conn)
    if cached is not None and cached.get("ref") == wanted:
        return _registry_from(cached), None
    try:
        data = fetch_from_github(settings, wanted)
    except RuntimeError as exc:
        log.warning("vLLM registry refresh failed: %s", exc)
        return bundled_registry(), str(exc)
    stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    payload = {"ref": wanted, "fetchedAt": stamp, "data": data}
    if conn is not None:
        try:
            conn.set(CACHE_KEY, json.dumps(payload), ex=max(1, int(settings.vllm_cache_ttl)))
        except redis.RedisError as exc:
            log.warning("vLLM registry cache write failed: %s", exc)
    with _memo_lock:
        _memo.update(at=0.0)
    return _registry_from(payload), None


def _read_cached(conn: redis.Redis | None) -> dict[str, Any] | None:
    if conn is None:
        return None
    try:
        raw = conn.get(CACHE_KEY)
    except redis.RedisError:
        return None
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _registry_from(payload: dict[str, Any]) -> ArchitectureRegistry:
    return ArchitectureRegistry.from_data(payload["data"], source="github", fetched_at=payload.get("fetchedAt"))


def active_registry() -> ArchitectureRegistry:
    """The refreshed registry while its cache lives, else the bundled one."""
    now = time.monotonic()
    with _memo_lock:
        if _memo["registry"] is not None and now - float(_memo["at"]) < LOCAL_TTL:
            registry: ArchitectureRegistry = _memo["registry"]
            return registry
    payload = _read_cached(_connection())
    stamp = payload.get("fetchedAt") if payload else None
    with _memo_lock:
        if stamp is not None and _memo["stamp"] == stamp and _memo["registry"] is not None:
            registry = _memo["registry"]
        elif payload is not None:
            try:
                registry = _registry_from(payload)
            except (ValueError, KeyError):
                registry = bundled_registry()
        else:
            registry = bundled_registry()
        _memo.update(at=now, stamp=stamp, registry=registry)
    return registry


def token() -> str:
    """Identifies the active list in cache keys (insights change when the list does)."""
    source = active_registry().source
    return f"{source.source}-{source.vllm_version}-{source.fetched_at or ''}"


def reset_memo() -> None:
    """Forget the process copy (tests)."""
    with _memo_lock:
        _memo.update(at=0.0, stamp=None, registry=None)
