"""Hugging Face Hub access: search and model details through ``huggingface_hub``, cached in Redis.

Every answer (search listings, model info, ``config.json``) is cached in Redis for
``HUGGINGFACE_CACHE_TTL`` so all gunicorn workers share it and a cache hit makes no network call.
Cache keys include the endpoint, so a mirror and huggingface.co never mix. Hub failures become
domain errors: 404 (unknown or private repo), 401/403 (gated: set ``HUGGINGFACE_API_TOKEN``),
502 (the Hub answered with an error), 503 (unreachable), 504 (timeout).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

# Telemetry would try to reach huggingface.co from air-gapped clusters; it must be off before import.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx2 as httpx  # huggingface_hub 2.x ships its HTTP client as httpx2
import redis
from huggingface_hub import HfApi, ModelInfo, get_session, hf_hub_url
from huggingface_hub.errors import (
    DisabledRepoError,
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status  # type: ignore[attr-defined]

from portal.config import Settings
from portal.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    PortalError,
    Unauthorized,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_SEARCH_LIMIT = 50
DEFAULT_SEARCH_LIMIT = 20
HTTP_TIMEOUT = 15.0
CACHE_PREFIX = "mm:hf:"
# Set when the Hub was unreachable: the portal shows a banner on every page for this long.
DOWN_KEY = "down"
DOWN_MARK_SECONDS = 60
# Hub sort names per our API names (the Hub's list endpoint only sorts descending).
SORT_FIELDS = {
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "last_modified",
    "trending": "trending_score",
}
SEARCH_EXPAND = [
    "author",
    "cardData",
    "config",
    "downloads",
    "gated",
    "lastModified",
    "library_name",
    "likes",
    "pipeline_tag",
    "safetensors",
    "sha",
    "tags",
]


@dataclass(frozen=True)
class SearchQuery:
    """A normalised Hub search."""

    q: str = ""
    author: str = ""
    pipeline_tag: str = ""
    library: str = ""
    license: str = ""
    tags: tuple[str, ...] = ()
    sort: str = "downloads"
    direction: str = "desc"
    limit: int = DEFAULT_SEARCH_LIMIT

    @classmethod
    def build(
        cls,
        *,
        q: str | None = None,
        author: str | None = None,
        pipeline_tag: str | None = None,
        library: str | None = None,
        license: str | None = None,
        tags: Sequence[str] | str | None = None,
        sort: str | None = None,
        direction: str | None = None,
        limit: int | None = None,
    ) -> SearchQuery:
        """Validate and normalise search parameters (tags: list or comma list, de-duplicated)."""
        raw_tags = tags.split(",") if isinstance(tags, str) else list(tags or [])
        seen: dict[str, None] = {}
        for tag in raw_tags:
            if tag.strip():
                seen.setdefault(tag.strip().lower(), None)
        sort_value = (sort or "downloads").strip() or "downloads"
        if sort_value not in SORT_FIELDS:
            raise InvalidInput(
                f"sort must be one of {', '.join(SORT_FIELDS)}", details={"fields": {"sort": ["unknown sort"]}}
            )
        dir_value = (direction or "desc").strip().lower() or "desc"
        if dir_value in ("-1", "descending"):
            dir_value = "desc"
        if dir_value in ("1", "ascending"):
            dir_value = "asc"
        if dir_value not in ("asc", "desc"):
            raise InvalidInput("direction must be asc or desc", details={"fields": {"direction": ["asc or desc"]}})
        count = DEFAULT_SEARCH_LIMIT if limit is None else limit
        if not 1 <= count <= MAX_SEARCH_LIMIT:
            raise InvalidInput(
                f"limit must be between 1 and {MAX_SEARCH_LIMIT}", details={"fields": {"limit": ["out of range"]}}
            )
        return cls(
            q=(q or "").strip(),
            author=(author or "").strip(),
            pipeline_tag=(pipeline_tag or "").strip(),
            library=(library or "").strip(),
            license=(license or "").strip().lower(),
            tags=tuple(seen),
            sort=sort_value,
            direction=dir_value,
            limit=count,
        )

    def cache_key(self) -> str:
        """A stable digest of the query."""
        raw = json.dumps(self.__dict__, sort_keys=True, default=list)
        return hashlib.sha256(raw.encode()).hexdigest()[:32]


class HubCache:
    """JSON values in Redis under the endpoint's namespace; Redis trouble means a miss, never an error."""

    def __init__(self, connection: redis.Redis | None, endpoint: str, ttl: float) -> None:
        self.connection = connection
        self.ttl = max(1, int(ttl))
        self.namespace = CACHE_PREFIX + hashlib.sha256(endpoint.encode()).hexdigest()[:12] + ":"

    def get(self, key: str) -> Any:
        """The cached value, or None."""
        if self.connection is None or self.ttl <= 0:
            return None
        try:
            raw = self.connection.get(self.namespace + key)
        except redis.RedisError as exc:
            log.warning("Hub cache read failed: %s", exc)
            return None
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except (ValueError, TypeError):
            return None

    def delete(self, key: str) -> None:
        """Forget a key."""
        if self.connection is None:
            return
        try:
            self.connection.delete(self.namespace + key)
        except redis.RedisError as exc:
            log.warning("Hub cache delete failed: %s", exc)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON value for the TTL."""
        if self.connection is None:
            return
        try:
            self.connection.set(self.namespace + key, json.dumps(value), ex=max(1, int(ttl or self.ttl)))
        except (redis.RedisError, TypeError, ValueError) as exc:
            log.warning("Hub cache write failed: %s", exc)


def _token_hint(settings: Settings) -> str:
    if settings.huggingface_api_token:
        return "the configured HUGGINGFACE_API_TOKEN has no access to it"
    return "set HUGGINGFACE_API_TOKEN to a token that has access"


def hub_token(settings: Settings) -> str | bool:
    """The token for huggingface_hub calls: False (not None) keeps it from using a token stored on this machine."""
    return settings.huggingface_api_token or False


def map_hub_error(exc: Exception, settings: Settings, what: str, details: dict[str, Any] | None = None) -> PortalError:
    """Turn a huggingface_hub / httpx error into a domain error with an actionable message.

    The one mapping for discovery, fit and installs: 404 `hf_not_found` (or `hf_revision_not_found`),
    401/403 `hf_gated`, `hf_unauthorized`, `hf_forbidden`, `hf_disabled`, 502 `hf_error`, 503
    `hf_unavailable`, 504 `hf_timeout`. `details` (e.g. the repo id and revision) are added to each.
    """
    error = _mapped(exc, settings, what)
    if details:
        error.details = {**details, **(error.details or {})}
    return error


def _mapped(exc: Exception, settings: Settings, what: str) -> PortalError:
    if isinstance(exc, GatedRepoError):
        status = exc.response.status_code if exc.response is not None else 401
        message = f"{what} is gated on Hugging Face: {_token_hint(settings)} (and accept its licence on the Hub)"
        cls: type[PortalError] = Forbidden if status == 403 else Unauthorized
        return cls(message, code="hf_gated", details={"hubStatus": status})
    if isinstance(exc, DisabledRepoError):
        return Forbidden(f"{what} is disabled on Hugging Face", code="hf_disabled")
    if isinstance(exc, RevisionNotFoundError):
        return NotFound(f"{what}: revision not found on Hugging Face", code="hf_revision_not_found")
    if isinstance(exc, EntryNotFoundError):
        return NotFound(f"{what}: a file is missing on Hugging Face", code="hf_not_found")
    if isinstance(exc, RepositoryNotFoundError):
        hint = "" if settings.huggingface_api_token else " (if it is private, set HUGGINGFACE_API_TOKEN)"
        return NotFound(f"{what} was not found on Hugging Face{hint}", code="hf_not_found")
    if isinstance(exc, HFValidationError):
        # huggingface_hub refuses the id before asking the Hub: no model can exist under it.
        return NotFound(f"{what} cannot exist on Hugging Face: {exc}", code="hf_not_found")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        if status == 401:
            return Unauthorized(
                f"Hugging Face refused the token for {what}: check HUGGINGFACE_API_TOKEN", code="hf_unauthorized"
            )
        if status == 403:
            return Forbidden(f"Hugging Face refused access to {what}: {_token_hint(settings)}", code="hf_forbidden")
        if status == 404:
            return NotFound(f"{what} was not found on Hugging Face", code="hf_not_found")
        if status in (502, 503, 504) or status == 0:
            return Unavailable(
                f"Hugging Face is unreachable ({settings.hf_endpoint} answered {status})",
                code="hf_unavailable",
                details={"hubStatus": status},
            )
        return UpstreamError(
            f"Hugging Face answered {status} for {what}", code="hf_error", details={"hubStatus": status}
        )
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeout(
            f"Hugging Face did not answer within {HTTP_TIMEOUT:g}s ({settings.hf_endpoint})", code="hf_timeout"
        )
    if isinstance(exc, httpx.HTTPError | OSError):
        return Unavailable(
            f"Hugging Face is unreachable ({settings.hf_endpoint}): {type(exc).__name__}", code="hf_unavailable"
        )
    return UpstreamError(f"Hugging Face request failed for {what}: {exc}", code="hf_error")


class HubClient:
    """The Hub for one settings object: ``HfApi`` with endpoint and token, plus the shared cache."""

    def __init__(self, settings: Settings, connection: redis.Redis | None) -> None:
        self.settings = settings
        self.endpoint = settings.hf_endpoint.rstrip("/")
        self.token: str | bool = hub_token(settings)
        self.api = HfApi(endpoint=self.endpoint, token=self.token)
        self.cache = HubCache(connection, self.endpoint, settings.huggingface_cache_ttl)

    def call(self, func: Callable[[], T], what: str, details: dict[str, Any] | None = None) -> T:
        """Run one Hub call: failures become domain errors (one mapping), and "unreachable" raises the banner."""
        try:
            result = func()
        except PortalError:
            raise
        except Exception as exc:  # every Hub failure maps to a domain error; never a 500
            error = map_hub_error(exc, self.settings, what, details)
            if isinstance(error, Unavailable | UpstreamTimeout):
                self.cache.set(DOWN_KEY, error.message, DOWN_MARK_SECONDS)
            raise error from exc
        self.cache.delete(DOWN_KEY)
        return result

    def unreachable_message(self) -> str | None:
        """The last "unreachable" message while it is recent (for the portal banner)."""
        value = self.cache.get(DOWN_KEY)
        return value if isinstance(value, str) else None

    def search(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Raw model objects (our JSON form) for a search: one Hub request, cached."""
        key = "search:" + query.cache_key()
        cached = self.cache.get(key)
        if isinstance(cached, list):
            return cached
        filters = list(query.tags)
        if query.library:
            filters.append(query.library)
        if query.license:
            filters.append(f"license:{query.license}")

        def run() -> list[dict[str, Any]]:
            # The query HfApi.list_models sends, made once: list_models retries a refused connection
            # five times with backoff (23 s), far too long for a page that searches as you type.
            params: list[tuple[str, Any]] = [("sort", SORT_FIELDS[query.sort]), ("direction", -1)]
            params += [("limit", query.limit)] + [("expand", e) for e in SEARCH_EXPAND]
            if query.q:
                params.append(("search", query.q))
            if query.author:
                params.append(("author", query.author))
            if query.pipeline_tag:
                params.append(("pipeline_tag", query.pipeline_tag))
            params += [("filter", f) for f in filters]
            response = get_session().get(
                f"{self.endpoint}/api/models",
                params=params,
                headers=build_hf_headers(token=self.token),
                timeout=HTTP_TIMEOUT,
            )
            hf_raise_for_status(response)
            rows = response.json()
            if not isinstance(rows, list):
                raise UpstreamError("Hugging Face answered the search with something other than a list")
            return [model_to_dict(ModelInfo(**row)) for row in rows[: query.limit]]  # type: ignore[no-untyped-call]

        models = self.call(run, "the model search")
        if query.direction == "asc":
            field = {"lastModified": "lastModified", "trending": "trendingScore"}.get(query.sort, query.sort)
            models.sort(key=lambda m: m.get(field) or 0)
        self.cache.set(key, models)
        return models

    def model_info(self, repo_id: str) -> dict[str, Any]:
        """One model's metadata (siblings with sizes, safetensors counts, card data), cached."""
        repo_id = validate_repo_id(repo_id)
        key = "info:" + repo_id
        cached = self.cache.get(key)
        if isinstance(cached, dict):
            return cached

        def run() -> dict[str, Any]:
            # The default field set already has config, cardData, safetensors and siblings;
            # files_metadata adds each file's size (it cannot be combined with expand).
            info = self.api.model_info(repo_id, files_metadata=True, timeout=HTTP_TIMEOUT)
            return model_to_dict(info)

        data = self.call(run, repo_id)
        self.cache.set(key, data)
        return data

    def config_json(self, repo_id: str, revision: str | None = None) -> dict[str, Any]:
        """The repo's full ``config.json`` (the API's ``config`` lacks layer counts), cached per revision."""
        repo_id = validate_repo_id(repo_id)
        rev = revision or "main"
        key = f"config:{repo_id}@{rev}"
        cached = self.cache.get(key)
        if isinstance(cached, dict):
            return cached

        def run() -> dict[str, Any]:
            url = hf_hub_url(repo_id, "config.json", revision=rev, endpoint=self.endpoint)
            headers = build_hf_headers(token=self.token)
            response = get_session().get(url, headers=headers, follow_redirects=True, timeout=HTTP_TIMEOUT)
            hf_raise_for_status(response)
            data = response.json()
            if not isinstance(data, dict):
                raise InvalidInput(f"{repo_id}: config.json is not a JSON object")
            return data

        try:
            data = self.call(run, f"{repo_id}/config.json")
        except ValueError as exc:
            raise UpstreamError(f"{repo_id}: config.json is not valid JSON", code="hf_bad_config") from exc
        self.cache.set(key, data)
        return data


