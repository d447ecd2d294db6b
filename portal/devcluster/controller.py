"""A simulated KServe controller, evaluated lazily.

Nothing runs in the background: before every request (and while a watch waits) the API server
calls `reconcile()`, which brings each InferenceService's pods and status up to date with the
clock. The outcome depends only on the store and the time, so tests are deterministic:

- the predictor's serving runtime must exist, be enabled and support the model format, else
  `Ready=False` with KServe's reason (`RuntimeNotRecognized`, `NoSupportingRuntime`, ...);
- one Pod per replica (`max(1, minReplicas)`) is created, named like KServe's
  (`<name>-predictor-00001-deployment-<hash>-<hash>`) and labelled
  `serving.kserve.io/inferenceservice=<name>`;
- each Pod is placed by `scheduler.schedule` (kube-scheduler's filters, looking only at GPUs and
  PVCs). A Pod that does not fit stays Pending and the InferenceService reports `Unschedulable`
  with the scheduler's message plus what is missing where;
- Secrets and ConfigMaps referenced from the container environment must exist
  (`CreateContainerConfigError` otherwise);
- `ready_delay` seconds after the Pods start ("loading the model") they turn Running and the
  InferenceService `Ready=True` with `status.url` (the status bodies are built in `status`).

A spec change (new generation) replaces the Pods (Recreate, not a rolling update, so a single
GPU is never needed twice); the annotation `serving.kserve.io/stop: "true"` removes them. Pods
deleted by hand are recreated; Pods of a deleted InferenceService are removed.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portal.devcluster.resources import (
    CLUSTER_SERVING_RUNTIMES,
    CONFIG_MAPS,
    EVENTS,
    INFERENCE_SERVICES,
    ISVC_LABEL,
    PODS,
    SECRETS,
    SERVING_RUNTIMES,
    ResourceType,
)
from portal.devcluster.scheduler import schedule
from portal.devcluster.status import (
    Outcome,
    condition_of,
    host_ip,
    inference_service_status,
    running_pod_status,
    timestamp,
    unschedulable_pod_status,
    waiting_pod_status,
)
from portal.devcluster.store import Store

STOP_ANNOTATION = "serving.kserve.io/stop"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_IMPLEMENTATIONS = ("sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface", "pmml",
                    "lightgbm", "paddle")  # fmt: skip
_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "nodeName", "schedulerName",
                      "priorityClassName", "serviceAccountName", "imagePullSecrets", "runtimeClassName")  # fmt: skip


def _safe_hash(*parts: object, length: int) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return "".join(_SAFE_ALPHABET[b % len(_SAFE_ALPHABET)] for b in digest[:length])


# --------------------------------------------------------------------------- the controller


@dataclass
class _Rollout:
    generation: int
    revision: int
    pods: list[str] = field(default_factory=list)
    attempts: int = 0
    started_at: float | None = None
    runtime: str | None = None


class KServeController:
    """Keeps InferenceService status and predictor Pods in step with the store and the clock."""

    def __init__(self, store: Store, clock: Callable[[], float], ready_delay: float) -> None:
        self.store = store
        self.clock = clock
        self.ready_delay = ready_delay
        self._rollouts: dict[str, _Rollout] = {}

    def next_change(self) -> float | None:
        """When a Loading InferenceService will turn Ready without any write happening."""
        pending = [r.started_at + self.ready_delay for r in self._rollouts.values() if r.started_at is not None]
        future = [t for t in pending if t > self.clock()]
        return min(future) if future else None

    def reconcile(self) -> None:
        """Bring every InferenceService and its Pods up to date; the caller holds the store lock."""
        now = self.clock()
        services = sorted(self.store.items(INFERENCE_SERVICES), key=self.store.creation_order)
        live = set()
        for isvc in services:
            live.add(isvc["metadata"]["uid"])
            self._reconcile_one(isvc, now)
        for uid in list(self._rollouts):
            if uid not in live:
                del self._rollouts[uid]
        for pod in self.store.items(PODS):
            owner = _owner_uid(pod)
            if owner is not None and owner not in live:
                self.store.remove(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])

    # ---- one InferenceService

    def _reconcile_one(self, isvc: dict[str, Any], now: float) -> None:
        meta = isvc["metadata"]
        uid, generation = meta["uid"], int(meta.get("generation") or 1)
        rollout = self._rollouts.get(uid)
        if rollout is None or rollout.generation != generation:
            if rollout is not None:
                self._delete_pods(meta["namespace"], rollout.pods)
            rollout = _Rollout(generation, rollout.revision + 1 if rollout else 1)
            self._rollouts[uid] = rollout
        annotations = meta.get("annotations") or {}
        if str(annotations.get(STOP_ANNOTATION, "")).lower() == "true":
            self._delete_pods(meta["namespace"], rollout.pods)
            rollout.pods, rollout.started_at = [], None
            outcome = Outcome("Stopped", "Stopped", f'The InferenceService is stopped ({STOP_ANNOTATION}: "true")', now)
            self._write_status(isvc, rollout, outcome, now)
            return
        runtime, problem = self._resolve_runtime(isvc)
        rollout.runtime = runtime["metadata"]["name"] if runtime else None
        if problem is not None:
            self._delete_pods(meta["namespace"], rollout.pods)
            rollout.pods, rollout.started_at = [], None
            self._write_status(isvc, rollout, Outcome("Blocked", problem[0], problem[1], now), now)
            return
        pods = self._ensure_pods(isvc, rollout, runtime)
        outcome = self._advance(isvc, rollout, pods, now)
        self._write_status(isvc, rollout, outcome, now)

    def _resolve_runtime(self, isvc: dict[str, Any]) -> tuple[dict[str, Any] | None, tuple[str, str] | None]:
        namespace = isvc["metadata"]["namespace"]
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        model = predictor.get("model")
        framework = next((k for k in _IMPLEMENTATIONS if predictor.get(k) is not None), None)
        if model is None and framework is None:
            return None, None  # custom containers need no runtime
        model = model if model is not None else predictor[framework or ""]
        model_format = ((model.get("modelFormat") or {}).get("name") or framework or "").lower()
        wanted = model.get("runtime")
        if wanted:
            runtime = self.store.get(SERVING_RUNTIMES, namespace, wanted) or self.store.get(
                CLUSTER_SERVING_RUNTIMES, "", wanted
            )
            if runtime is None:
                return None, (
                    "RuntimeNotRecognized",
                    f'Waiting for runtime to become available: no ServingRuntime "{wanted}" in namespace '
                    f'"{namespace}" and no ClusterServingRuntime "{wanted}"',
                )
            if (runtime.get("spec") or {}).get("disabled"):
                return runtime, ("RuntimeDisabled", f'Specified runtime "{wanted}" is disabled')
            formats = _formats(runtime)
            if model_format not in formats:
                return runtime, (
                    "NoSupportingRuntime",
                    f'Specified runtime "{wanted}" does not support model format "{model_format}" '
                    f"(it supports: {', '.join(sorted(formats)) or 'nothing'})",
                )
            return runtime, None
        candidates = [
            rt
            for rt in self.store.items(SERVING_RUNTIMES, namespace) + self.store.items(CLUSTER_SERVING_RUNTIMES)
            if not (rt.get("spec") or {}).get("disabled") and _formats(rt, auto_select_only=True).get(model_format)
        ]
        if not candidates:
            return None, (
                "NoSupportingRuntime",
                f'No runtime found to support predictor with model type "{model_format}": set '
                "spec.predictor.model.runtime or add a ServingRuntime with autoSelect for this format",
            )
        return candidates[0], None

    def _ensure_pods(
        self, isvc: dict[str, Any], rollout: _Rollout, runtime: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        namespace = isvc["metadata"]["namespace"]
        pods = [p for p in (self.store.get(PODS, namespace, n) for n in rollout.pods) if p is not None]
        if len(pods) < len(rollout.pods):
            rollout.started_at = None  # a Pod went away: the replacement loads the model again
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        replicas = max(1, int(predictor.get("minReplicas") or 1))
        while len(pods) > replicas:
            extra = pods.pop()
            self.store.remove(PODS, namespace, extra["metadata"]["name"])
        while len(pods) < replicas:
            rollout.attempts += 1
            pods.append(self.store.save(PODS, self._new_pod(isvc, rollout, runtime)))
        rollout.pods = [p["metadata"]["name"] for p in pods]
        return pods

    def _new_pod(self, isvc: dict[str, Any], rollout: _Rollout, runtime: dict[str, Any] | None) -> dict[str, Any]:
        meta = isvc["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        revision = f"{name}-predictor-{rollout.revision:05d}"
        template_hash = _safe_hash(meta["uid"], rollout.revision, length=10)
        pod_name = f"{revision}-deployment-{template_hash}-{_safe_hash(meta['uid'], 'pod', rollout.attempts, length=5)}"
        spec: dict[str, Any] = {k: copy.deepcopy(predictor[k]) for k in _SCHEDULING_FIELDS if k in predictor}
        spec["containers"] = _containers(predictor, runtime)
        spec["restartPolicy"] = "Always"
        spec.setdefault("schedulerName", "default-scheduler")
        volumes = copy.deepcopy(predictor.get("volumes") or [])
        claim = _pvc_claim(predictor)
        if claim:
            volumes.append(
                {"name": "kserve-pvc-source", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
            )
        if volumes:
            spec["volumes"] = volumes
        if predictor.get("resources"):
            spec["resources"] = copy.deepcopy(predictor["resources"])
        labels = {
            ISVC_LABEL: name,
            "component": "predictor",
            "app": revision,
            "pod-template-hash": template_hash,
            "serving.kserve.io/revision": revision,
        }
        now = self.clock()
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": namespace,
                "uid": str(uuid.uuid4()),
                "creationTimestamp": timestamp(now),
                "labels": labels,
                "annotations": {"serving.kserve.io/owner-uid": meta["uid"]},
                "ownerReferences": [
                    {
                        "apiVersion": INFERENCE_SERVICES.api_version,
                        "kind": INFERENCE_SERVICES.kind,
                        "name": name,
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }

    def _advance(self, isvc: dict[str, Any], rollout: _Rollout, pods: list[dict[str, Any]], now: float) -> Outcome:
        namespace = isvc["metadata"]["namespace"]
        unplaced = ""
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName"):
                continue
            placement = schedule(self.store, pod)
            if placement.node is None:
                unplaced = placement.message
                self._save_pod_status(pod, unschedulable_pod_status(placement.message))
                self._event(
                    pod, PODS, "Warning", "FailedScheduling", placement.message, component="default-scheduler", now=now
                )
                continue
            bound = copy.deepcopy(pod)
            bound["spec"]["nodeName"] = placement.node
            self.store.save(PODS, bound)
            message = f"Successfully assigned {namespace}/{pod['metadata']['name']} to {placement.node}"
            self._event(pod, PODS, "Normal", "Scheduled", message, component="default-scheduler", now=now)
        if unplaced:
            rollout.started_at = None
            return Outcome("Unschedulable", "Unschedulable", unplaced, now)
        pods = [p for p in (self.store.get(PODS, namespace, n) for n in rollout.pods) if p is not None]
        if rollout.started_at is None:
            config_error = self._config_error(isvc)
            if config_error:
                for pod in pods:
                    self._save_pod_status(pod, waiting_pod_status(pod, "CreateContainerConfigError", config_error, now))
                return Outcome("Blocked", "CreateContainerConfigError", config_error, now)
            rollout.started_at = now
        ready_at = rollout.started_at + self.ready_delay
        storage = _storage_uri(isvc) or "the model"
        nodes = ", ".join(sorted({p["spec"]["nodeName"] for p in pods}))
        if now < ready_at:
            for pod in pods:
                self._save_pod_status(pod, waiting_pod_status(pod, "ContainerCreating", "", rollout.started_at))
            message = f"Loading {storage} on {nodes}"
            return Outcome("Loading", "PullingModel", message, rollout.started_at)
        for pod in pods:
            self._save_pod_status(pod, running_pod_status(pod, rollout.started_at, ready_at))
        return Outcome("Ready", "", "", ready_at)

    def _config_error(self, isvc: dict[str, Any]) -> str | None:
        namespace = isvc["metadata"]["namespace"]
        predictor = (isvc.get("spec") or {}).get("predictor") or {}
        containers = [predictor["model"]] if predictor.get("model") else []
        containers += predictor.get("containers") or []
        for container in containers:
            for env in container.get("env") or []:
                source = env.get("valueFrom") or {}
                for ref_key, rtype, label in (
                    ("secretKeyRef", SECRETS, "Secret"),
                    ("configMapKeyRef", CONFIG_MAPS, "ConfigMap"),
                ):
                    ref = source.get(ref_key)
                    if ref and not ref.get("optional"):
                        problem = _missing_key(
                            self.store, rtype, label, namespace=namespace, name=ref.get("name", ""), key=ref.get("key")
                        )
                        if problem:
                            return problem
            for env_from in container.get("envFrom") or []:
                for ref_key, rtype, label in (
                    ("secretRef", SECRETS, "Secret"),
                    ("configMapRef", CONFIG_MAPS, "ConfigMap"),
                ):
                    ref = env_from.get(ref_key)
                    if ref and not ref.get("optional"):
                        problem = _missing_key(
                            self.store, rtype, label, namespace=namespace, name=ref.get("name", ""), key=None
                        )
                        if problem:
                            return problem
        return None

    # ---- writes

    def _delete_pods(self, namespace: str, names: list[str]) -> None:
        for name in names:
            self.store.remove(PODS, namespace, name)

    def _save_pod_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        current = self.store.get(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"])
        if current is None or current.get("status") == status:
            return
        updated = copy.deepcopy(current)
        updated["status"] = status
        if updated["spec"].get("nodeName"):
            updated["status"]["hostIP"] = host_ip(updated["spec"]["nodeName"])
        if updated == current:
            return
        self.store.save(PODS, updated)

    def _write_status(self, isvc: dict[str, Any], rollout: _Rollout, outcome: Outcome, now: float) -> None:
        previous = isvc.get("status") or {}
        status = inference_service_status(
            isvc, outcome, previous, revision_number=rollout.revision, copies=len(rollout.pods), runtime=rollout.runtime
        )
        if status == previous:
            return
        old_ready = condition_of(previous, "Ready")
        new_ready = condition_of(status, "Ready")
        updated = copy.deepcopy(isvc)
        updated["status"] = status
        self.store.save(INFERENCE_SERVICES, updated)
        if (old_ready or {}).get("reason") != new_ready.get("reason") or (old_ready or {}).get(
            "status"
        ) != new_ready.get("status"):
            if outcome.state == "Ready":
                name = isvc["metadata"]["name"]
                self._event(
                    updated,
                    INFERENCE_SERVICES,
                    "Normal",
                    "InferenceServiceReady",
                    f"InferenceService [{name}] is Ready",
                    component="kserve-controller",
                    now=now,
                )
            elif outcome.state in ("Unschedulable", "Blocked"):
                self._event(
                    updated,
                    INFERENCE_SERVICES,
                    "Warning",
                    outcome.reason,
                    outcome.message,
                    component="kserve-controller",
                    now=now,
                )

    def _event(
        self,
        obj: dict[str, Any],
        rtype: ResourceType,
        kind: str,
        reason: str,
        message: str,
        *,
        component: str,
        now: float,
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace", "default")
        event_name = f"{meta['name']}.{_safe_hash(meta.get('uid'), reason, message, length=8)}"
        existing = self.store.get(EVENTS, namespace, event_name)
        if existing is not None:
            if existing.get("count", 1) >= 1 and existing.get("lastTimestamp") == timestamp(now):
                return
            if reason == "FailedScheduling":
                return  # the scheduler backs off; one event per distinct message is enough here
            event = copy.deepcopy(existing)
            event["count"] = int(event.get("count", 1)) + 1
            event["lastTimestamp"] = timestamp(now)
        else:
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    "name": event_name,
                    "namespace": namespace,
                    "uid": str(uuid.uuid4()),
                    "creationTimestamp": timestamp(now),
                },
                "involvedObject": {
                    "apiVersion": rtype.api_version,
                    "kind": rtype.kind,
                    "name": meta["name"],
                    "namespace": namespace,
                    "uid": meta.get("uid"),
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": kind,
                "count": 1,
                "firstTimestamp": timestamp(now),
                "lastTimestamp": timestamp(now),
                "source": {"component": component},
                "reportingComponent": component,
                "reportingInstance": "",
            }
        self.store.save(EVENTS, event)


# --------------------------------------------------------------------------- helpers


def _owner_uid(pod: dict[str, Any]) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == INFERENCE_SERVICES.kind and ref.get("apiVersion") == INFERENCE_SERVICES.api_version:
            return str(ref.get("uid"))
    return None


def _formats(runtime: dict[str, Any], *, auto_select_only: bool = False) -> dict[str, bool]:
    formats: dict[str, bool] = {}
    for entry in (runtime.get("spec") or {}).get("supportedModelFormats") or []:
        if not auto_select_only or entry.get("autoSelect"):
            formats[str(entry.get("name", "")).lower()] = True
    return formats


def _missing_key(
    store: Store, rtype: ResourceType, label: str, *, namespace: str, name: str, key: str | None
) -> str | None:
    obj = store.get(rtype, namespace, name)
    if obj is None:
        return f'{label.lower()} "{name}" not found'
    if key is not None and key not in (obj.get("data") or {}) and key not in (obj.get("binaryData") or {}):
        return f"couldn't find key {key} in {label} {namespace}/{name}"
    return None


def _storage_uri(isvc: dict[str, Any]) -> str | None:
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model") or {}
    uri = model.get("storageUri")
    return str(uri) if uri else None


def _pvc_claim(predictor: dict[str, Any]) -> str | None:
    uri = (predictor.get("model") or {}).get("storageUri") or ""
    match = re.match(r"^pvc://([^/]+)", str(uri))
    return match.group(1) if match else None


def _containers(predictor: dict[str, Any], runtime: dict[str, Any] | None) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = []
    model = predictor.get("model")
    if model is not None:
        runtime_containers = ((runtime or {}).get("spec") or {}).get("containers") or [{}]
        base = runtime_containers[0]
        container: dict[str, Any] = {
            "name": "kserve-container",
            "image": model.get("image") or base.get("image") or "kserve/huggingfaceserver:latest",
        }
        for key in ("command", "args", "env", "envFrom", "resources", "ports"):
            value = model.get(key) if model.get(key) is not None else base.get(key)
            if value is not None:
                container[key] = copy.deepcopy(value)
        if _pvc_claim(predictor):
            container["volumeMounts"] = [{"name": "kserve-pvc-source", "mountPath": "/mnt/pvc", "readOnly": True}]
        containers.append(container)
    for extra in predictor.get("containers") or []:
        containers.append(copy.deepcopy(extra))
    for container in containers:
        _quantities_as_strings(container.get("resources"))
    return containers


def _quantities_as_strings(resources: dict[str, Any] | None) -> None:
    """Write quantities as the API server serializes a Pod's (`1` → `"1"`); clients expect strings."""
    for kind in ("requests", "limits"):
        values = (resources or {}).get(kind)
        if isinstance(values, dict):
            for name, value in values.items():
                values[name] = str(value)
