"""The real kubectl drives the dev cluster: validation (OpenAPI), apply, wait, patch, explain, replace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.devcluster import DevCluster
from tests.devcluster.conftest import REALISTIC_ISVC

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
pytestmark = pytest.mark.skipif(
    not os.access(KUBECTL, os.X_OK), reason="kubectl is not installed (Debian: apt-get install kubernetes-client)"
)

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """Run kubectl against the dev cluster with a private cache; `check=False` returns failures too."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "KUBECACHEDIR": str(tmp_path / "kube-cache"),
    }

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KUBECTL, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        if check and done.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
        return done

    return run


def manifest(**predictor_changes: Any) -> str:
    """The realistic InferenceService as YAML, with predictor fields replaced."""
    obj = json.loads(json.dumps(REALISTIC_ISVC))
    obj["spec"]["predictor"].update(predictor_changes)
    return yaml.safe_dump(obj)


def stored(cluster: DevCluster, name: str = "active-llm") -> dict[str, Any] | None:
    return cluster.get("serving.kserve.io/v1beta1", "InferenceService", name, "ai")


def test_a_whole_kubectl_session(cluster: DevCluster, kubectl: Kubectl) -> None:
    created = kubectl("apply", "-f", "-", stdin=manifest())
    assert created.stdout.strip() == "inferenceservice.serving.kserve.io/active-llm created"
    # Validation ran: kubectl read the group's OpenAPI document and left the checks to the server.
    assert any(r.path == "/openapi/v3/apis/serving.kserve.io/v1beta1" for r in cluster.requests)
    post = next(r for r in cluster.requests if r.method == "POST")
    assert post.query.get("fieldValidation") == "Strict"
    again = kubectl("apply", "-f", "-", stdin=manifest())
    assert again.stdout.strip() == "inferenceservice.serving.kserve.io/active-llm unchanged"

    kubectl("wait", "--for=condition=Ready", "inferenceservice/active-llm", "--timeout=30s")
    obj = stored(cluster)
    assert obj is not None and obj["status"]["url"] == "http://active-llm.ai.svc.cluster.local"

    kubectl("label", "inferenceservice", "active-llm", "team=llm")
    patch = [{"op": "replace", "path": "/spec/predictor/minReplicas", "value": 2}]
    kubectl("patch", "isvc", "active-llm", "--type=json", "-p", json.dumps(patch))
    obj = stored(cluster)
    assert obj is not None
    assert obj["metadata"]["labels"] == {"team": "llm"}
    assert obj["spec"]["predictor"]["minReplicas"] == 2 and obj["metadata"]["generation"] == 2

    server_side = kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=manifest(minReplicas=1))
    assert "serverside-applied" in server_side.stdout
    obj = stored(cluster)
    assert obj is not None and obj["spec"]["predictor"]["minReplicas"] == 1
    assert obj["metadata"]["labels"] == {"team": "llm"}  # server-side apply keeps what it does not own

    dry = kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest(minReplicas=3))
    assert "(server dry run)" in dry.stdout
    obj = stored(cluster)
    assert obj is not None and obj["spec"]["predictor"]["minReplicas"] == 1

    current = kubectl("get", "isvc", "active-llm", "-o", "yaml").stdout
    edited = current.replace("minReplicas: 1", "minReplicas: 2")
    assert "replaced" in kubectl("replace", "-f", "-", stdin=edited).stdout
    obj = stored(cluster)
    assert obj is not None and obj["spec"]["predictor"]["minReplicas"] == 2

    deleted = kubectl("delete", "isvc", "active-llm")
    assert 'inferenceservice.serving.kserve.io "active-llm" deleted' in deleted.stdout
    gone = kubectl("get", "isvc", "active-llm", check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr
    assert stored(cluster) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"minReplicas": "many"}, "spec.predictor.minReplicas in body must be of type integer"),
        ({"bogusField": 1}, 'unknown field "spec.predictor.bogusField"'),
    ],
)
def test_an_invalid_manifest_is_refused_and_not_stored(
    cluster: DevCluster, kubectl: Kubectl, change: dict[str, Any], message: str
) -> None:
    refused = kubectl("apply", "-f", "-", stdin=manifest(**change), check=False)
    assert refused.returncode == 1
    assert message in refused.stderr
    assert stored(cluster) is None


def test_explain_reads_the_crd_schema(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "inferenceservice.spec.predictor").stdout
    assert "KIND:       InferenceService" in explained
    assert "VERSION:    v1beta1" in explained
    assert "minReplicas\t<integer>" in explained
    assert "model\t<Object>" in explained
    runtimes = kubectl("explain", "servingruntime.spec.supportedModelFormats").stdout
    assert "autoSelect\t<boolean>" in runtimes


def test_explain_core_types(kubectl: Kubectl) -> None:
    explained = kubectl("explain", "pod.spec.containers.resources").stdout
    assert "KIND:       Pod" in explained
    assert "limits\t<map[string]" in explained


def test_core_objects_apply_with_validation(cluster: DevCluster, kubectl: Kubectl) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    assert "created" in kubectl("apply", "-f", "-", stdin=yaml.safe_dump(config_map)).stdout
    config_map["data"] = {"a": "2"}
    assert "configured" in kubectl("apply", "-f", "-", stdin=yaml.safe_dump(config_map)).stdout
    obj = cluster.get("v1", "ConfigMap", "settings", "ai")
    assert obj is not None and obj["data"] == {"a": "2"}


def test_get_prints_the_usual_columns(cluster: DevCluster, kubectl: Kubectl) -> None:
    kubectl("apply", "-f", "-", stdin=manifest())
    kubectl("wait", "--for=condition=Ready", "inferenceservice/active-llm", "--timeout=30s")
    header, row = kubectl("get", "isvc").stdout.strip().splitlines()
    assert header.split()[:3] == ["NAME", "URL", "READY"]  # the CRD's printer columns
    assert row.split()[:3] == ["active-llm", "http://active-llm.ai.svc.cluster.local", "True"]
    header, row = kubectl("get", "pods", "-o", "wide").stdout.strip().splitlines()
    assert header.split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert row.split()[1:3] == ["1/1", "Running"] and row.split()[6] == "venus"
    nodes = kubectl("get", "nodes").stdout.strip().splitlines()
    assert [line.split()[:2] for line in nodes[1:]] == [["gpu-l4-1", "Ready"], ["venus", "Ready"]]
    everywhere = kubectl("get", "isvc", "--all-namespaces").stdout.strip().splitlines()
    assert everywhere[1].split()[:2] == ["ai", "active-llm"]