def current_hub() -> HubClient:
    """The Hub client of the current app (its Redis cache and banner shared by every process)."""
    from flask import current_app

    from portal.extensions import current_settings, redis_holder

    return HubClient(current_settings(), redis_holder(current_app).connection)


def validate_repo_id(repo_id: str) -> str:
    """A Hub id such as ``org/name``: reject empty, absolute or dotted paths before any request."""
    value = (repo_id or "").strip().strip("/")
    parts = value.split("/")
    if not value or len(parts) > 2 or any(p in ("", ".", "..") for p in parts) or len(value) > 200:
        raise InvalidInput(f"invalid Hugging Face model id {repo_id!r} (expected org/name)", code="invalid_hf_id")
    return value


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value) if value else None


def model_to_dict(info: Any) -> dict[str, Any]:
    """A ``huggingface_hub.ModelInfo`` as plain JSON (camelCase), keeping what we use."""
    card = getattr(info, "card_data", None)
    card_dict: dict[str, Any] = card.to_dict() if card is not None and hasattr(card, "to_dict") else {}
    safetensors = getattr(info, "safetensors", None)
    st: dict[str, Any] | None = None
    if safetensors is not None:
        st = {"parameters": dict(safetensors.parameters or {}), "total": safetensors.total}
    siblings = getattr(info, "siblings", None)
    license_value = card_dict.get("license")
    tags = list(getattr(info, "tags", None) or [])
    if not license_value:
        license_value = next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), None)
    return {
        "id": info.id,
        "author": getattr(info, "author", None),
        "sha": getattr(info, "sha", None),
        "lastModified": _iso(getattr(info, "last_modified", None)),
        "createdAt": _iso(getattr(info, "created_at", None)),
        "private": getattr(info, "private", None),
        "gated": getattr(info, "gated", None) or False,
        "downloads": getattr(info, "downloads", None) or 0,
        "likes": getattr(info, "likes", None) or 0,
        "trendingScore": getattr(info, "trending_score", None),
        "libraryName": getattr(info, "library_name", None),
        "pipelineTag": getattr(info, "pipeline_tag", None),
        "tags": tags,
        "license": license_value if isinstance(license_value, str) else None,
        "cardData": card_dict,
        "config": dict(getattr(info, "config", None) or {}),
        "safetensors": st,
        "siblings": ([{"rfilename": s.rfilename, "size": s.size} for s in siblings] if siblings is not None else None),
        "usedStorage": getattr(info, "used_storage", None),
    }
