"""Named deployments: several models served at once, each an InferenceService managed by the portal.

A deployment is an InferenceService labelled `app.kubernetes.io/managed-by: model-manager` and
`model-manager/deployment: <name>`, named after the deployment, in `ACTIVE_NAMESPACE` (or one of
`MANAGED_NAMESPACES`). The seed's single slot is the deployment named `ACTIVE_INFERENCESERVICE_NAME`:
`/active` and `/models/*` act on it through `activation`, which every operation here reuses (same
lock per deployment, same history events carrying `name`/`namespace`, same error mapping).

Creating or switching places the model (`placement.plan`) under one cluster-wide placement lock,
so two deployments created at the same moment never book the same GPU, and writes the placement
into the manifest: `nodeSelector` `kubernetes.io/hostname`, a toleration for the node's GPU taint,
the GPU resource and count, `--tensor-parallel-size`, and `--max-model-len` when only a shorter
context fits. Reads come from the watched view (no Kubernetes call).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import current_app

from portal.errors import Conflict, InvalidInput, NotFound
from portal.extensions import current_settings, redis_holder
from portal.schemas.deployments import DNS_1035_PATTERN
from portal.services import activation, cluster_cache, placement
from portal.services.activation import Target, activation_lock, describe
from portal.services.catalog import get_catalog
from portal.services.manifests import MANIFEST_HASH_ANNOTATION, MODEL_ID_ANNOTATION, manifest_hash

PLACEMENT_LOCK_KEY = "model-manager:placement-lock"
Prepare = Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]]
DNS_1035 = re.compile(DNS_1035_PATTERN)
PLACEMENT_ANNOTATIONS = {
    "gpuType": "model-manager/gpu-type",
    "kvTokens": "model-manager/predicted-kv-tokens",
    "maxConcurrency": "model-manager/predicted-max-concurrency",
    "maxModelLen": "model-manager/max-model-len",
}
_TP_FLAGS = ("--tensor-parallel-size", "-tp")
_LEN_FLAGS = ("--max-model-len",)


def check_name(name: str) -> str:
    """A DNS-1035 label (lowercase letters, digits, '-', starts with a letter, max 63); else 400."""
    if not isinstance(name, str) or not DNS_1035.fullmatch(name):
        raise InvalidInput(
            f"deployment name {name!r} is not a DNS-1035 label: lowercase letters, digits and '-', "
            "starting with a letter and ending with a letter or digit, at most 63 characters",
            code="invalid_deployment_name",
            details={"fields": {"name": ["must be a DNS-1035 label"]}},
        )
    return name


def _target(name: str, namespace: str | None = None, *, existing: bool = True) -> Target:
    """The deployment `namespace/name`; 404 for a namespace the portal does not manage (none of ours is there).

    For an existing deployment (`existing`) a name that is not a DNS-1035 label cannot exist: 404 too.
    """
    settings = current_settings()
    namespace = namespace or settings.active_namespace
    allowed = cluster_cache.watched_namespaces(current_app)
    if namespace not in allowed:
        raise NotFound(
            f"namespace {namespace!r} is not managed by the portal (ACTIVE_NAMESPACE or MANAGED_NAMESPACES: "
            f"{', '.join(allowed)})",
            code="namespace_not_managed",
            details={"namespace": namespace, "managed": list(allowed)},
        )
    if existing and not (isinstance(name, str) and DNS_1035.fullmatch(name)):
        raise NotFound(
            f"no deployment named {name!r} in {namespace}",
            code="deployment_not_found",
            details={"name": name, "namespace": namespace},
        )
    return Target(namespace, check_name(name))


@contextmanager
def _placement_lock() -> Iterator[None]:
    with activation_lock(redis_holder(current_app).connection, PLACEMENT_LOCK_KEY):
        yield


# --- manifests ------------------------------------------------------------------------------------


def _without_flags(args: list[str], flags: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in flags:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def apply_placement(manifest: dict[str, Any], target: Target, chosen: placement.Placement) -> dict[str, Any]:
    """The manifest renamed for the deployment and pinned to the chosen node, GPUs and context length."""
    meta = manifest["metadata"]
    meta["name"], meta["namespace"] = target.name, target.namespace
    meta.setdefault("labels", {})[placement.DEPLOYMENT_LABEL] = target.name
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    predictor["nodeSelector"] = {**(predictor.get("nodeSelector") or {}), placement.HOSTNAME_LABEL: chosen.node}
    tolerations = [t for t in predictor.get("tolerations") or [] if t.get("key") != chosen.resource]
    tolerations.append({"key": chosen.resource, "operator": "Exists", "effect": "NoSchedule"})
    predictor["tolerations"] = tolerations
    resources = model.setdefault("resources", {})
    for side in ("requests", "limits"):
        amounts = {k: v for k, v in (resources.get(side) or {}).items() if "gpu" not in k.lower()}
        amounts[chosen.resource] = str(chosen.gpus)
        resources[side] = amounts
    args = _without_flags(list(model.get("args") or []), _TP_FLAGS)
    args = ["--tensor-parallel-size", str(chosen.gpus), *args]
    if chosen.reduced:
        args = [*_without_flags(args, _LEN_FLAGS), "--max-model-len", str(chosen.max_model_len)]
    model["args"] = args
    annotations = meta.setdefault("annotations", {})
    annotations[PLACEMENT_ANNOTATIONS["gpuType"]] = chosen.gpu_type
    annotations[PLACEMENT_ANNOTATIONS["kvTokens"]] = str(chosen.kv_tokens)
    annotations[PLACEMENT_ANNOTATIONS["maxConcurrency"]] = f"{chosen.max_concurrency:.2f}"
    annotations[PLACEMENT_ANNOTATIONS["maxModelLen"]] = str(chosen.max_model_len)
    annotations[MANIFEST_HASH_ANNOTATION] = manifest_hash(manifest["spec"])
    return manifest


def _held(obj: Mapping[str, Any] | None) -> dict[str, int]:
    """GPUs the current object of a deployment holds, by node (they free up when it is switched)."""
    if not obj:
        return {}
    gpus = placement.requested_gpus(obj)
    node = placement.pinned_node(obj)
    return {node: gpus[1]} if gpus and node else {}


def _placer(model_id: str, target: Target, gpus: int | None, node: str | None) -> Prepare:
    """The `prepare` step of activation: plan on the freshest view, refuse with the reason, pin."""

    def prepare(manifest: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        from portal.services.discovery import app_profiles

        snapshot = cluster_cache.get_snapshot()
        profiles = app_profiles()
        request = placement.request_for_entry(get_catalog().get_entry(model_id))
        inventory = placement.cluster_inventory(snapshot, profiles)
        if node is not None:
            placement.ensure_node_known(inventory, node)
        result = placement.plan(
            request,
            inventory,
            profiles,
            gpus=gpus,
            node=node,
            held_by_self=_held(existing),
            holders_by_node=placement.holders(snapshot),
        )
        if result.best is None:
            where = f"on {node}" if node else "anywhere in the cluster"
            raise Conflict(
                f"{model_id} cannot be scheduled {where} now: {result.reason()}",
                code="no_placement",
                details={"modelId": model_id, "refused": [r.to_dict() for r in result.refusals]},
            )
        # No separate dry run: the API server validates the create/replace itself and a refused
        # manifest changes nothing (422 manifest_invalid, recorded as model_activation_failed).
        return apply_placement(manifest, target, result.best)

    return prepare


# --- operations -------------------------------------------------------------------------------------


def create_deployment(
    name: str,
    model_id: str,
    *,
    actor: str,
    gpus: int | None = None,
    node: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """`POST /deployments`: place the model (best placement, or the given node/GPUs) and create it."""
    target = _target(name, namespace, existing=False)
    if gpus is not None and gpus < 1:
        raise InvalidInput(
            "gpus must be at least 1", code="invalid_gpus", details={"fields": {"gpus": ["must be >= 1"]}}
        )
    get_catalog().get_entry(model_id)  # 404 before any lock
    with _placement_lock():
        result = activation.activate(
            model_id, actor=actor, target=target, prepare=_placer(model_id, target, gpus, node), create_only=True
        )
    return {
        **result,
        "message": f"Deployment {name} created with {model_id}",
        "deployment": get_deployment(name, namespace),
    }


def switch_model(name: str, model_id: str, *, actor: str, namespace: str | None = None) -> dict[str, Any]:
    """`PUT /deployments/{name}`: serve another model in an existing deployment (placed again)."""
    target = _target(name, namespace)
    _require(target)
    get_catalog().get_entry(model_id)
    with _placement_lock():
        result = activation.activate(
            model_id, actor=actor, target=target, prepare=_placer(model_id, target, None, None)
        )
    return {
        **result,
        "message": f"Deployment {name} now serves {model_id}",
        "deployment": get_deployment(name, namespace),
    }


def rollback_deployment(name: str, *, actor: str, namespace: str | None = None) -> dict[str, Any]:
    """`POST /deployments/{name}/rollback`: the model this deployment served before."""
    target = _target(name, namespace)
    _require(target)

    def prepare(manifest: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        model_id = str(manifest["metadata"]["annotations"][MODEL_ID_ANNOTATION])
        return _placer(model_id, target, None, None)(manifest, existing)

    with _placement_lock():
        result = activation.rollback(actor=actor, target=target, prepare=prepare)
    return {**result, "deployment": get_deployment(name, namespace)}


def delete_deployment(name: str, *, actor: str, namespace: str | None = None) -> dict[str, Any]:
    """`DELETE /deployments/{name}`: remove the InferenceService (404 when there is no such deployment)."""
    target = _target(name, namespace)
    _require(target)
    result = activation.deactivate(actor=actor, target=target)
    return {**result, "message": f"Deployment {name} deleted"}


def _require(target: Target) -> dict[str, Any]:
    obj = cluster_cache.get_snapshot().inference_service(target.namespace, target.name)
    if obj is None or not placement.is_managed(obj):
        raise NotFound(
            f"no deployment named {target.name!r} in {target.namespace}",
            code="deployment_not_found",
            details={"name": target.name, "namespace": target.namespace},
        )
    return obj


# --- reads (watched view) ------------------------------------------------------------------------------


def describe_deployment(obj: Mapping[str, Any], pods: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """One deployment as the API shows it: model, status, conditions, URL, GPUs, node, predicted fit."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    model_id = annotations.get(MODEL_ID_ANNOTATION)
    entry = get_catalog().snapshot().entries.get(str(model_id or ""))
    gpus = placement.requested_gpus(obj)
    bound = next(
        (
            (p.get("spec") or {}).get("nodeName")
            for p in pods
            if ((p.get("metadata") or {}).get("labels") or {}).get(cluster_cache.ISVC_LABEL) == meta.get("name")
            and (p.get("metadata") or {}).get("namespace") == meta.get("namespace")
            and (p.get("spec") or {}).get("nodeName")
        ),
        None,
    )
    predicted: dict[str, Any] = {}
    for key, annotation in PLACEMENT_ANNOTATIONS.items():
        value = annotations.get(annotation)
        if value is not None:
            predicted[key] = float(value) if key == "maxConcurrency" else (value if key == "gpuType" else int(value))
    settings = current_settings()
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "default": meta.get("name") == settings.active_inferenceservice_name
        and meta.get("namespace") == settings.active_namespace,
        "modelId": model_id,
        "displayName": (entry or {}).get("displayName") or model_id,
        **describe(dict(obj)),
        "conditions": list((obj.get("status") or {}).get("conditions") or []),
        "gpus": {"resource": gpus[0], "count": gpus[1]} if gpus else None,
        "node": bound or placement.pinned_node(obj),
        "predicted": predicted or None,
        "manifestHash": annotations.get(MANIFEST_HASH_ANNOTATION),
        "createdAt": meta.get("creationTimestamp"),
    }


