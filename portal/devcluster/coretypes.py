"""Built-in (core/v1) objects: pruning, defaulting and type checks.

The shapes come from the official client's generated models (`openapi_types` and
`attribute_map` of `kubernetes.client.models.V1Secret` etc.), which mirror the API server's
OpenAPI document; an object the server stores is therefore always one the client can read back.
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from kubernetes.client import models as k8s_models

from portal.devcluster.errors import ApiError, bad_request
from portal.devcluster.resources import EVENTS, ResourceType

_QUANTITY_MAPS = frozenset({"limits", "requests", "allocatable", "capacity", "hard", "used"})


def _model_for(type_name: str) -> Any:
    return getattr(k8s_models, type_name, None)


def model_name(rtype: ResourceType) -> str:
    """The client model class for a core type (`V1Secret`, `CoreV1Event`)."""
    return "CoreV1Event" if rtype is EVENTS else f"V1{rtype.kind}"


class _Pruner:
    def __init__(self) -> None:
        self.unknown: list[str] = []

    def prune(self, value: Any, type_name: str, path: str, key: str = "") -> Any:
        """`value` without the fields its client model type does not declare."""
        if type_name.startswith("List[") and isinstance(value, list):
            inner = type_name[5:-1]
            return [self.prune(v, inner, f"{path}[{i}]") for i, v in enumerate(value)]
        if type_name.startswith("Dict[") and isinstance(value, dict):
            inner = type_name[5:-1].split(", ", 1)[1]
            if inner == "str" and key in _QUANTITY_MAPS:
                # The API server canonicalises quantities to strings: `1` is served as "1".
                return {
                    k: str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in value.items()
                }
            return {k: self.prune(v, inner, f"{path}.{k}") for k, v in value.items()}
        model = _model_for(type_name)
        if model is None or not isinstance(value, dict):
            return copy.deepcopy(value)
        fields = {model.attribute_map[attr]: kind for attr, kind in model.openapi_types.items()}
        out = {}
        for child_key, child in value.items():
            child_path = f"{path}.{child_key}" if path else child_key
            if child_key in fields:
                out[child_key] = self.prune(child, fields[child_key], child_path, child_key)
            else:
                self.unknown.append(child_path)
        return out


def prune_core(rtype: ResourceType, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Drop fields the type does not declare; return the object and the dropped field paths."""
    pruner = _Pruner()
    pruned = pruner.prune(obj, model_name(rtype), "")
    return pruned, pruner.unknown


def default_core(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """Apply the defaults and conversions the API server applies on write."""
    if rtype.kind == "Secret":
        obj.setdefault("type", "Opaque")
        data = obj.get("data") or {}
        for key, value in data.items():
            if not isinstance(value, str):
                raise bad_request(
                    f'Secret in version "v1" cannot be handled as a Secret: data.{key}: expected a string'
                )
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise bad_request(
                    f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data in data.{key}'
                ) from exc
        string_data = obj.pop("stringData", None) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        if data:
            obj["data"] = data
    elif rtype.kind == "Namespace":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj.setdefault("status", {}).setdefault("phase", "Active")
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", obj["metadata"]["name"])
    elif rtype.kind == "PersistentVolumeClaim":
        obj.setdefault("status", {}).setdefault("phase", "Pending")
        obj.setdefault("spec", {}).setdefault("volumeMode", "Filesystem")
    elif rtype.kind == "Node":
        status = obj.setdefault("status", {})
        allocatable = status.setdefault("allocatable", {})
        status.setdefault("capacity", dict(allocatable))
        status.setdefault("conditions", [{"type": "Ready", "status": "True", "reason": "KubeletReady"}])
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/hostname", obj["metadata"]["name"])
        labels.setdefault("kubernetes.io/os", "linux")
        labels.setdefault("kubernetes.io/arch", "amd64")
    elif rtype.kind == "Pod":
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    return obj


def check_core(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Raise 400 BadRequest when the client could not read the object back (a type mismatch)."""
    model = _model_for(model_name(rtype))
    if model is None:
        return
    try:
        model.from_dict(obj)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(first[:3]) if first else "invalid object"
        raise ApiError(
            400,
            "BadRequest",
            f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: {detail}',
        ) from exc
