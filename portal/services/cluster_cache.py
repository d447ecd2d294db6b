"""The watched view of the cluster, kept in Redis so every gunicorn worker reads the same copy.

One watcher (`cluster_watch`) lists and watches the portal's InferenceServices, the nodes and the
pods, and writes what it sees here; pages and `/active` read it from here and make no Kubernetes
call. Layout, under `model-manager:cluster:<cluster id>` (the id is a hash of the API server URL, so
two portals for two clusters may share one Redis):

- `obj:<source>` hash `key -> JSON object` and `rv:<source>` hash `key -> resourceVersion`, one pair
  per watched source (`isvc:<namespace>`, `node`, `pod`). A write only lands when its
  resourceVersion is not older than the stored one (a Lua script), so the portal's own writes
  (recorded right after they are applied, for read-your-writes) and the watch events can arrive in
  any order. A deletion keeps its resourceVersion in `rv:` as a tombstone until the next re-list.
- `version`: bumped on every change; each process re-reads the objects only when it moved.
- `state` hash: `synced:<source>` (time of the last full list), `down:<source>` (JSON: since when
  and why the watch of that source is failing) and `heartbeat` (the watcher's last sign of life).

The view is *stale* when a source is down or the heartbeat is older than the watcher's lock TTL;
pages then say so and since when. Resource versions are compared as integers: Kubernetes calls
them opaque, but every API server backed by etcd hands out its store revision, which only grows.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask, current_app

from portal.errors import PortalError, Unavailable, UpstreamError, UpstreamTimeout
from portal.extensions import redis_holder
from portal.services.cluster import Cluster, cluster_for
from portal.services.inventory import GPU_RESOURCES, parse_count

log = logging.getLogger(__name__)

ISVC_LABEL = "serving.kserve.io/inferenceservice"
_UPSERT = """
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and ARGV[4] ~= 'force' and tonumber(ARGV[2]) < tonumber(cur) then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[3])
return 1
"""
# How often a reader waiting for the first list looks again.
_FIRST_SYNC_POLL = 0.02
# A process's first list also imports the Kubernetes client's models (seconds on a busy machine).
FIRST_SYNC_GRACE = 15.0


def isvc_source(namespace: str) -> str:
    """The source name of the InferenceServices of one namespace."""
    return f"isvc:{namespace}"


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name` (or `name` for cluster-scoped objects)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


def resource_version(obj: Mapping[str, Any]) -> int | None:
    """The object's resourceVersion as an integer, or None when it has none or it is not a number."""
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else None


def slim_pod(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the view keeps of a pod: only pods holding GPUs or serving an InferenceService matter."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    labels = meta.get("labels") or {}
    containers = []
    holds_gpu = False
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        kept = {
            kind: {k: v for k, v in (resources.get(kind) or {}).items() if k in GPU_RESOURCES}
            for kind in ("requests", "limits")
        }
        holds_gpu = holds_gpu or any(parse_count(v) > 0 for side in kept.values() for v in side.values())
        containers.append({"name": container.get("name"), "resources": kept})
    if not holds_gpu and ISVC_LABEL not in labels:
        return None
    return {
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "labels": {k: v for k, v in labels.items() if k == ISVC_LABEL or k.startswith("model-manager")},
            "resourceVersion": meta.get("resourceVersion"),
        },
        "spec": {"nodeName": spec.get("nodeName"), "containers": containers},
        "status": {"phase": (pod.get("status") or {}).get("phase")},
    }


def error_from(record: Mapping[str, Any]) -> PortalError:
    """The PortalError a reader raises for a watcher failure recorded in the state hash."""
    message = str(record.get("message") or "the cluster could not be read")
    code = str(record.get("code") or "cluster_unreachable")
    status = int(record.get("status") or 503)
    kind: type[PortalError] = {504: UpstreamTimeout, 502: UpstreamError}.get(status, Unavailable)
    return kind(message, code=code, status=status)


@dataclass(frozen=True)
class Staleness:
    """Whether the view is behind the cluster, since when, and why."""

    stale: bool
    since: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (`since` as an ISO 8601 UTC timestamp)."""
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)) if self.since else None
        return {"stale": self.stale, "since": since, "reason": self.reason}


@dataclass(frozen=True)
class ClusterSnapshot:
    """One consistent read of the view: InferenceServices, nodes, GPU pods, and how fresh they are."""

    isvcs: Mapping[str, dict[str, Any]]
    nodes: tuple[dict[str, Any], ...]
    pods: tuple[dict[str, Any], ...]
    staleness: Staleness
    version: int = 0
    namespaces: tuple[str, ...] = field(default=())

    def inference_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The InferenceService `namespace/name`, or None."""
        return self.isvcs.get(f"{namespace}/{name}")


