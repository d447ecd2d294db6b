"""The simulated KServe controller and scheduler, observed through the official client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.client import CoreV1Api, CustomObjectsApi, V1ObjectMeta, V1Secret

from portal.devcluster import DevCluster
from tests.devcluster.conftest import GROUP, PLURAL, REALISTIC_ISVC, VERSION, isvc, ready_condition

Wait = Callable[..., dict[str, Any]]
ISVC_PODS = "serving.kserve.io/inferenceservice={}"


def create(custom: CustomObjectsApi, body: dict) -> dict:
    return custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, body)


def delete(custom: CustomObjectsApi, name: str) -> None:
    custom.delete_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, name)


def test_loading_then_ready_with_url(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    create(custom, REALISTIC_ISVC)
    loading = custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")
    cond = ready_condition(loading)
    assert cond["status"] == "False"
    assert cond["reason"] == "PullingModel"
    assert "venus" in cond["message"]
    assert "url" not in loading["status"]
    pods = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items
    assert len(pods) == 1 and pods[0].status.phase == "Pending"

    ready = wait_for("active-llm")
    status = ready["status"]
    assert status["url"] == "http://active-llm.ai.svc.cluster.local"
    assert status["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "IngressReady": "True",
        "PredictorReady": "True",
        "Ready": "True",
    }
    assert status["modelStatus"]["states"]["activeModelState"] == "Loaded"
    pod = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items[0]
    assert pod.metadata.name.startswith("active-llm-predictor-00001-deployment-")
    assert pod.spec.node_name == "venus"
    assert pod.status.phase == "Running"
    assert pod.spec.containers[0].resources.limits["amd.com/gpu"] == "1"
    assert "Application startup complete." in core.read_namespaced_pod_log(pod.metadata.name, "ai")


def test_generated_status_fits_the_crd(custom: CustomObjectsApi, wait_for: Wait) -> None:
    from portal.devcluster import validate_inference_service

    create(custom, REALISTIC_ISVC)
    result = validate_inference_service(wait_for("active-llm"))
    assert result.ok and result.warnings == []


def test_no_node_matches_selector(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    create(custom, isvc(nodeSelector={"kubernetes.io/hostname": "mars"}))
    obj = wait_for("active-llm", ready=False, reason="Unschedulable")
    message = ready_condition(obj)["message"]
    assert message.startswith("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.")
    assert "kubernetes.io/hostname=mars" in message
    pod = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items[0]
    assert pod.status.phase == "Pending" and pod.spec.node_name is None
    assert pod.status.conditions[0].reason == "Unschedulable"
    events = core.list_namespaced_event("ai", field_selector=f"involvedObject.name={pod.metadata.name}").items
    assert [e.reason for e in events] == ["FailedScheduling"]


def test_too_many_gpus(custom: CustomObjectsApi, wait_for: Wait) -> None:
    body = isvc()
    body["spec"]["predictor"]["model"]["resources"] = {"limits": {"amd.com/gpu": "8"}, "requests": {"amd.com/gpu": "8"}}
    create(custom, body)
    message = ready_condition(wait_for("active-llm", ready=False, reason="Unschedulable"))["message"]
    assert "1 Insufficient amd.com/gpu" in message
    assert "1 node(s) didn't match Pod's node affinity/selector" in message
    assert "needs 8 amd.com/gpu per replica" in message
    assert "venus has 1 of 1 amd.com/gpu free" in message


def test_missing_toleration(custom: CustomObjectsApi, wait_for: Wait) -> None:
    create(custom, isvc(tolerations=[]))
    message = ready_condition(wait_for("active-llm", ready=False, reason="Unschedulable"))["message"]
    assert "1 node(s) had untolerated taint {amd.com/gpu: }" in message
    assert "venus needs a toleration for amd.com/gpu:NoSchedule" in message


def test_nvidia_node_without_selector(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    body = isvc(tolerations=None, nodeSelector=None)
    del body["spec"]["predictor"]["tolerations"], body["spec"]["predictor"]["nodeSelector"]
    body["spec"]["predictor"]["model"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    create(custom, body)
    obj = wait_for("active-llm")
    assert obj["status"]["url"] == "http://active-llm.ai.svc.cluster.local"
    pods = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items
    assert [(p.spec.node_name, p.status.phase) for p in pods] == [("gpu-l4-1", "Running")]


def test_second_service_waits_for_the_gpu(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    create(custom, isvc("first"))
    wait_for("first")
    create(custom, isvc("second"))
    blocked = wait_for("second", ready=False, reason="Unschedulable")
    message = ready_condition(blocked)["message"]
    assert "1 Insufficient amd.com/gpu" in message
    assert "venus has 0 of 1 amd.com/gpu free (ai/first holds 1)" in message
    gpu_pods = core.list_namespaced_pod(
        "ai", label_selector="serving.kserve.io/inferenceservice in (first,second)"
    ).items
    assert {(p.metadata.labels["serving.kserve.io/inferenceservice"], p.spec.node_name) for p in gpu_pods} == {
        ("first", "venus"),
        ("second", None),
    }

    delete(custom, "first")
    assert core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("first")).items == []
    ready = wait_for("second")
    assert ready["status"]["url"] == "http://second.ai.svc.cluster.local"
    assert core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("second")).items[0].spec.node_name == "venus"


def test_spec_change_rolls_out_a_new_revision(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    create(custom, REALISTIC_ISVC)
    wait_for("active-llm")
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "ai",
        PLURAL,
        "active-llm",
        {"spec": {"predictor": {"model": {"args": ["--dtype", "bfloat16"]}}}},
    )
    loading = custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")
    assert loading["status"]["observedGeneration"] == 2
    assert ready_condition(loading)["reason"] == "PullingModel"
    ready = wait_for("active-llm")
    assert ready["status"]["components"]["predictor"]["latestReadyRevision"] == "active-llm-predictor-00002"
    pods = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items
    assert [p.metadata.name.split("-deployment-")[0] for p in pods] == ["active-llm-predictor-00002"]


def test_missing_runtime_and_secret(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    body = isvc("no-runtime")
    body["spec"]["predictor"]["model"]["runtime"] = "tgi-runtime"
    create(custom, body)
    obj = wait_for("no-runtime", ready=False, reason="RuntimeNotRecognized")
    assert 'no ServingRuntime "tgi-runtime" in namespace "ai"' in ready_condition(obj)["message"]
    assert obj["status"]["modelStatus"]["transitionStatus"] == "InvalidSpec"
    delete(custom, "no-runtime")

    core.delete_namespaced_secret("hf-token", "ai")
    create(custom, REALISTIC_ISVC)
    blocked = wait_for("active-llm", ready=False, reason="CreateContainerConfigError")
    assert ready_condition(blocked)["message"] == 'secret "hf-token" not found'
    core.create_namespaced_secret(
        "ai", V1Secret(metadata=V1ObjectMeta(name="hf-token"), string_data={"HUGGING_FACE_HUB_TOKEN": "hf_x"})
    )
    wait_for("active-llm")


def test_stop_annotation_frees_the_gpu(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    create(custom, REALISTIC_ISVC)
    wait_for("active-llm")
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ai", PLURAL, "active-llm", {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    )
    stopped = wait_for("active-llm", ready=False, reason="Stopped")
    assert "url" not in stopped["status"]
    assert core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items == []


def test_deleted_pod_is_recreated(custom: CustomObjectsApi, core: CoreV1Api, wait_for: Wait) -> None:
    create(custom, REALISTIC_ISVC)
    wait_for("active-llm")
    pod = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items[0]
    core.delete_namespaced_pod(pod.metadata.name, "ai")
    replacement = core.list_namespaced_pod("ai", label_selector=ISVC_PODS.format("active-llm")).items
    assert len(replacement) == 1 and replacement[0].metadata.name != pod.metadata.name
    assert (
        ready_condition(custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm"))["reason"]
        == "PullingModel"
    )
    wait_for("active-llm")


def test_advance_skips_the_delay(tmp_path: Any) -> None:
    cluster = DevCluster(ready_delay=60)
    cluster.add(isvc())
    assert (
        ready_condition(cluster.get("serving.kserve.io/v1beta1", "InferenceService", "active-llm", "ai") or {})[
            "reason"
        ]
        == "PullingModel"
    )
    cluster.advance(61)
    assert (
        ready_condition(cluster.get("serving.kserve.io/v1beta1", "InferenceService", "active-llm", "ai") or {})[
            "status"
        ]
        == "True"
    )
