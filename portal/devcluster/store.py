"""The in-memory object store: one lock, a cluster-wide resourceVersion and a watch history."""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portal.devcluster.resources import RESOURCE_TYPES, ResourceType

HISTORY_LIMIT = 5000
FIRST_RESOURCE_VERSION = 1000


@dataclass(frozen=True)
class WatchEvent:
    """One change, as a watch stream reports it."""

    resource_version: int
    type: str
    rtype: ResourceType
    namespace: str
    object: dict[str, Any]


class Store:
    """Objects by type, namespace and name; every write bumps the cluster-wide resourceVersion.

    Callers hold `lock` around a read-modify-write; `changed` is notified after every write so
    that watch streams wake up.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[ResourceType, dict[tuple[str, str], dict[str, Any]]] = {r: {} for r in RESOURCE_TYPES}
        self._resource_version = FIRST_RESOURCE_VERSION
        self._history: deque[WatchEvent] = deque(maxlen=HISTORY_LIMIT)
        self._order: dict[str, int] = {}
        self._compacted = 0

    @property
    def resource_version(self) -> int:
        """The resourceVersion of the latest write."""
        return self._resource_version

    def oldest_watchable(self) -> int:
        """The oldest resourceVersion a watch can still resume from."""
        if len(self._history) < HISTORY_LIMIT:
            return max(FIRST_RESOURCE_VERSION, self._compacted)
        return max(self._history[0].resource_version - 1, self._compacted)

    def compact(self) -> int:
        """Forget the change history, as etcd compaction does: a watch from an older version gets 410 Gone."""
        self._history.clear()
        self._compacted = self._resource_version
        return self._compacted

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object (a reference: copy before changing it), or None."""
        return self._objects[rtype].get((namespace if rtype.namespaced else "", name))

    def items(self, rtype: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        """Stored objects of one type, in etcd key order (namespace, then name)."""
        bucket = self._objects[rtype]
        keys = sorted(k for k in bucket if namespace is None or not rtype.namespaced or k[0] == namespace)
        return [bucket[k] for k in keys]

    def creation_order(self, obj: dict[str, Any]) -> int:
        """A sequence number telling which of two objects was created first."""
        return self._order.get(obj["metadata"].get("uid", ""), 0)

    def save(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` (create or replace) under a new resourceVersion and return the stored copy."""
        stored = copy.deepcopy(obj)
        meta = stored["metadata"]
        key = (meta.get("namespace", "") if rtype.namespaced else "", meta["name"])
        event_type = "MODIFIED" if key in self._objects[rtype] else "ADDED"
        self._resource_version += 1
        meta["resourceVersion"] = str(self._resource_version)
        if event_type == "ADDED":
            self._order.setdefault(meta.get("uid", ""), self._resource_version)
        self._objects[rtype][key] = stored
        self._record(event_type, rtype, key[0], stored)
        return stored

    def remove(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """Delete one object; return it as it was, or None when it did not exist."""
        key = (namespace if rtype.namespaced else "", name)
        removed = self._objects[rtype].pop(key, None)
        if removed is not None:
            self._resource_version += 1
            self._order.pop(removed["metadata"].get("uid", ""), None)
            gone = copy.deepcopy(removed)
            gone["metadata"]["resourceVersion"] = str(self._resource_version)
            self._record("DELETED", rtype, key[0], gone)
        return removed

    def events_after(self, resource_version: int, rtype: ResourceType, namespace: str | None) -> list[WatchEvent]:
        """Changes to one type (and namespace) newer than `resource_version`."""
        return [
            e
            for e in self._history
            if e.resource_version > resource_version
            and e.rtype is rtype
            and (namespace is None or not rtype.namespaced or e.namespace == namespace)
        ]

    def all_types(self) -> Iterable[ResourceType]:
        """Every resource type the store keeps."""
        return self._objects.keys()

    def _record(self, event_type: str, rtype: ResourceType, namespace: str, obj: dict[str, Any]) -> None:
        self._history.append(WatchEvent(self._resource_version, event_type, rtype, namespace, obj))
        self.changed.notify_all()
