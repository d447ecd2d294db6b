"""Where a model can run now: every (node, GPU count) that works, best first, and why the other nodes do not.

Inputs: the GPU inventory built from the watched view (nodes with their GPU product labels and
allocatable GPUs; GPUs held by bound pods, plus the GPUs of the portal's own deployments whose pod
does not exist yet, counted on the node they are pinned to, so two deployments created back to back
never book the same GPU), and the fit estimator (`fit.estimate_fit`) for the model on that node's GPU
profile. A node is refused, with the reason, when:

- `node_selector`: the catalog entry's nodeSelector does not match its labels;
- `taint_not_tolerated`: it has a taint the entry does not tolerate. Taints keyed by the GPU
  resource itself (`nvidia.com/gpu`, `amd.com/gpu`), the usual "GPU workloads only" marker, are
  tolerated by every deployment: the manifest gets the matching toleration;
- `gpu_vendor`: the entry asks for another GPU resource (`amd.com/gpu` on an NVIDIA node);
- `unknown_gpu`: no GPU profile describes the node's GPUs, so nothing can be estimated;
- `gpu_too_small`: no tensor-parallel size up to the node's GPU count gives room for one sequence;
- `not_enough_free_gpus`: it would fit on N GPUs, but fewer are free (and who holds them).

Ranking: full context before a reduced max-model-len, then fewer GPUs, then the smallest GPU that
works (keeps big GPUs for big models), then more KV-cache tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from portal.errors import InvalidInput, NotFound
from portal.services.cluster_cache import ISVC_LABEL, ClusterSnapshot, get_snapshot
from portal.services.fit import FitReport, ModelShape, WeightsInfo, estimate_fit, valid_tensor_parallel_sizes
from portal.services.gpu_profiles import GpuProfile, find_profile
from portal.services.inventory import GpuNode, Inventory, build_inventory
from portal.services.manifests import MANAGED_BY, MANAGED_BY_LABEL

HOSTNAME_LABEL = "kubernetes.io/hostname"
DEPLOYMENT_LABEL = "model-manager/deployment"


@dataclass(frozen=True)
class Placement:
    """One way to run the model now."""

    node: str
    resource: str
    gpu_type: str
    gpus: int
    free_gpus: int
    max_model_len: int
    reduced: bool
    kv_tokens: int
    max_concurrency: float
    memory_gib: float
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "node": self.node,
            "resource": self.resource,
            "gpuType": self.gpu_type,
            "gpus": self.gpus,
            "tensorParallelSize": self.gpus,
            "freeGpus": self.free_gpus,
            "maxModelLen": self.max_model_len,
            "reducedContext": self.reduced,
            "kvTokens": self.kv_tokens,
            "maxConcurrency": round(self.max_concurrency, 2),
            "summary": self.summary,
        }


@dataclass(frozen=True)
class Refusal:
    """Why a node cannot take the model now."""

    node: str
    code: str
    message: str
    gpus_needed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"node": self.node, "code": self.code, "message": self.message, "gpusNeeded": self.gpus_needed}


@dataclass(frozen=True)
class PlacementPlan:
    """Placements best first, and the refused nodes."""

    placements: tuple[Placement, ...]
    refusals: tuple[Refusal, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def best(self) -> Placement | None:
        """The first placement, if any."""
        return self.placements[0] if self.placements else None

    def reason(self) -> str:
        """One sentence on why nothing fits (every node's reason)."""
        if not self.refusals:
            return "the cluster has no GPU nodes"
        return "; ".join(f"{r.node}: {r.message}" for r in self.refusals)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "placements": [p.to_dict() for p in self.placements],
            "refused": [r.to_dict() for r in self.refusals],
            "fits": bool(self.placements),
            **({"notes": list(self.notes)} if self.notes else {}),
        }


@dataclass(frozen=True)
class ModelRequest:
    """What is to be placed: the model's shape and weights and what its catalog entry pins."""

    shape: ModelShape
    weights: WeightsInfo
    settings: Mapping[str, Any] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()
    resource: str | None = None


# --- inventory from the watched view ----------------------------------------------------------------


def deployment_of(obj: Mapping[str, Any]) -> str:
    """The deployment name of a managed InferenceService (its name)."""
    return str((obj.get("metadata") or {}).get("name") or "")


def is_managed(obj: Mapping[str, Any]) -> bool:
    """True for InferenceServices the portal manages."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


def requested_gpus(obj: Mapping[str, Any]) -> tuple[str, int] | None:
    """The GPU resource and count an InferenceService's model container asks for."""
    model = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
    resources = model.get("resources") or {}
    for side in ("limits", "requests"):
        for name, value in (resources.get(side) or {}).items():
            if "gpu" in str(name).lower():
                try:
                    count = int(str(value))
                except ValueError:
                    continue
                if count > 0:
                    return str(name), count
    return None