class ClusterCache:
    """The Redis side of the view for one cluster: writes for the watcher, reads for everyone."""

    def __init__(self, connection: redis.Redis, cluster: Cluster, namespaces: tuple[str, ...], ttl: float) -> None:
        self.connection = connection
        self.namespaces = namespaces
        self.ttl = ttl
        cluster_id = hashlib.sha256(cluster.host.encode()).hexdigest()[:10]
        self.prefix = f"model-manager:cluster:{cluster_id}"
        self.sources = (*tuple(isvc_source(ns) for ns in namespaces), "node", "pod")
        self._upsert = connection.register_script(_UPSERT)
        self._local_lock = threading.Lock()
        self._local: tuple[int, dict[str, dict[str, dict[str, Any]]]] | None = None

    def key(self, *parts: str) -> str:
        """A Redis key under this cluster's prefix."""
        return ":".join((self.prefix, *parts))

    # --- writes (the watcher, and the portal's own writes) ------------------------------------------

    def upsert(self, source: str, key: str, obj: Mapping[str, Any] | None, rv: int | None) -> bool:
        """Store (or, with `obj` None, delete) one object unless the view already has a newer version."""
        payload = json.dumps(obj, separators=(",", ":")) if obj is not None else ""
        args = [key, str(rv if rv is not None else 0), payload, "" if rv is not None else "force"]
        keys = [self.key("obj", source), self.key("rv", source), self.key("version")]
        return bool(self._upsert(keys=keys, args=args))

    def replace(self, source: str, objects: Mapping[str, Mapping[str, Any]], versions: Mapping[str, int]) -> None:
        """Replace everything known about a source by a fresh list (drops tombstones)."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.delete(self.key("obj", source), self.key("rv", source))
        if objects:
            pipe.hset(
                self.key("obj", source), mapping={k: json.dumps(v, separators=(",", ":")) for k, v in objects.items()}
            )
        if versions:
            pipe.hset(self.key("rv", source), mapping={k: str(v) for k, v in versions.items()})
        pipe.hset(self.key("state"), f"synced:{source}", repr(time.time()))
        pipe.hdel(self.key("state"), f"down:{source}")
        pipe.incr(self.key("version"))
        pipe.execute()

    def mark_up(self, source: str) -> None:
        """The watch of `source` works again."""
        if self.connection.hdel(self.key("state"), f"down:{source}"):
            self.connection.incr(self.key("version"))

    def mark_down(self, source: str, error: PortalError) -> None:
        """The watch of `source` fails; keep the first failure time (the view is stale since then)."""
        field_name = f"down:{source}"
        current = self.connection.hget(self.key("state"), field_name)
        since = time.time()
        if current:
            with contextlib.suppress(ValueError, AttributeError):
                since = float(json.loads(current).get("since") or since)
        record = {"since": since, "message": error.message, "code": error.code, "status": error.status}
        self.connection.hset(self.key("state"), field_name, json.dumps(record))
        self.connection.incr(self.key("version"))

    def heartbeat(self) -> set[str]:
        """Record that the watcher is alive; return the sources whose lists are gone (Redis restarted empty)."""
        pipe = self.connection.pipeline(transaction=False)
        pipe.hset(self.key("state"), "heartbeat", repr(time.time()))
        pipe.hmget(self.key("state"), [f"synced:{s}" for s in self.sources])
        _, synced = pipe.execute()
        return {source for source, at in zip(self.sources, synced, strict=True) if not at}

    # --- reads -------------------------------------------------------------------------------------

    def _state(self) -> tuple[int, dict[str, str]]:
        pipe = self.connection.pipeline(transaction=False)
        pipe.get(self.key("version"))
        pipe.hgetall(self.key("state"))
        version, raw_state = pipe.execute()
        state = {k.decode(): v.decode() for k, v in raw_state.items()}
        return int(version or 0), state

    def _objects(self, version: int) -> dict[str, dict[str, dict[str, Any]]]:
        with self._local_lock:
            if self._local is not None and self._local[0] == version:
                return self._local[1]
        pipe = self.connection.pipeline(transaction=False)
        for source in self.sources:
            pipe.hgetall(self.key("obj", source))
        found = pipe.execute()
        objects = {
            source: {k.decode(): json.loads(v) for k, v in raw.items()}
            for source, raw in zip(self.sources, found, strict=True)
        }
        with self._local_lock:
            self._local = (version, objects)
        return objects

    def _staleness(self, state: Mapping[str, str]) -> Staleness:
        downs = []
        for name, value in state.items():
            if name.startswith("down:"):
                try:
                    downs.append(json.loads(value))
                except ValueError:
                    continue
        if downs:
            first = min(downs, key=lambda d: float(d.get("since") or 0))
            return Staleness(True, float(first.get("since") or time.time()), str(first.get("message") or ""))
        heartbeat = float(state.get("heartbeat") or 0)
        if heartbeat and time.time() - heartbeat > self.ttl:
            return Staleness(True, heartbeat, "the cluster watcher stopped reporting")
        return Staleness(False)

    def snapshot(self, wait: float, *, watching: bool = True) -> ClusterSnapshot:
        """The current view; waits up to `wait` s for a first list, raising the watcher's error if it failed.

        `watching`: this process runs a watcher. Otherwise (an RQ worker) there is only something to wait
        for when some process is watching (a heartbeat exists).
        """
        deadline = time.monotonic() + wait
        while True:
            version, state = self._state()
            if all(f"synced:{s}" in state for s in self.sources):
                break
            if not watching and "heartbeat" not in state:
                deadline = 0.0
            failures = [json.loads(v) for k, v in state.items() if k.startswith("down:")]
            if failures:
                raise error_from(failures[0])
            if time.monotonic() >= deadline:
                raise Unavailable(
                    "the cluster view is not ready yet: no watcher has listed the cluster; try again in a few seconds",
                    code="cluster_view_unavailable",
                )
            time.sleep(_FIRST_SYNC_POLL)
        objects = self._objects(version)
        isvcs: dict[str, dict[str, Any]] = {}
        for namespace in self.namespaces:
            isvcs.update(objects.get(isvc_source(namespace), {}))
        return ClusterSnapshot(
            isvcs=isvcs,
            nodes=tuple(objects.get("node", {}).values()),
            pods=tuple(objects.get("pod", {}).values()),
            staleness=self._staleness(state),
            version=version,
            namespaces=self.namespaces,
        )


def watched_namespaces(app: Flask) -> tuple[str, ...]:
    """ACTIVE_NAMESPACE first, then MANAGED_NAMESPACES."""
    settings = app.config["SETTINGS"]
    return tuple(dict.fromkeys((settings.active_namespace, *settings.managed_namespaces)))


def cache_for(app: Flask) -> ClusterCache:
    """The app's ClusterCache (built on first use)."""
    existing = app.extensions.get("cluster_cache")
    if isinstance(existing, ClusterCache):
        return existing
    settings = app.config["SETTINGS"]
    cache = ClusterCache(
        redis_holder(app).connection, cluster_for(app), watched_namespaces(app), settings.cluster_watch_lock_ttl
    )
    app.extensions["cluster_cache"] = cache
    return cache


