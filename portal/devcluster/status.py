"""Status bodies the simulated KServe writes: Pod phases and InferenceService conditions.

Pure functions of their arguments (and the clock values passed in), shaped like what kubelet and
KServe's controller write, so that `kubectl get`/`describe` and the portal read them as usual.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"


def timestamp(moment: float) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes metadata timestamps."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Outcome:
    """Where an InferenceService's rollout stands: Ready, Loading, Unschedulable, Blocked or Stopped."""

    state: str
    reason: str
    message: str
    since: float


def host_ip(node: str) -> str:
    """A stable made-up IP for a node (or a pod, rewritten to the pod network)."""
    digest = hashlib.sha256(node.encode()).digest()
    return f"10.0.{digest[0]}.{digest[1] % 250 + 2}"


def unschedulable_pod_status(message: str) -> dict[str, Any]:
    """A Pending Pod the scheduler could not place."""
    return {
        "phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}],
        "qosClass": "Burstable",
    }


def _container_statuses(pod: dict[str, Any], state: dict[str, Any], ready: bool) -> list[dict[str, Any]]:
    return [
        {
            "name": c.get("name", "kserve-container"),
            "image": c.get("image", ""),
            "imageID": f"{c.get('image', '')}@sha256:{hashlib.sha256(str(c.get('image')).encode()).hexdigest()}"
            if ready
            else "",
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": state,
        }
        for c in pod["spec"].get("containers") or []
    ]


def waiting_pod_status(pod: dict[str, Any], reason: str, message: str, since: float) -> dict[str, Any]:
    """A scheduled Pod whose containers wait (`ContainerCreating`, `CreateContainerConfigError`)."""
    waiting: dict[str, Any] = {"reason": reason}
    if message:
        waiting["message"] = message
    return {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": timestamp(since)},
            {"type": "Initialized", "status": "True", "lastTransitionTime": timestamp(since)},
            {
                "type": "ContainersReady",
                "status": "False",
                "reason": "ContainersNotReady",
                "lastTransitionTime": timestamp(since),
            },
            {
                "type": "Ready",
                "status": "False",
                "reason": "ContainersNotReady",
                "lastTransitionTime": timestamp(since),
            },
        ],
        "containerStatuses": _container_statuses(pod, {"waiting": waiting}, ready=False),
        "startTime": timestamp(since),
        "qosClass": "Burstable",
    }


def running_pod_status(pod: dict[str, Any], started: float, ready_at: float) -> dict[str, Any]:
    """A Running, Ready Pod."""
    return {
        "phase": "Running",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": timestamp(started)},
            {"type": "Initialized", "status": "True", "lastTransitionTime": timestamp(started)},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": timestamp(ready_at)},
            {"type": "Ready", "status": "True", "lastTransitionTime": timestamp(ready_at)},
        ],
        "containerStatuses": _container_statuses(pod, {"running": {"startedAt": timestamp(started)}}, ready=True),
        "podIP": host_ip(pod["metadata"]["name"]).replace("10.0.", "10.244.", 1),
        "startTime": timestamp(started),
        "qosClass": "Burstable",
    }


def condition_of(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of the condition of type `kind`, or {}."""
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def inference_service_status(
    isvc: dict[str, Any],
    outcome: Outcome,
    previous: dict[str, Any],
    *,
    revision_number: int,
    copies: int,
    runtime: str | None,
) -> dict[str, Any]:
    """The InferenceService `status` KServe would write; transition times kept from `previous`."""
    meta = isvc["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    ready = outcome.state == "Ready"
    revision = f"{name}-predictor-{revision_number:05d}"

    def condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict[str, Any]:
        status = "True" if ok else "False"
        old = condition_of(previous, kind)
        same = old.get("status") == status and old.get("reason", "") == reason
        cond: dict[str, Any] = {
            "lastTransitionTime": old["lastTransitionTime"]
            if same and "lastTransitionTime" in old
            else timestamp(outcome.since),
            "status": status,
            "type": kind,
        }
        if not ok:
            cond["reason"] = reason
            cond["message"] = message
        return cond

    ingress_message = "Waiting for the predictor to become ready"
    status: dict[str, Any] = {
        "conditions": [
            condition("IngressReady", ready, "PredictorNotReady", ingress_message),
            condition("PredictorReady", ready, outcome.reason, outcome.message),
            condition("Ready", ready, outcome.reason, outcome.message),
        ],
        "deploymentMode": (meta.get("annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION, "RawDeployment"),
        "observedGeneration": int(meta.get("generation") or 1),
    }
    components: dict[str, Any] = {"latestCreatedRevision": revision}
    if ready:
        predictor_url = f"http://{name}-predictor.{namespace}.svc.cluster.local"
        components.update({"latestReadyRevision": revision, "url": predictor_url, "address": {"url": predictor_url}})
        status["url"] = f"http://{name}.{namespace}.svc.cluster.local"
        status["address"] = {"url": predictor_url}
    status["components"] = {"predictor": components}
    if runtime:
        status["servingRuntimeName"] = runtime
    if ready:
        model_status: dict[str, Any] = {
            "copies": {"failedCopies": 0, "totalCopies": copies},
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate",
        }
    elif outcome.state == "Blocked" and outcome.reason in (
        "RuntimeNotRecognized",
        "NoSupportingRuntime",
        "RuntimeDisabled",
    ):
        model_status = {
            "copies": {"failedCopies": 0},
            "lastFailureInfo": {"reason": outcome.reason, "message": outcome.message},
            "states": {"activeModelState": "", "targetModelState": ""},
            "transitionStatus": "InvalidSpec",
        }
    else:
        active = "Loading" if outcome.state == "Loading" else "Pending"
        model_status = {
            "copies": {"failedCopies": 0},
            "states": {"activeModelState": active, "targetModelState": "Loaded"},
            "transitionStatus": "InProgress",
        }
    status["modelStatus"] = model_status
    return status
