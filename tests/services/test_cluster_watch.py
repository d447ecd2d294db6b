"""The watched cluster view: pages read Redis, the watcher follows the dev cluster over real watches."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask

from portal.devcluster.cluster import DevCluster
from portal.errors import PortalError
from portal.services import cluster_cache
from portal.services.cluster_watch import start_watcher
from tests.support.fixtures_redis import PrivateRedis

T = TypeVar("T")
NODE = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {"name": "late-node", "labels": {"nvidia.com/gpu.product": "NVIDIA-L4"}},
    "status": {"allocatable": {"nvidia.com/gpu": "2"}, "capacity": {"nvidia.com/gpu": "2"}},
}


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Re-check `check` until it returns something truthy (the watcher works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def node_names(app: Flask) -> set[str]:
    with app.app_context():
        return {n["metadata"]["name"] for n in cluster_cache.get_snapshot().nodes}


def make_watched_app(make_app: Callable[..., Flask], devcluster: DevCluster, catalog: Path, **extra: str) -> Flask:
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(catalog.parent),
        KUBE_TIMEOUT="3",
        CLUSTER_WATCH_LOCK_TTL="3s",
        **extra,
    )
    start_watcher(app)
    return app


def test_page_views_make_no_kubernetes_calls(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    app = make_watched_app(make_app, devcluster, cluster_catalog)
    client = app.test_client()
    assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200
    # Read-your-writes: the activation is in the view at once, before the watch reports it.
    assert client.get("/active").json["modelId"] == "tiny-gpt2-test"
    wait_for(lambda: client.get("/active").json["phase"] == "ready", what="Ready through the watch")
    before = len(devcluster.requests)
    for _ in range(20):
        assert client.get("/active").status_code == 200
        assert client.get("/ui/active/header").status_code == 200
        assert client.get("/ui/catalog").status_code == 200
    assert list(devcluster.requests)[before:] == []


def test_outside_changes_show_up_and_deletes_are_seen(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    app = make_watched_app(make_app, devcluster, cluster_catalog)
    assert "late-node" not in node_names(app)
    devcluster.add(NODE)  # as if kubectl or a node joining did it
    wait_for(lambda: "late-node" in node_names(app), timeout=2, what="the new node in the view")
    client = app.test_client()
    client.post("/models/activate", json={"id": "tiny-gpt2-test"})
    devcluster.remove("serving.kserve.io/v1beta1", "InferenceService", "active-llm", "ai")
    wait_for(lambda: client.get("/active").json["status"] == "none", timeout=2, what="the deletion")


def test_watch_survives_a_restart_and_says_the_view_is_stale(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    app = make_watched_app(make_app, devcluster, cluster_catalog)
    client = app.test_client()
    assert client.get("/active").json == {"status": "none", "message": "No active model"}
    port = int(devcluster.url.rsplit(":", 1)[1])
    devcluster.stop()

    stale: dict[str, Any] = wait_for(lambda: client.get("/active").json.get("view"), what="the stale marker")
    assert stale["stale"] is True and stale["since"] and "unreachable" in stale["reason"]
    header = client.get("/ui/active/header").get_data(as_text=True)
    assert "view stale since" in header

    devcluster.add(NODE)  # changed while the watcher could not see it
    devcluster.start("127.0.0.1", port)
    wait_for(lambda: "view" not in client.get("/active").json, timeout=15, what="the view to be fresh again")
    assert "late-node" in node_names(app)


def test_expired_resource_version_relists(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    # Watches end every second, so the watcher resumes from its last resourceVersion often.
    app = make_watched_app(make_app, devcluster, cluster_catalog, CLUSTER_WATCH_TIMEOUT="1s")
    node_names(app)
    devcluster.add(NODE)
    wait_for(lambda: "late-node" in node_names(app), timeout=2, what="the node")
    with devcluster.store.lock:  # the deletion is compacted away at once: only a re-list can find it out
        devcluster.remove("v1", "Node", "late-node")
        devcluster.compact()
    before = len(devcluster.requests)
    wait_for(lambda: "late-node" not in node_names(app), timeout=10, what="the re-list after 410")
    node_lists = [
        r for r in list(devcluster.requests)[before:] if r.path == "/api/v1/nodes" and r.query.get("watch") != "true"
    ]
    assert node_lists, "the node source re-listed"


def test_one_watcher_for_several_processes(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    first = make_watched_app(make_app, devcluster, cluster_catalog)
    second = make_watched_app(make_app, devcluster, cluster_catalog)
    node_names(first)
    watchers = [a.extensions["cluster_watcher"] for a in (first, second)]
    wait_for(lambda: any(w.leading.is_set() for w in watchers), what="a leader")
    assert sum(w.leading.is_set() for w in watchers) == 1
    leader = next(w for w in watchers if w.leading.is_set())
    follower = next(w for w in watchers if w is not leader)
    leader.stop()  # the process holding the lock goes away: the other one takes over
    wait_for(follower.leading.is_set, timeout=5, what="the other process to take over")
    devcluster.add(NODE)
    wait_for(lambda: "late-node" in node_names(second), timeout=3, what="changes seen by the new watcher")


def test_view_comes_back_after_redis_restarts_empty(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path, private_redis: PrivateRedis
) -> None:
    app = make_watched_app(make_app, devcluster, cluster_catalog, REDIS_URL=private_redis.url)
    assert "venus" in node_names(app)
    private_redis.stop()
    client = app.test_client()
    # While Redis is away, /active still answers, read from the API server directly.
    assert client.get("/active").json["status"] == "none"
    private_redis.start()  # empty: the lists are gone; the watcher's next heartbeat re-lists
    devcluster.add(NODE)
    wait_for(lambda: _safe_names(app) >= {"venus", "gpu-l4-1", "late-node"}, timeout=30, what="the re-listed view")


def _safe_names(app: Flask) -> set[str]:
    try:
        return node_names(app)
    except PortalError:
        return set()
