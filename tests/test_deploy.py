"""deploy/: the kustomize base renders, every object is valid, and RBAC grants exactly what the code calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import yaml
from flask import Flask

from portal.devcluster.cluster import DevCluster, RecordedRequest
from portal.services import activation, discovery, fit_measurement, validation
from portal.services.cluster import KUBERNETES_PERMISSIONS, Permission
from portal.services.cluster_watch import start_watcher

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
needs_kubectl = pytest.mark.skipif(
    not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed (Debian: apt-get install kubernetes-client)"
)
LAYOUTS = ["deploy/base", "deploy/overlays/external-services"]


def kubectl(*args: str, kubeconfig: Path | None = None, stdin: str | None = None) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if kubeconfig is not None:
        env.update(HOME=str(kubeconfig.parent), KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(kubeconfig.parent / "kc"))
    done = subprocess.run(
        [KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=False
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def render(layout: str) -> list[dict[str, Any]]:
    return [obj for obj in yaml.safe_load_all(kubectl("kustomize", layout)) if obj]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def granted(objects: list[dict[str, Any]]) -> set[Permission]:
    """The Role's rules as namespaced permissions plus the ClusterRole's as cluster-wide ones."""
    found: set[Permission] = set()
    for kind, cluster_wide in (("Role", False), ("ClusterRole", True)):
        for role in by_kind(objects, kind).values():
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        found.update(Permission(group, resource, verb, cluster_wide) for verb in rule["verbs"])
    return found


def permission_of(request: RecordedRequest, namespace: str) -> Permission:
    """The RBAC check a request to the API server makes (verb, group, resource, scope)."""
    parts = [unquote(p) for p in request.path.split("/") if p]
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[2:] if parts[0] == "api" else parts[3:]
    cluster_wide = True
    if rest[0] == "namespaces" and len(rest) > 2:
        assert rest[1] == namespace, request
        cluster_wide, rest = False, rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    named = len(rest) > 1
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(request.method)
    if request.method == "GET":
        verb = "get" if named else ("watch" if request.query.get("watch") in ("true", "1") else "list")
    if request.method == "DELETE":
        verb = "delete" if named else "deletecollection"
    assert verb is not None, request
    return Permission(group, resource, verb, cluster_wide)


@needs_kubectl
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_object_is_accepted_by_the_api_server(layout: str, devcluster: DevCluster) -> None:
    rendered = kubectl("kustomize", layout)
    out = kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        kubeconfig=devcluster.kubeconfig,
        stdin=rendered,  # type: ignore[attr-defined]
    )
    lines = out.strip().splitlines()
    assert len(lines) == len([o for o in yaml.safe_load_all(rendered) if o])
    assert all(line.endswith("(server dry run)") for line in lines), out
    assert devcluster.list("apps/v1", "Deployment", "ai") == []  # a dry run stores nothing


@needs_kubectl
def test_a_broken_manifest_is_refused(devcluster: DevCluster) -> None:
    """The dry run really validates: an unknown field in a Deployment is refused."""
    web = by_kind(render("deploy/base"), "Deployment")["model-manager-web"]
    web["spec"]["template"]["spec"]["containers"][0]["livenessProb"] = {}
    done = subprocess.run(
        [KUBECTL, "apply", "--dry-run=server", "-f", "-"],
        input=yaml.safe_dump(web),
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(devcluster.kubeconfig.parent),  # type: ignore[attr-defined]
            "KUBECONFIG": str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        },
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert 'unknown field "spec.template.spec.containers[0].livenessProb"' in done.stderr


@needs_kubectl
@pytest.mark.parametrize("layout", LAYOUTS)
def test_rbac_grants_exactly_the_calls_of_the_code(layout: str) -> None:
    objects = render(layout)
    assert granted(objects) == set(KUBERNETES_PERMISSIONS)
    assert not any(p.resource == "secrets" and p.verb in ("list", "watch") for p in granted(objects))
    (binding,) = by_kind(objects, "RoleBinding").values()
    (cluster_binding,) = by_kind(objects, "ClusterRoleBinding").values()
    subject = {"kind": "ServiceAccount", "name": "model-manager", "namespace": "ai"}
    assert cluster_binding["subjects"] == [subject]
    assert binding["subjects"][0]["name"] == "model-manager" and binding["metadata"]["namespace"] == "ai"
    for deployment in ("model-manager-web", "model-manager-worker"):
        assert by_kind(objects, "Deployment")[deployment]["spec"]["template"]["spec"]["serviceAccountName"] == (
            "model-manager"
        )


@needs_kubectl
def test_web_deployment_has_probes_metrics_and_catalog_sync() -> None:
    objects = render("deploy/base")
    web = by_kind(objects, "Deployment")["model-manager-web"]["spec"]["template"]
    annotations = web["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    containers = {c["name"]: c for c in web["spec"]["containers"]}
    assert set(containers) == {"web", "git-sync"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert containers["web"][probe]["httpGet"]["path"] == "/healthz"
    (config,) = by_kind(objects, "ConfigMap").values()
    multiproc = config["data"]["PROMETHEUS_MULTIPROC_DIR"]
    mounts = {m["mountPath"]: m["name"] for m in containers["web"]["volumeMounts"]}
    volumes = {v["name"]: v for v in web["spec"]["volumes"]}
    assert "emptyDir" in volumes[mounts[multiproc]]
    assert mounts["/workspace"] in [m["name"] for m in containers["git-sync"]["volumeMounts"]]
    assert config["data"]["MODEL_CATALOG_ROOT"].startswith("/workspace/")


@needs_kubectl
def test_external_services_overlay_scales_web_with_postgres() -> None:
    objects = render("deploy/overlays/external-services")
    deployments = by_kind(objects, "Deployment")
    assert set(deployments) == {"model-manager-web", "model-manager-worker"}  # no in-cluster Redis
    assert deployments["model-manager-web"]["spec"]["replicas"] > 1
    (config,) = by_kind(objects, "ConfigMap").values()
    assert config["data"]["DATASTORE_DRIVER"] == "postgres"
    assert "PersistentVolumeClaim" not in {o["kind"] for o in objects}  # no SQLite volume to share


def test_the_gateway_calls_only_what_the_table_lists(cluster_app: Flask, devcluster: DevCluster) -> None:
    """Run every operation that reaches Kubernetes and compare the requests with the table."""
    devcluster.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "ai"},
            "data": {"a": "1"},
        }
    )
    devcluster.requests.clear()
    start_watcher(cluster_app)  # list + watch of InferenceServices, nodes and pods
    activation.activate("tiny-gpt2-test", actor="test")  # read (404) + create
    activation.dry_run_model("qwen2.5-1.5b-instruct")  # read + replace as a dry run
    activation.activate("qwen2.5-1.5b-instruct", actor="test")  # read + replace
    activation.active_status()
    entry = activation.manifest_for("qwen2.5-1.5b-instruct")["model"]
    entry["env"] = [*entry["env"], {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "a"}}}]
    checks = {c["name"]: c["status"] for c in validation.validate_entry(entry)["checks"]}
    assert checks["configmap:settings"] == "pass" and checks["secret:hf-token"] == "pass", checks
    validation.validate_entry({**entry, "runtime": "cluster-wide-runtime"})  # namespaced miss, then cluster-wide
    discovery.inventory(fresh=True)
    found, deadline = None, time.monotonic() + 10
    while found is None and time.monotonic() < deadline:  # the fit measurement: predictor pod + its log
        found = fit_measurement.read_predictor_log("ai", "active-llm")
        time.sleep(0.05)
    assert found is not None and "KV Cache" in found[1]
    activation.deactivate(actor="test")
    called = {permission_of(r, "ai") for r in devcluster.requests}
    assert called == set(KUBERNETES_PERMISSIONS)
