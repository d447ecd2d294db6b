"""A kube-scheduler stand-in for the dev cluster: does a Pod fit a node, looking only at GPUs.

Filters as kube-scheduler's would, in its order: node `unschedulable`, `nodeName`, taints
(NoSchedule/NoExecute) against tolerations, `nodeSelector` and required node affinity, then free
GPUs = allocatable minus the GPUs of every other Pod bound to that node. The PVC of a volume must
exist and be Bound. When nothing fits, the message reads like the scheduler's plus what is missing
where.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from portal.devcluster.resources import ISVC_LABEL, NODES, PERSISTENT_VOLUME_CLAIMS, PODS
from portal.devcluster.store import Store


def is_gpu_resource(name: str) -> bool:
    """True for extended resources that are GPUs (`nvidia.com/gpu`, `amd.com/gpu`, ...)."""
    return "gpu" in name.lower()


def quantity_count(value: Any) -> int:
    """A whole-device count from a quantity (`1`, `"2"`, `"500m"` rounds up)."""
    text = str(value).strip()
    try:
        if text.endswith("m"):
            return math.ceil(float(text[:-1]) / 1000)
        return math.ceil(float(text))
    except ValueError:
        return 0


def container_gpus(containers: list[dict[str, Any]], pod_resources: dict[str, Any] | None = None) -> dict[str, int]:
    """GPUs a pod asks for: limits win over requests (they must be equal for extended resources)."""
    total: Counter[str] = Counter()
    for container in containers:
        resources = container.get("resources") or {}
        merged = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
        for name, value in merged.items():
            if is_gpu_resource(name):
                total[name] += quantity_count(value)
    if pod_resources:
        merged = {**(pod_resources.get("requests") or {}), **(pod_resources.get("limits") or {})}
        for name, value in merged.items():
            if is_gpu_resource(name):
                total[name] = max(total[name], quantity_count(value))
    return {k: v for k, v in total.items() if v > 0}


def pod_gpus(pod: dict[str, Any]) -> dict[str, int]:
    """GPUs a stored Pod holds."""
    spec = pod.get("spec") or {}
    return container_gpus(spec.get("containers") or [], spec.get("resources"))


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        operator = tol.get("operator") or "Equal"
        if operator == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _expression_matches(expr: dict[str, Any], values_of: Callable[[str], str | None]) -> bool:
    actual = values_of(str(expr.get("key")))
    operator = expr.get("operator")
    values = [str(v) for v in expr.get("values") or []]
    if operator == "In":
        return actual in values
    if operator == "NotIn":
        return actual not in values
    if operator == "Exists":
        return actual is not None
    if operator == "DoesNotExist":
        return actual is None
    if operator in ("Gt", "Lt") and actual is not None and values:
        try:
            left, right = int(actual), int(values[0])
        except ValueError:
            return False
        return left > right if operator == "Gt" else left < right
    return False


def _affinity_matches(affinity: dict[str, Any] | None, node: dict[str, Any]) -> bool:
    required = ((affinity or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    terms = (required or {}).get("nodeSelectorTerms") or []
    if not terms:
        return True
    labels = node["metadata"].get("labels") or {}
    name = node["metadata"]["name"]
    for term in terms:
        exprs = term.get("matchExpressions") or []
        fields = term.get("matchFields") or []
        if not exprs and not fields:
            continue
        if all(_expression_matches(e, labels.get) for e in exprs) and all(
            _expression_matches(f, lambda key: name if key == "metadata.name" else None) for f in fields
        ):
            return True
    return False


@dataclass
class _Usage:
    used: Counter[str] = field(default_factory=Counter)
    owners: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """Where a pod can go, or why it cannot go anywhere."""

    node: str | None
    message: str = ""


def schedule(store: Store, pod: dict[str, Any]) -> Placement:
    """Pick a node for `pod` the way kube-scheduler's filters would, looking only at GPUs."""
    spec = pod.get("spec") or {}
    namespace = pod["metadata"].get("namespace", "")
    for volume in spec.get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            pvc = store.get(PERSISTENT_VOLUME_CLAIMS, namespace, claim)
            if pvc is None:
                return Placement(
                    None, f'0/{len(store.items(NODES))} nodes are available: persistentvolumeclaim "{claim}" not found.'
                )
            if ((pvc.get("status") or {}).get("phase") or "Pending") != "Bound":
                return Placement(
                    None,
                    f"0/{len(store.items(NODES))} nodes are available: pod has unbound immediate "
                    f'PersistentVolumeClaims. PersistentVolumeClaim "{claim}" is {pvc.get("status", {}).get("phase", "Pending")}.',
                )
    wanted = pod_gpus(pod)
    usage = _gpu_usage(store, exclude=pod["metadata"]["name"])
    nodes = store.items(NODES)
    reasons: Counter[str] = Counter()
    hints: list[str] = []
    candidates: list[tuple[int, str]] = []
    selector = spec.get("nodeSelector") or {}
    tolerations = spec.get("tolerations") or []
    for node in nodes:
        name = node["metadata"]["name"]
        labels = node["metadata"].get("labels") or {}
        node_spec = node.get("spec") or {}
        taints = [t for t in node_spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute")]
        untolerated = [t for t in taints if not _tolerates(tolerations, t)]
        if node_spec.get("unschedulable"):
            reasons["node(s) were unschedulable"] += 1
            hints.append(f"{name} is cordoned")
            continue
        if spec.get("nodeName") and spec["nodeName"] != name:
            reasons["node(s) didn't match the requested node name"] += 1
            continue
        if untolerated:
            taint = untolerated[0]
            reasons[f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"] += 1
            hints.append(f"{name} needs a toleration for {taint.get('key')}:{taint.get('effect')}")
            continue
        if any(labels.get(k) != v for k, v in selector.items()) or not _affinity_matches(spec.get("affinity"), node):
            reasons["node(s) didn't match Pod's node affinity/selector"] += 1
            continue
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        node_usage = usage.get(name, _Usage())
        short = []
        for resource, count in sorted(wanted.items()):
            total = quantity_count(allocatable.get(resource, 0))
            free = total - node_usage.used[resource]
            if free < count:
                reasons[f"Insufficient {resource}"] += 1
                owners = node_usage.owners.get(resource) or []
                detail = f"{name} has {max(free, 0)} of {total} {resource} free"
                if owners:
                    detail += f" ({', '.join(owners)} holds {node_usage.used[resource]})"
                short.append(detail)
        if short:
            hints.extend(short)
            continue
        spare = sum(quantity_count(allocatable.get(r, 0)) - node_usage.used[r] for r in wanted)
        candidates.append((-spare, name))
    if candidates:
        return Placement(sorted(candidates)[0][1])
    summary = ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))
    message = f"0/{len(nodes)} nodes are available: {summary}." if nodes else "0/0 nodes are available: no nodes."
    wants = ", ".join(f"{count} {resource}" for resource, count in sorted(wanted.items()))
    if wants:
        message += f" The predictor needs {wants} per replica"
        message += f"; {'; '.join(hints)}." if hints else "."
    elif hints:
        message += f" {'; '.join(hints)}."
    if reasons.get("node(s) didn't match Pod's node affinity/selector") == len(nodes) and selector:
        wanted_labels = ", ".join(f"{k}={v}" for k, v in selector.items())
        message += f" No node has the labels {wanted_labels}."
    return Placement(None, message)


def _gpu_usage(store: Store, exclude: str) -> dict[str, _Usage]:
    usage: dict[str, _Usage] = {}
    for pod in store.items(PODS):
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node or phase in ("Succeeded", "Failed") or pod["metadata"]["name"] == exclude:
            continue
        meta = pod["metadata"]
        owner = (meta.get("labels") or {}).get(ISVC_LABEL)
        who = f"{meta.get('namespace')}/{owner}" if owner else f"pod {meta.get('namespace')}/{meta['name']}"
        entry = usage.setdefault(node, _Usage())
        for resource, count in pod_gpus(pod).items():
            entry.used[resource] += count
            owners = entry.owners.setdefault(resource, [])
            if who not in owners:
                owners.append(who)
    return usage
