"""GPU inventory of the cluster: which GPU models the nodes have, how many, and how many are free.

Nodes are matched to GPU profiles by their product label (``nvidia.com/gpu.product``,
``amd.com/gpu.product``) or, failing that, NVIDIA's memory label. "In use" sums the GPU requests
of pods that are bound to the node and not finished, which is what the scheduler subtracts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from portal.errors import PortalError
from portal.services.cluster import Cluster, api_error
from portal.services.gpu_profiles import NVIDIA_MEMORY_LABEL, PRODUCT_LABEL_KEYS, GpuProfile, match_node

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu", "gpu.intel.com/i915")


def parse_count(value: Any) -> int:
    """A Kubernetes GPU quantity ("1", 2) as an int; anything else counts as 0."""
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class GpuNode:
    """One node with GPUs."""

    name: str
    resource: str
    allocatable: int
    in_use: int
    product: str | None
    memory_mib: int | None
    profile: str | None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    taints: tuple[Mapping[str, Any], ...] = ()

    @property
    def free(self) -> int:
        """GPUs not requested by running pods."""
        return max(0, self.allocatable - self.in_use)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "resource": self.resource,
            "allocatable": self.allocatable,
            "inUse": self.in_use,
            "free": self.free,
            "product": self.product,
            "memoryMiB": self.memory_mib,
            "profile": self.profile,
        }


@dataclass(frozen=True)
class Inventory:
    """GPU nodes of the cluster, or why they could not be read."""

    nodes: tuple[GpuNode, ...]
    available: bool
    message: str | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        """Per profile name: {"total", "free", "nodes"}."""
        out: dict[str, dict[str, int]] = {}
        for node in self.nodes:
            if node.profile is None:
                continue
            row = out.setdefault(node.profile, {"total": 0, "free": 0, "nodes": 0})
            row["total"] += node.allocatable
            row["free"] += node.free
            row["nodes"] += 1
        return out

    def profile_names(self) -> list[str]:
        """Profiles present in the cluster, sorted."""
        return sorted(self.counts())

    def nodes_for(self, profile: str) -> list[GpuNode]:
        """Nodes whose GPUs match a profile (case-insensitive), most free first."""
        wanted = profile.lower()
        found = [n for n in self.nodes if n.profile is not None and n.profile.lower() == wanted]
        return sorted(found, key=lambda n: -n.free)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "available": self.available,
            "message": self.message,
            "nodes": [n.to_dict() for n in self.nodes],
            "profiles": self.counts(),
        }


def _gpu_requests(pod: Mapping[str, Any]) -> dict[str, int]:
    spec = pod.get("spec") or {}
    totals: dict[str, int] = {}
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        # Extended resources must have requests == limits; either side tells the count.
        amounts = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, value in amounts.items():
            if name in GPU_RESOURCES:
                totals[name] = totals.get(name, 0) + parse_count(value)
    return totals


def build_inventory(
    nodes: Sequence[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]], profiles: Sequence[GpuProfile]
) -> Inventory:
    """Inventory from node and pod objects (dicts as the API sends them)."""
    used: dict[tuple[str, str], int] = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if not node_name or phase in ("Succeeded", "Failed"):
            continue
        for resource, count in _gpu_requests(pod).items():
            used[(node_name, resource)] = used.get((node_name, resource), 0) + count
    result: list[GpuNode] = []
    for node in nodes:
        meta = node.get("metadata") or {}
        labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        for resource in GPU_RESOURCES:
            count = parse_count(allocatable.get(resource))
            if count <= 0:
                continue
            name = str(meta.get("name") or "")
            product = next((labels[k] for k in PRODUCT_LABEL_KEYS if labels.get(k)), None)
            memory = labels.get(NVIDIA_MEMORY_LABEL)
            profile = match_node(profiles, labels, resource)
            result.append(
                GpuNode(
                    name=name,
                    resource=resource,
                    allocatable=count,
                    in_use=used.get((name, resource), 0),
                    product=product,
                    memory_mib=parse_count(memory) or None,
                    profile=profile.name if profile else None,
                    labels=labels,
                    taints=tuple((node.get("spec") or {}).get("taints") or []),
                )
            )
    return Inventory(tuple(result), available=True)


def read_inventory(cluster: Cluster, profiles: Sequence[GpuProfile]) -> Inventory:
    """Read nodes and pods; an unreachable or unconfigured cluster gives an empty inventory with the reason."""
    if not cluster.configured:
        return Inventory((), available=False, message="no Kubernetes cluster is configured")
    try:
        node_list = cluster.call(cluster.core().list_node, action="list the cluster's nodes")
        pod_list = cluster.call(cluster.core().list_pod_for_all_namespaces, action="list pods")
    except ApiException as exc:
        return Inventory((), available=False, message=api_error(exc, "read the GPU inventory").message)
    except PortalError as exc:
        return Inventory((), available=False, message=exc.message)
    assert cluster.api_client is not None
    sanitize = cluster.api_client.sanitize_for_serialization
    nodes = sanitize(node_list).get("items") or []  # type: ignore[no-untyped-call]
    pods = sanitize(pod_list).get("items") or []  # type: ignore[no-untyped-call]
    return build_inventory(nodes, pods, profiles)