def pinned_node(obj: Mapping[str, Any]) -> str | None:
    """The node an InferenceService is pinned to by `kubernetes.io/hostname`, if any."""
    selector = ((obj.get("spec") or {}).get("predictor") or {}).get("nodeSelector") or {}
    value = selector.get(HOSTNAME_LABEL)
    return str(value) if value else None


def _placeholder_pods(snapshot: ClusterSnapshot) -> list[dict[str, Any]]:
    """Pods standing for managed deployments whose real pod is not bound yet (they hold their GPUs)."""
    bound = {
        (
            str((p.get("metadata") or {}).get("namespace")),
            ((p.get("metadata") or {}).get("labels") or {}).get(ISVC_LABEL),
        )
        for p in snapshot.pods
        if (p.get("spec") or {}).get("nodeName")
    }
    placeholders = []
    for obj in snapshot.isvcs.values():
        meta = obj.get("metadata") or {}
        if (str(meta.get("namespace")), meta.get("name")) in bound:
            continue
        gpus = requested_gpus(obj)
        node = pinned_node(obj)
        if gpus is None or node is None:
            continue
        placeholders.append(
            {
                "metadata": {"name": f"{meta.get('name')}-pending", "labels": {ISVC_LABEL: meta.get("name")}},
                "spec": {
                    "nodeName": node,
                    "containers": [{"resources": {"limits": {gpus[0]: str(gpus[1])}}}],
                },
                "status": {"phase": "Pending"},
            }
        )
    return placeholders


def cluster_inventory(snapshot: ClusterSnapshot, profiles: Sequence[GpuProfile]) -> Inventory:
    """GPU nodes and their use, from the watched view."""
    return build_inventory(snapshot.nodes, [*snapshot.pods, *_placeholder_pods(snapshot)], profiles)