def list_deployments() -> dict[str, Any]:
    """`GET /deployments`: every managed InferenceService in the watched namespaces, by name."""
    snapshot = cluster_cache.get_snapshot()
    items = [
        describe_deployment(obj, snapshot.pods)
        for _key, obj in sorted(snapshot.isvcs.items())
        if placement.is_managed(obj)
    ]
    counts = {"ready": sum(1 for d in items if d["phase"] == "ready")}
    counts["notReady"] = len(items) - counts["ready"]
    body: dict[str, Any] = {"deployments": items, "counts": counts}
    if snapshot.staleness.stale:
        body["view"] = snapshot.staleness.to_dict()
    return body


def get_deployment(name: str, namespace: str | None = None) -> dict[str, Any]:
    """`GET /deployments/{name}`."""
    target = _target(name, namespace)
    obj = _require(target)
    snapshot = cluster_cache.get_snapshot()
    return {**describe_deployment(obj, snapshot.pods), "inferenceservice": obj}


def deployed_models() -> list[dict[str, Any]]:
    """(deployment, modelId, storageUri) of every managed InferenceService (for the weights guard)."""
    snapshot = cluster_cache.get_snapshot()
    out = []
    for obj in snapshot.isvcs.values():
        if not placement.is_managed(obj):
            continue
        meta = obj.get("metadata") or {}
        model = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
        out.append(
            {
                "deployment": meta.get("name"),
                "namespace": meta.get("namespace"),
                "modelId": (meta.get("annotations") or {}).get(MODEL_ID_ANNOTATION),
                "storageUri": model.get("storageUri"),
            }
        )
    return out
