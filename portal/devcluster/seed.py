"""Seeding the dev cluster with objects from YAML.

Seed format
-----------
A seed is YAML holding Kubernetes objects, written as any of:

- a multi-document stream (``---`` between objects);
- one document that is a list of objects;
- one document of ``kind: List`` with the objects under ``items``.

Each object needs ``apiVersion``, ``kind`` and ``metadata.name``; namespaced objects without
``metadata.namespace`` go to ``default``. Supported kinds: ``Namespace``, ``Node``,
``PersistentVolumeClaim``, ``PersistentVolume``, ``Secret`` (``stringData`` is accepted and
stored base64-encoded under ``data``), ``ConfigMap``, ``Pod``, ``Event``, ``Service``,
``ServiceAccount`` (all ``v1``), ``ServingRuntime`` and ``ClusterServingRuntime``
(``serving.kserve.io/v1alpha1``) and ``InferenceService`` (``serving.kserve.io/v1beta1``).

Objects go through the same pruning, defaulting and validation as API writes, except that an
unknown field or an invalid object is an error (a seed with a typo should not start). The
namespaces ``default``, ``kube-system``, ``kube-public`` and ``kube-node-lease`` always exist, and
so does every namespace a seeded object names. Node ``status.capacity`` defaults to
``status.allocatable``, a Node is Ready, a PVC without ``status.phase`` is ``Pending``.

Example::

    apiVersion: v1
    kind: Node
    metadata:
      name: gpu-l4-1
      labels: {nvidia.com/gpu.product: NVIDIA-L4, nvidia.com/gpu.memory: "23034"}
    status:
      allocatable: {cpu: "8", memory: 30Gi, nvidia.com/gpu: "1"}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: hf-token, namespace: ai}
    stringData: {HUGGING_FACE_HUB_TOKEN: hf_dummy}
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from portal.devcluster.coretypes import check_core, default_core, prune_core
from portal.devcluster.errors import ApiError
from portal.devcluster.resources import NAMESPACES, ResourceType, lookup_kind
from portal.devcluster.schema import validate_custom_resource, validate_object_meta
from portal.devcluster.status import timestamp
from portal.devcluster.store import Store

DEFAULT_SEED = Path(__file__).resolve().parent / "seed.yaml"
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")

SeedSource = str | Path | Sequence[Mapping[str, Any]] | None


class SeedError(ValueError):
    """A seed object the dev cluster cannot store."""


def read_seed(source: SeedSource) -> list[dict[str, Any]]:
    """The objects of a seed: a YAML file path, YAML text, a list of dicts, or None for the default."""
    if source is None:
        source = DEFAULT_SEED
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        text = Path(source).read_text(encoding="utf-8")
    elif isinstance(source, str):
        text = source
    else:
        return [copy.deepcopy(dict(obj)) for obj in source]
    objects: list[dict[str, Any]] = []
    for document in yaml.safe_load_all(text):
        objects.extend(_flatten(document))
    return objects


def _flatten(document: Any) -> Iterable[dict[str, Any]]:
    if document is None:
        return []
    if isinstance(document, list):
        return [obj for item in document for obj in _flatten(item)]
    if isinstance(document, dict) and document.get("kind") == "List":
        return [obj for item in document.get("items") or [] for obj in _flatten(item)]
    if isinstance(document, dict):
        return [document]
    raise SeedError(f"seed: expected an object or a list of objects, got {type(document).__name__}")


def prepare_object(source: Mapping[str, Any], now: float) -> tuple[ResourceType, dict[str, Any]]:
    """Validate and complete one seed object; raise SeedError naming what is wrong."""
    obj: dict[str, Any] = copy.deepcopy(dict(source))
    rtype = lookup_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    if rtype is None:
        raise SeedError(f"seed: unsupported apiVersion/kind {obj.get('apiVersion')}/{obj.get('kind')}")
    meta = obj.setdefault("metadata", {})
    label = f"{rtype.kind} {meta.get('namespace', '')}/{meta.get('name', '?')}".replace(" /", " ")
    if rtype.namespaced:
        meta.setdefault("namespace", "default")
    else:
        meta.pop("namespace", None)
    if rtype.crd is not None:
        result = validate_custom_resource(obj, rtype.crd, rtype.version, namespaced=rtype.namespaced)
        problems = [f"{c['field']}: {c['message']}" for c in result.causes] + result.warnings
        obj = result.pruned
    else:
        obj, unknown = prune_core(rtype, obj)
        name_rule = "label" if rtype is NAMESPACES else "subdomain"
        causes = validate_object_meta(obj["metadata"], namespaced=rtype.namespaced, name_rule=name_rule)
        problems = [f"{c['field']}: {c['message']}" for c in causes] + [f'unknown field "{p}"' for p in unknown]
        if not problems:
            obj = default_core(rtype, obj)
            try:
                check_core(rtype, obj)
            except ApiError as exc:
                problems.append(exc.message)
    if problems:
        raise SeedError(f"seed: {label}: " + "; ".join(problems))
    meta = obj["metadata"]
    meta.setdefault("uid", str(uuid.uuid4()))
    meta.setdefault("creationTimestamp", timestamp(now))
    if rtype.is_custom:
        meta.setdefault("generation", 1)
    return rtype, obj


def load_into(store: Store, objects: Iterable[Mapping[str, Any]], clock: Callable[[], float]) -> int:
    """Store seed objects (namespaces first, creating any that are referenced); return how many."""
    now = clock()
    prepared = [prepare_object(obj, now) for obj in objects]
    namespaces = set(SYSTEM_NAMESPACES)
    namespaces.update(obj["metadata"]["namespace"] for rtype, obj in prepared if rtype.namespaced)
    count = 0
    with store.lock:
        declared = {obj["metadata"]["name"] for rtype, obj in prepared if rtype is NAMESPACES}
        for name in sorted(namespaces - declared):
            if store.get(NAMESPACES, "", name) is None:
                _, namespace = prepare_object(
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, now
                )
                store.save(NAMESPACES, namespace)
        ordered = sorted(prepared, key=lambda item: item[0] is not NAMESPACES)
        for rtype, obj in ordered:
            store.save(rtype, obj)
            count += 1
    return count