def holders(snapshot: ClusterSnapshot) -> dict[str, list[dict[str, Any]]]:
    """Per node: who holds GPUs (`deployment` name or pod name, resource, count, managed)."""
    managed = {
        (str((o.get("metadata") or {}).get("namespace")), deployment_of(o))
        for o in snapshot.isvcs.values()
        if is_managed(o)
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for pod in [*snapshot.pods, *_placeholder_pods(snapshot)]:
        spec = pod.get("spec") or {}
        meta = pod.get("metadata") or {}
        node = spec.get("nodeName")
        if not node or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        owner = (meta.get("labels") or {}).get(ISVC_LABEL)
        for container in spec.get("containers") or []:
            resources = container.get("resources") or {}
            amounts = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
            for name, value in amounts.items():
                try:
                    count = int(str(value))
                except ValueError:
                    continue
                if "gpu" in str(name).lower() and count > 0:
                    out.setdefault(str(node), []).append(
                        {
                            "holder": owner or meta.get("name"),
                            "deployment": owner
                            if (owner and (str(meta.get("namespace") or ""), owner) in managed)
                            or str(meta.get("name", "")).endswith("-pending")
                            else None,
                            "resource": name,
                            "gpus": count,
                        }
                    )
    return out


# --- planning -------------------------------------------------------------------------------------


def _gpu_taints_tolerated(node: GpuNode, taint: Mapping[str, Any]) -> bool:
    return str(taint.get("key") or "") == node.resource or taint.get("effect") == "PreferNoSchedule"


def _tolerated(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    from portal.services.discovery import tolerates

    return tolerates(tolerations, taint)


def _report(
    request: ModelRequest, profile: GpuProfile, tp: int, profiles: Sequence[GpuProfile], **extra: Any
) -> FitReport:
    settings = {k: v for k, v in request.settings.items() if k != "tensor_parallel"}
    settings.update(extra)
    return estimate_fit(request.shape, request.weights, profile, tensor_parallel=tp, profiles=profiles, **settings)


def _fitting(
    request: ModelRequest, profile: GpuProfile, tp: int, profiles: Sequence[GpuProfile]
) -> tuple[FitReport, bool] | None:
    """The report at the requested length, else at the largest length that starts (when none was pinned)."""
    report = _report(request, profile, tp, profiles)
    if report.fits:
        return report, False
    if report.errors or "max_model_len" in request.settings:
        return None
    largest = report.largest_max_model_len
    if largest <= 0:
        return None
    reduced = _report(request, profile, tp, profiles, max_model_len=largest)
    return (reduced, True) if reduced.fits else None


def plan(
    request: ModelRequest,
    inventory: Inventory,
    profiles: Sequence[GpuProfile],
    *,
    gpus: int | None = None,
    node: str | None = None,
    held_by_self: Mapping[str, int] | None = None,
    holders_by_node: Mapping[str, list[dict[str, Any]]] | None = None,
) -> PlacementPlan:
    """Every working placement, best first, and why each other node does not work.

    `held_by_self`: GPUs per node already held by the deployment being changed (they free up on a switch).
    """
    placements: list[Placement] = []
    refusals: list[Refusal] = []
    pinned_tp = gpus or request.settings.get("tensor_parallel")
    for gpu_node in inventory.nodes:
        if node is not None and gpu_node.name != node:
            continue
        refusal = _static_refusal(request, gpu_node)
        if refusal is not None:
            refusals.append(refusal)
            continue
        profile = find_profile(profiles, gpu_node.profile or "")
        if profile is None:
            refusals.append(
                Refusal(
                    gpu_node.name,
                    "unknown_gpu",
                    f"no GPU profile describes its GPUs ({gpu_node.product or gpu_node.resource})",
                )
            )
            continue
        free = gpu_node.free + int((held_by_self or {}).get(gpu_node.name, 0))
        sizes = [int(pinned_tp)] if pinned_tp else valid_tensor_parallel_sizes(request.shape, gpu_node.allocatable)
        found: tuple[int, FitReport, bool] | None = None
        for tp in sorted(s for s in sizes if s <= gpu_node.allocatable):
            fitting = _fitting(request, profile, tp, profiles)
            if fitting is not None:
                found = (tp, *fitting)
                break
        if found is None:
            what = f"{pinned_tp} x {profile.name}" if pinned_tp else f"up to {gpu_node.allocatable} x {profile.name}"
            if pinned_tp and int(pinned_tp) > gpu_node.allocatable:
                message = f"has {gpu_node.allocatable} {gpu_node.resource}, {pinned_tp} requested"
                refusals.append(Refusal(gpu_node.name, "not_enough_gpus", message, int(pinned_tp)))
            else:
                refusals.append(Refusal(gpu_node.name, "gpu_too_small", f"the model does not start on {what}"))
            continue
        tp, report, reduced = found
        if tp > free:
            held = ", ".join(
                f"{h['gpus']} by {h['holder']}"
                for h in (holders_by_node or {}).get(gpu_node.name, [])
                if h["resource"] == gpu_node.resource
            )
            message = f"needs {tp} {gpu_node.resource}, {free} of {gpu_node.allocatable} free" + (
                f" (held: {held})" if held else ""
            )
            refusals.append(Refusal(gpu_node.name, "not_enough_free_gpus", message, tp))
            continue
        placements.append(
            Placement(
                node=gpu_node.name,
                resource=gpu_node.resource,
                gpu_type=profile.name,
                gpus=tp,
                free_gpus=free,
                max_model_len=report.max_model_len,
                reduced=reduced,
                kv_tokens=report.budget.kv_tokens,
                max_concurrency=report.max_concurrency,
                memory_gib=profile.runtime_memory_gib,
                summary=report.summary,
            )
        )
    if node is not None and not any(n.name == node for n in inventory.nodes):
        refusals.append(Refusal(node, "unknown_node", "no such GPU node in the cluster"))
    placements.sort(key=lambda p: (p.reduced, p.gpus, p.memory_gib, -p.kv_tokens, p.node))
    return PlacementPlan(tuple(placements), tuple(refusals))


def _static_refusal(request: ModelRequest, node: GpuNode) -> Refusal | None:
    """Refusals that need no estimate: selector, vendor, taints."""
    mismatched = {k: v for k, v in request.node_selector.items() if node.labels.get(k) != v}
    if mismatched:
        wanted = ", ".join(f"{k}={v}" for k, v in mismatched.items())
        return Refusal(node.name, "node_selector", f"the entry's nodeSelector asks for {wanted}")
    if request.resource is not None and request.resource != node.resource:
        return Refusal(node.name, "gpu_vendor", f"the entry asks for {request.resource}, the node has {node.resource}")
    for taint in node.taints:
        if _gpu_taints_tolerated(node, taint) or _tolerated(request.tolerations, taint):
            continue
        text = f"{taint.get('key')}{'=' + str(taint['value']) if taint.get('value') else ''}:{taint.get('effect')}"
        return Refusal(node.name, "taint_not_tolerated", f"taint {text} is not tolerated")
    return None


# --- entry points ---------------------------------------------------------------------------------


def request_for_entry(entry: Mapping[str, Any]) -> ModelRequest:
    """The placement request of a catalog entry (its model inputs, settings and pins)."""
    from portal.services.discovery import entry_settings, gpu_resource, inputs_for_entry

    inputs = inputs_for_entry(entry)
    selector = {str(k): str(v) for k, v in (entry.get("nodeSelector") or {}).items()}
    requested = gpu_resource(entry)
    return ModelRequest(
        shape=inputs.shape,
        weights=inputs.weights,
        settings=entry_settings(entry),
        node_selector=selector,
        tolerations=list(entry.get("tolerations") or []),
        resource=requested[0] if requested else None,
    )


def request_for_hub_model(hf_id: str) -> ModelRequest:
    """The placement request of a Hugging Face model with vLLM defaults."""
    from portal.services.discovery import inputs_from_hub

    inputs = inputs_from_hub(hf_id)
    return ModelRequest(shape=inputs.shape, weights=inputs.weights)


def placements_for(model: str | None = None, hf_model_id: str | None = None) -> dict[str, Any]:
    """`GET /placements`: where a catalog model (or a Hub model) can run now."""
    from portal.services.catalog import get_catalog
    from portal.services.discovery import app_profiles

    if bool(model) == bool(hf_model_id):
        raise InvalidInput(
            "give exactly one of model (a catalog id) or hfModelId",
            code="invalid_placement_query",
            details={"fields": {"model": ["model or hfModelId is required (not both)"]}},
        )
    snapshot = get_snapshot()
    request = request_for_entry(get_catalog().get_entry(model)) if model else request_for_hub_model(str(hf_model_id))
    profiles = app_profiles()
    result = plan(request, cluster_inventory(snapshot, profiles), profiles, holders_by_node=holders(snapshot))
    body = {"model": model, "hfModelId": hf_model_id, **result.to_dict()}
    if snapshot.staleness.stale:
        body["view"] = snapshot.staleness.to_dict()
    return body


def capacity(add: str | None = None) -> dict[str, Any]:
    """GPUs per node: allocatable, held by which deployment (or other pod), free; with `add`, what that would cost."""
    from portal.services.discovery import app_profiles

    snapshot = get_snapshot()
    profiles = app_profiles()
    inventory = cluster_inventory(snapshot, profiles)
    by_node = holders(snapshot)
    nodes = []
    for gpu_node in inventory.nodes:
        used = [h for h in by_node.get(gpu_node.name, []) if h["resource"] == gpu_node.resource]
        nodes.append(
            {
                **gpu_node.to_dict(),
                "gpuType": gpu_node.profile,
                "holders": used,
            }
        )
    body: dict[str, Any] = {"nodes": nodes}
    if add:
        body["ifAdded"] = if_added(add, inventory, profiles)
    if snapshot.staleness.stale:
        body["view"] = snapshot.staleness.to_dict()
    return body


def _taking(inventory: Inventory, node: str, resource: str, gpus: int) -> Inventory:
    """The inventory after `gpus` more GPUs of `node` are held."""
    nodes = tuple(
        replace(n, in_use=n.in_use + gpus) if n.name == node and n.resource == resource else n for n in inventory.nodes
    )
    return replace(inventory, nodes=nodes)


def if_added(model_id: str, inventory: Inventory, profiles: Sequence[GpuProfile]) -> dict[str, Any]:
    """Where `model_id` would go now, and which other catalog models would then no longer fit anywhere."""
    from portal.errors import PortalError
    from portal.services.catalog import get_catalog

    catalog = get_catalog()
    chosen = plan(request_for_entry(catalog.get_entry(model_id)), inventory, profiles)
    if chosen.best is None:
        return {"model": model_id, "fits": False, "reason": chosen.reason(), "noLongerFits": [], "notEstimated": []}
    best = chosen.best
    after = _taking(inventory, best.node, best.resource, best.gpus)
    lost: list[str] = []
    unknown: list[str] = []
    for other_id, entry in sorted(catalog.snapshot().entries.items()):
        if other_id == model_id:
            continue
        try:
            request = request_for_entry(entry)
        except PortalError:  # no installed weights and the Hub cannot say
            unknown.append(other_id)
            continue
        if plan(request, inventory, profiles).best is not None and plan(request, after, profiles).best is None:
            lost.append(other_id)
    return {"model": model_id, "fits": True, "placement": best.to_dict(), "noLongerFits": lost, "notEstimated": unknown}


def ensure_node_known(inventory: Inventory, node: str) -> GpuNode:
    """The GPU node named `node`, or NotFound."""
    for gpu_node in inventory.nodes:
        if gpu_node.name == node:
            return gpu_node
    raise NotFound(f"no GPU node named {node!r}", code="node_not_found")
