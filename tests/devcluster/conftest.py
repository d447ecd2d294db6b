"""Fixtures: a dev cluster on a free port, reached by the official client through a kubeconfig."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from portal.devcluster import DevCluster

GROUP, VERSION, PLURAL = "serving.kserve.io", "v1beta1", "inferenceservices"

REALISTIC_ISVC = yaml.safe_load(
    """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: active-llm
  namespace: ai
  annotations: {serving.kserve.io/secretName: hf-token, model-manager/model-id: qwen2.5-1.5b-instruct, storage.kserve.io/readonly: "false"}
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat: {name: custom}
      runtime: vllm-runtime
      storageUri: pvc://venus-model-storage/Qwen/Qwen2.5-1.5B-Instruct
      env: [{name: HF_HOME, value: /mnt/models/.hf-cache}, {name: HUGGING_FACE_HUB_TOKEN, valueFrom: {secretKeyRef: {name: hf-token, key: HUGGING_FACE_HUB_TOKEN}}}]
      args: ["--tensor-parallel-size", "1", "--dtype", "float16", "--served-model-name", "Qwen/Qwen2.5-1.5B-Instruct"]
      resources: {requests: {cpu: "6", memory: 16Gi, amd.com/gpu: "1"}, limits: {cpu: "10", memory: 20Gi, amd.com/gpu: "1"}}
    nodeSelector: {kubernetes.io/hostname: venus}
    tolerations: [{key: amd.com/gpu, operator: Exists, effect: NoSchedule}]
"""
)

READY_DELAY = 0.2


def isvc(name: str = "active-llm", **predictor_changes: Any) -> dict[str, Any]:
    """A copy of the realistic InferenceService, renamed, with predictor fields replaced."""
    obj = copy.deepcopy(REALISTIC_ISVC)
    obj["metadata"]["name"] = name
    obj["spec"]["predictor"].update(predictor_changes)
    return obj


def status_of(exc: ApiException) -> dict[str, Any]:
    """The Kubernetes Status body of a failed call."""
    body: dict[str, Any] = json.loads(exc.body)
    return body


@pytest.fixture
def cluster() -> Iterator[DevCluster]:
    dev = DevCluster(ready_delay=READY_DELAY)
    dev.start()
    yield dev
    dev.stop()


@pytest.fixture
def kubeconfig(cluster: DevCluster, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace="ai")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    yield client
    client.close()


@pytest.fixture
def core(api_client: ApiClient) -> CoreV1Api:
    return CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: ApiClient) -> CustomObjectsApi:
    return CustomObjectsApi(api_client)


@pytest.fixture
def wait_for(custom: CustomObjectsApi) -> Callable[..., dict[str, Any]]:
    """Poll an InferenceService until its Ready condition has `reason` (or status True)."""

    def wait(name: str, *, ready: bool = True, reason: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, name)
            cond = ready_condition(obj)
            if (ready and cond.get("status") == "True") or (not ready and cond.get("reason") == reason):
                return obj
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never reached ready={ready} reason={reason}: {cond}")
            time.sleep(0.05)

    return wait


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    """The Ready condition of an InferenceService (empty when it has no status yet)."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return dict(cond)
    return {}
