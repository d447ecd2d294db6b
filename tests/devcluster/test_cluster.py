"""The DevCluster object: kubeconfig, seeds, failure injection, watch, lifecycle and CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import kubernetes
import pytest
import urllib3
import yaml
from kubernetes import watch
from kubernetes.client import CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from portal.devcluster import DevCluster, SeedError
from tests.devcluster.conftest import GROUP, PLURAL, REALISTIC_ISVC, VERSION, status_of

ROOT = Path(__file__).resolve().parents[2]


def test_kubeconfig_works_with_load_kube_config(cluster: DevCluster, tmp_path: Path) -> None:
    path = cluster.write_kubeconfig(tmp_path / "nested" / "config")
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "devcluster"
    assert config["clusters"][0]["cluster"]["server"] == cluster.url
    client_config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=client_config)
    with kubernetes.client.ApiClient(client_config) as api:
        assert [n.metadata.name for n in CoreV1Api(api).list_node().items] == ["gpu-l4-1", "venus"]


def test_required_token(tmp_path: Path) -> None:
    with DevCluster(require_token=True) as cluster:
        good = kubernetes.config.new_client_from_config(config_file=str(cluster.write_kubeconfig(tmp_path / "kc")))
        assert CoreV1Api(good).read_namespace("ai").metadata.name == "ai"
        bad_config = kubernetes.client.Configuration(host=cluster.url)
        with kubernetes.client.ApiClient(bad_config) as bad, pytest.raises(ApiException) as err:
            CoreV1Api(bad).read_namespace("ai")
        assert err.value.status == 401


def test_fail_next(cluster: DevCluster, custom: CustomObjectsApi) -> None:
    cluster.fail_next(503, method="POST")
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, REALISTIC_ISVC)
    assert err.value.status == 503
    assert status_of(err.value)["reason"] == "ServiceUnavailable"
    assert err.value.headers["Retry-After"] == "1"
    custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, REALISTIC_ISVC)
    cluster.fail_next(500, n=2, path="/inferenceservices/active-llm", message="etcdserver: request timed out")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")
        assert status_of(err.value)["message"] == "etcdserver: request timed out"
    assert (
        custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")["metadata"]["name"]
        == "active-llm"
    )


def test_latency_trips_client_timeouts(cluster: DevCluster, core: CoreV1Api) -> None:
    cluster.set_latency(0.5)
    # urllib3 retries a timed-out GET three times before giving up with MaxRetryError.
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="Read timed out"):
        core.list_node(_request_timeout=0.1)
    cluster.set_latency(0)
    assert core.list_node(_request_timeout=2).items


def test_disconnect(cluster: DevCluster, core: CoreV1Api) -> None:
    cluster.disconnect_next(10, path="/nodes")
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_node()
    cluster.clear_faults()
    assert core.list_node().items


def test_requests_are_recorded(cluster: DevCluster, custom: CustomObjectsApi) -> None:
    cluster.requests.clear()
    custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, REALISTIC_ISVC, dry_run="All")
    [recorded] = list(cluster.requests)
    assert recorded.method == "POST"
    assert recorded.path == "/apis/serving.kserve.io/v1beta1/namespaces/ai/inferenceservices"
    assert recorded.query == {"dryRun": "All"}


def test_stop_refuses_connections(tmp_path: Path) -> None:
    cluster = DevCluster()
    cluster.start()
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.write_kubeconfig(tmp_path / "kc")))
    core = CoreV1Api(api)
    assert core.list_node().items
    cluster.stop()
    with pytest.raises(urllib3.exceptions.HTTPError):
        core.list_node(_request_timeout=1)


def test_watch_reports_readiness(cluster: DevCluster, custom: CustomObjectsApi) -> None:
    seen: list[tuple[str, str]] = []
    # Watching from the list's resourceVersion delivers every later change whenever the watch
    # connects, so the create below needs no pause for the watcher to be listening.
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL)["metadata"]["resourceVersion"]

    def follow() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            "ai",
            PLURAL,
            resource_version=listed,
            timeout_seconds=5,
        ):
            conditions = (event["object"].get("status") or {}).get("conditions") or []
            ready = next((c["status"] for c in conditions if c["type"] == "Ready"), "-")
            seen.append((event["type"], ready))
            if ready == "True":
                stream.stop()

    watcher = threading.Thread(target=follow)
    watcher.start()
    custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, REALISTIC_ISVC)
    watcher.join(timeout=5)
    assert not watcher.is_alive()
    assert seen[0] == ("ADDED", "-")
    assert ("MODIFIED", "False") in seen
    assert seen[-1] == ("MODIFIED", "True")


def test_watch_from_a_resource_version(cluster: DevCluster, core: CoreV1Api) -> None:
    listed = core.list_namespaced_config_map("ai")
    core.create_namespaced_config_map("ai", {"metadata": {"name": "after"}, "data": {"a": "1"}})
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map, "ai", resource_version=listed.metadata.resource_version, timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "after")]


def test_seed_formats(tmp_path: Path) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "status": {"allocatable": {"nvidia.com/gpu": 2}},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": "team"},
        "stringData": {"k": "v"},
    }
    as_list = DevCluster(seed=[node, secret])
    assert as_list.get("v1", "Node", "n1")["status"]["capacity"] == {"nvidia.com/gpu": "2"}
    assert as_list.get("v1", "Namespace", "team") is not None
    assert as_list.get("v1", "Secret", "s", "team")["data"] == {"k": "dg=="}
    path = tmp_path / "seed.yaml"
    path.write_text(yaml.safe_dump_all([node, secret]))
    assert DevCluster(seed=path).get("v1", "Node", "n1") is not None
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [node]})
    assert [n["metadata"]["name"] for n in DevCluster(seed=text + "\n").list("v1", "Node")] == ["n1"]
    assert DevCluster(seed=[]).list("v1", "Node") == []


def test_seed_errors_name_the_problem() -> None:
    with pytest.raises(SeedError, match=r'Node n1: unknown field "spec.taint"'):
        DevCluster(seed=[{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}, "spec": {"taint": []}}])
    with pytest.raises(SeedError, match="unsupported apiVersion/kind batch/v1/Job"):
        DevCluster(seed=[{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "d"}}])


def test_cli_serves_and_writes_kubeconfig(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portal.devcluster",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--ready-delay",
            "0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for _ in range(20):
            line = process.stdout.readline()
            if "(Ctrl-C to stop)" in line:
                break
        else:
            pytest.fail("the dev cluster did not report its URL")
        api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        assert CoreV1Api(api).read_namespace("ai").metadata.name == "ai"
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0