def get_snapshot() -> ClusterSnapshot:
    """The watched view for the current app (no Kubernetes call); raises when it cannot be had."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    cluster = cluster_for(app)
    cluster._client()  # NotConfigured (501) when there is no cluster at all
    try:
        watching = app.extensions.get("cluster_watcher") is not None
        return cache_for(app).snapshot(wait=cluster.timeout + FIRST_SYNC_GRACE, watching=watching)
    except redis.RedisError as exc:
        raise Unavailable(
            "Redis is unavailable, and the portal's view of the cluster lives there",
            code="redis_unavailable",
            details={"reason": type(exc).__name__},
        ) from exc


def record_write(obj: Mapping[str, Any] | None) -> None:
    """Put an object the portal just applied into the view at once (read-your-writes)."""
    _record(obj, deleted=False)


def record_delete(obj: Mapping[str, Any] | None) -> None:
    """Drop an InferenceService the portal just deleted from the view at once."""
    _record(obj, deleted=True)


def _record(obj: Mapping[str, Any] | None, *, deleted: bool) -> None:
    if not obj or not (obj.get("metadata") or {}).get("namespace"):
        return
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    cache = cache_for(app)
    namespace = str(obj["metadata"]["namespace"])
    if namespace not in cache.namespaces:
        return
    rv = resource_version(obj)
    try:
        if deleted:
            # The deleted object carries its last resourceVersion; the deletion itself is newer.
            cache.upsert(isvc_source(namespace), object_key(obj), None, (rv or 0) + 1)
        else:
            cache.upsert(isvc_source(namespace), object_key(obj), dict(obj), rv)
    except redis.RedisError:
        # The watch brings the change within a second anyway.
        log.warning("cluster view: could not record %s", object_key(obj), exc_info=True)
