"""Server-side printing: `meta.k8s.io/v1` Tables, which `kubectl get` asks for (`Accept: …;as=Table`).

Custom resources get the columns of their CRD (`additionalPrinterColumns`, evaluated with the
small JSONPath subset those use); core types get kubectl's usual columns for the kinds the dev
cluster runs (Pods, Nodes, Secrets, ConfigMaps, PVCs), Name and Age for the rest. Each row carries
the object's metadata (`includeObject=Metadata`, the default), which kubectl needs for `-A` and
`--show-labels`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from portal.devcluster.resources import ResourceType
from portal.devcluster.schema import crd_version

_FILTER = re.compile(r"^(?P<name>[^\[]*)\[\?\(@\.(?P<key>[\w.]+)==(?P<value>'[^']*'|true|false|\d+)\)\]$")

Column = tuple[dict[str, Any], Callable[[dict[str, Any], float], Any]]


def wants_table(accept: str) -> bool:
    """True when the client asked for a Table (kubectl get does; the official clients do not)."""
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """An age as kubectl prints it (`45s`, `3m20s`, `5h`, `12d`), like apimachinery's HumanDuration."""
    s = max(int(seconds), 0)
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days < 2920 else f"{days // 365}y"


def _age(obj: dict[str, Any], now: float) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    moment = datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    return human_duration(now - moment)


def json_path(obj: Any, path: str) -> list[Any]:
    """Values at a CRD printer-column path: `.a.b`, `.a[*].b`, `.a[?(@.k=='v')].b`."""
    found = [obj]
    for segment in [s for s in re.split(r"\.(?![^\[]*\])", path) if s]:
        match = _FILTER.match(segment)
        wildcard = segment.endswith("[*]")
        name = match.group("name") if match else segment.removesuffix("[*]")
        step: list[Any] = []
        for item in found:
            value = item.get(name) if isinstance(item, dict) else None
            if value is None:
                continue
            if match or wildcard:
                for element in value if isinstance(value, list) else []:
                    if not match or _filter_holds(element, match.group("key"), match.group("value")):
                        step.append(element)
            else:
                step.append(value)
        found = step
    return found


def _filter_holds(element: Any, key: str, literal: str) -> bool:
    actual = json_path(element, key)
    if not actual:
        return False
    wanted: Any = literal.strip("'") if literal.startswith("'") else {"true": True, "false": False}.get(literal)
    if wanted is None:
        wanted = int(literal)
    return bool(actual[0] == wanted)


def _column(name: str, kind: str = "string", *, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def _custom_columns(rtype: ResourceType) -> list[Column]:
    assert rtype.crd is not None
    columns: list[Column] = [(_column("Name", fmt="name"), lambda o, now: o["metadata"]["name"])]
    for spec in crd_version(rtype.crd, rtype.version).get("additionalPrinterColumns") or []:
        path = str(spec["jsonPath"])
        if spec.get("type") == "date":
            columns.append((_column(spec["name"], "date", priority=int(spec.get("priority", 0))), _age))
            continue

        def cell(obj: dict[str, Any], now: float, path: str = path) -> Any:
            values = json_path(obj, path)
            if not values:
                return None
            return values[0] if len(values) == 1 else ",".join(str(v) for v in values)

        columns.append(
            (_column(spec["name"], str(spec.get("type", "string")), priority=int(spec.get("priority", 0))), cell)
        )
    return columns


def _pod_status(pod: dict[str, Any], now: float) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return str(waiting.get("reason", "Waiting"))
    return str((pod.get("status") or {}).get("phase", "Unknown"))


def _pod_ready(pod: dict[str, Any], now: float) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _node_ready(node: dict[str, Any], now: float) -> str:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    status = "Ready" if ready else "NotReady"
    return status + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


_CORE_COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        (_column("Ready"), _pod_ready),
        (_column("Status"), _pod_status),
        (_column("Restarts", "string"), lambda o, now: "0"),
        (_column("Age"), _age),
        (_column("IP", priority=1), lambda o, now: (o.get("status") or {}).get("podIP") or "<none>"),
        (_column("Node", priority=1), lambda o, now: (o.get("spec") or {}).get("nodeName") or "<none>"),
    ],
    "Node": [
        (_column("Status"), _node_ready),
        (_column("Roles"), lambda o, now: "<none>"),
        (_column("Age"), _age),
        (_column("Version"), lambda o, now: "v1.31.4"),
    ],
    "Secret": [
        (_column("Type"), lambda o, now: o.get("type", "Opaque")),
        (_column("Data", "integer"), lambda o, now: len(o.get("data") or {})),
        (_column("Age"), _age),
    ],
    "ConfigMap": [
        (_column("Data", "integer"), lambda o, now: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        (_column("Age"), _age),
    ],
    "PersistentVolumeClaim": [
        (_column("Status"), lambda o, now: (o.get("status") or {}).get("phase", "Pending")),
        (_column("Capacity"), lambda o, now: ((o.get("status") or {}).get("capacity") or {}).get("storage", "")),
        (_column("Age"), _age),
    ],
}


def _columns(rtype: ResourceType) -> list[Column]:
    if rtype.is_custom:
        return _custom_columns(rtype)
    name: Column = (_column("Name", fmt="name"), lambda o, now: o["metadata"]["name"])
    return [name, *_CORE_COLUMNS.get(rtype.kind, [(_column("Age"), _age)])]


def table(rtype: ResourceType, objects: list[dict[str, Any]], list_meta: dict[str, Any], now: float) -> dict[str, Any]:
    """A `meta.k8s.io/v1` Table of `objects`, one row each with its metadata."""
    columns = _columns(rtype)
    rows = [
        {
            "cells": [cell(obj, now) for _definition, cell in columns],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]},
        }
        for obj in objects
    ]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": [definition for definition, _cell in columns],
        "rows": rows,
    }
