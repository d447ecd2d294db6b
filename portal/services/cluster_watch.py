"""The one process-wide watcher that keeps the cluster view (`cluster_cache`) in Redis up to date.

Every web process runs an elector thread, started by its first request; the one that holds the Redis
lock `<prefix>:watcher` (TTL `CLUSTER_WATCH_LOCK_TTL`, renewed every third of it) runs one thread per
source: the InferenceServices of each managed namespace, the nodes, the pods. Each does what a
client-go reflector does: list, then watch from the list's resourceVersion; a watch that ends
normally (server timeout `CLUSTER_WATCH_TIMEOUT`) resumes from the last resourceVersion seen; 410
Gone (the server compacted that version away) re-lists at once; any other failure marks the source
down (the pages say "stale since …") and re-lists after a backoff of 0.5 s doubling up to 30 s.

Why threads in the web processes rather than a separate watcher deployment: nothing more to deploy
or to keep running, and the lock makes exactly one process watch no matter how many gunicorn
workers or replicas there are; when that process dies, another takes over within one TTL. The RQ
worker never watches (its job processes are forked and short-lived).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis
import urllib3
from flask import Flask, Response
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException
from redis.exceptions import LockError

from portal.errors import PortalError, Unavailable, UpstreamTimeout
from portal.services.cluster import ISVC_PLURAL, KSERVE_GROUP, KSERVE_VERSION, Cluster, api_error, cluster_for
from portal.services.cluster_cache import (
    ClusterCache,
    cache_for,
    isvc_source,
    object_key,
    resource_version,
    slim_pod,
)

log = logging.getLogger(__name__)

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0
Lister = Callable[..., Any]


def _failure(exc: BaseException, cluster: Cluster, what: str) -> PortalError:
    """A person-readable error for a failed list or watch."""
    if isinstance(exc, PortalError):
        return exc
    if isinstance(exc, ApiException) and exc.status:
        return api_error(exc, f"watch {what}")
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return UpstreamTimeout(f"could not watch {what}: the Kubernetes API stopped answering", code="cluster_timeout")
    return Unavailable(
        f"could not watch {what}: the Kubernetes API at {cluster.host} is unreachable ({type(exc).__name__})",
        code="cluster_unreachable",
    )


class _Source(threading.Thread):
    """List + watch of one source, written into the cache, until halted."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        cache: ClusterCache,
        lister: Callable[[], tuple[Lister, tuple[Any, ...]]],
        *,
        keep: Callable[[dict[str, Any]], dict[str, Any] | None],
        watch_timeout: float,
    ) -> None:
        super().__init__(name=f"cluster-watch-{name}", daemon=True)
        self.source = name
        self.cluster = cluster
        self.cache = cache
        self.lister = lister
        self.keep = keep
        self.watch_timeout = watch_timeout
        self.halted = threading.Event()
        self.listed = threading.Event()
        self._resync = threading.Event()
        self._watch: k8s_watch.Watch | None = None

    def halt(self) -> None:
        """Stop at once (closes the open watch connection)."""
        self.halted.set()
        self._interrupt()

    def resync(self) -> None:
        """Re-list now (the cache lost its contents)."""
        self._resync.set()
        self._interrupt()

    def _interrupt(self) -> None:
        current = self._watch
        if current is not None:
            current.stop()  # type: ignore[no-untyped-call]

    def _list(self) -> str:
        func, args = self.lister()
        response = self.cluster.call(func, *args, action=f"list {self.source}", _preload_content=False)
        body = json.loads(response.data)
        objects: dict[str, dict[str, Any]] = {}
        versions: dict[str, int] = {}
        for item in body.get("items") or []:
            kept = self.keep(item)
            if kept is None:
                continue
            key = object_key(item)
            objects[key] = kept
            versions[key] = resource_version(item) or 0
        if not self.halted.is_set():
            self.cache.replace(self.source, objects, versions)
            self.listed.set()
        return str((body.get("metadata") or {}).get("resourceVersion") or "")

    def _watch_from(self, rv: str) -> str:
        func, args = self.lister()
        watcher = k8s_watch.Watch(return_type="object")  # type: ignore[no-untyped-call]
        self._watch = watcher
        try:
            stream = watcher.stream(  # type: ignore[no-untyped-call]
                func,
                *args,
                resource_version=rv,
                timeout_seconds=max(1, int(self.watch_timeout)),
                allow_watch_bookmarks=True,
                _request_timeout=(self.cluster.request_timeout[0], self.watch_timeout + 15),
            )
            for event in stream:
                obj = event.get("raw_object") or {}
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if event.get("type") == "BOOKMARK":
                    continue
                kept = None if event.get("type") == "DELETED" else self.keep(obj)
                self.cache.upsert(self.source, object_key(obj), kept, resource_version(obj))
        except Exception:
            if self.halted.is_set() or self._resync.is_set():
                return rv  # we cut the connection ourselves
            raise
        finally:
            self._watch = None
        return rv

    def run(self) -> None:
        """The reflector loop."""
        rv = ""
        backoff = BACKOFF_START
        while not self.halted.is_set():
            try:
                if not rv or self._resync.is_set():
                    self._resync.clear()
                    rv = self._list()
                    backoff = BACKOFF_START
                rv = self._watch_from(rv)
            except ApiException as exc:
                if exc.status == 410:
                    log.info("cluster watch %s: resourceVersion %s expired (410 Gone), re-listing", self.source, rv)
                    rv = ""
                    continue
                rv = self._failed(exc, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except redis.RedisError:
                log.warning("cluster watch %s: Redis unavailable, re-listing when it is back", self.source)
                rv = ""
                self.halted.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except Exception as exc:  # transport failures of every kind: keep watching, say the view is stale
                rv = self._failed(exc, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _failed(self, exc: BaseException, backoff: float) -> str:
        if self.halted.is_set():
            return ""
        error = _failure(exc, self.cluster, self.source)
        log.warning(
            "cluster watch %s failed (%s); retrying in %.1fs", self.source, error.message, backoff, exc_info=exc
        )
        with contextlib.suppress(redis.RedisError):
            self.cache.mark_down(self.source, error)
        self.halted.wait(backoff)
        return ""


def _isvc_lister(custom: Callable[[], Any], namespace: str) -> tuple[Lister, tuple[Any, ...]]:
    return custom().list_namespaced_custom_object, (KSERVE_GROUP, KSERVE_VERSION, namespace, ISVC_PLURAL)


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _node(obj: dict[str, Any]) -> dict[str, Any]:
    # Conditions, images and addresses change often and are of no use to placement.
    status = obj.get("status") or {}
    return {
        "metadata": {
            k: v for k, v in (obj.get("metadata") or {}).items() if k in ("name", "labels", "resourceVersion")
        },
        "spec": {k: v for k, v in (obj.get("spec") or {}).items() if k in ("taints", "unschedulable")},
        "status": {"allocatable": status.get("allocatable") or {}, "capacity": status.get("capacity") or {}},
    }


class ClusterWatcher:
    """The elector thread of one process and, while it leads, the source threads."""

    def __init__(self, cluster: Cluster, cache: ClusterCache, *, ttl: float, watch_timeout: float) -> None:
        self.cluster = cluster
        self.cache = cache
        self.ttl = ttl
        self.watch_timeout = watch_timeout
        self.stopped = threading.Event()
        self.leading = threading.Event()
        self._sources: list[_Source] = []
        self._transition = threading.Lock()  # stop() never races the elector starting sources
        self._lock = cache.connection.lock(cache.key("watcher"), timeout=ttl, thread_local=False)
        self._thread = threading.Thread(target=self._run, name="cluster-watch-elector", daemon=True)

    def start(self) -> None:
        """Start competing for the watcher lock."""
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and give the lock up (another process takes over at once)."""
        with self._transition:
            self.stopped.set()
            self._halt_sources()
        if self.leading.is_set():
            with contextlib.suppress(LockError, redis.RedisError):
                self._lock.release()
            self.leading.clear()

    def _make_sources(self) -> list[_Source]:
        custom = self.cluster.custom
        core = self.cluster.core
        sources = [
            _Source(
                isvc_source(ns),
                self.cluster,
                self.cache,
                functools.partial(_isvc_lister, custom, ns),
                keep=_same,
                watch_timeout=self.watch_timeout,
            )
            for ns in self.cache.namespaces
        ]
        sources.append(
            _Source(
                "node",
                self.cluster,
                self.cache,
                lambda: (core().list_node, ()),
                keep=_node,
                watch_timeout=self.watch_timeout,
            )
        )
        sources.append(
            _Source(
                "pod",
                self.cluster,
                self.cache,
                lambda: (core().list_pod_for_all_namespaces, ()),
                keep=slim_pod,
                watch_timeout=self.watch_timeout,
            )
        )
        return sources

    def _halt_sources(self) -> None:
        for source in self._sources:
            source.halt()
        self._sources = []

    def _hold(self) -> bool:
        try:
            if self.leading.is_set():
                self._lock.reacquire()
                return True
            return bool(self._lock.acquire(blocking=False))
        except LockError:
            return False
        except redis.RedisError:
            log.warning("cluster watch: Redis unavailable, cannot hold the watcher lock")
            return self.leading.is_set()

    def _run(self) -> None:
        while not self.stopped.is_set():
            held = self._hold()
            with self._transition:
                if self.stopped.is_set():
                    break
                self._follow(held)
            self.stopped.wait(self.ttl / 3)

    def _follow(self, held: bool) -> None:
        """Start or stop the sources as the lock came or went; heartbeat while leading."""
        if held and not self.leading.is_set():
            log.info("cluster watch: this process watches the cluster now")
            self.leading.set()
            self._sources = self._make_sources()
            for source in self._sources:
                source.start()
        elif not held and self.leading.is_set():
            log.info("cluster watch: lost the watcher lock, stopping")
            self.leading.clear()
            self._halt_sources()
        if self.leading.is_set():
            try:
                lost = self.cache.heartbeat()
                for source in self._sources:
                    if source.source in lost and source.listed.is_set():
                        source.resync()
            except redis.RedisError:
                pass


def start_watcher(app: Flask) -> ClusterWatcher | None:
    """Start this process's watcher for `app` (idempotent); None when no cluster is configured or it was stopped."""
    if "cluster_watcher" in app.extensions:
        existing = app.extensions["cluster_watcher"]
        return existing if isinstance(existing, ClusterWatcher) else None
    cluster = cluster_for(app)
    if not cluster.configured:
        return None
    with _start_lock:
        if "cluster_watcher" in app.extensions:
            existing = app.extensions["cluster_watcher"]
            return existing if isinstance(existing, ClusterWatcher) else None
        settings = app.config["SETTINGS"]
        watcher = ClusterWatcher(
            cluster,
            cache_for(app),
            ttl=settings.cluster_watch_lock_ttl,
            watch_timeout=settings.cluster_watch_timeout,
        )
        app.extensions["cluster_watcher"] = watcher
        watcher.start()
        return watcher


def stop_watcher(app: Flask) -> None:
    """Stop the app's watcher for good, if it runs (tests, shutdown): later requests do not restart it."""
    watcher = app.extensions.get("cluster_watcher")
    if isinstance(watcher, ClusterWatcher):
        watcher.stop()
    else:
        app.extensions["cluster_watcher"] = None


_start_lock = threading.Lock()


def init_app(app: Flask) -> None:
    """Start the watcher with the first request this process serves (not at import: gunicorn forks)."""

    @app.before_request
    def _ensure_watcher() -> Response | None:
        if "cluster_watcher" not in app.extensions:
            start_watcher(app)
        return None

    del _ensure_watcher  # registered; the name is not needed
