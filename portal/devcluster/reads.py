"""Reads of the dev cluster's API: get, list (with selectors and paging), watch, pod logs, CRDs."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from portal.devcluster import errors
from portal.devcluster.errors import ApiError, bad_request
from portal.devcluster.messages import Request, Response, ServerState, Target, json_response, truthy
from portal.devcluster.resources import NODES, ResourceType
from portal.devcluster.schema import CRD_FILES, load_crd
from portal.devcluster.selectors import field_selector, label_selector
from portal.devcluster.status import timestamp
from portal.devcluster.tables import table, wants_table
from portal.devcluster.vllm_startup import startup_lines

_MAX_WATCH_SECONDS = 3600


def matching(req: Request) -> Callable[[dict[str, Any]], bool]:
    """The label and field selectors of a list, watch or deletecollection request as one predicate."""
    by_label = label_selector(req.query.get("labelSelector"))
    by_field = field_selector(req.query.get("fieldSelector"))
    return lambda obj: by_label(obj) and by_field(obj)


def list_body(rtype: ResourceType, items: list[dict[str, Any]], resource_version: int, req: Request) -> dict[str, Any]:
    """A `<Kind>List` body, paged by `limit`/`continue` as the API server pages."""
    meta: dict[str, Any] = {"resourceVersion": str(resource_version)}
    start = 0
    if req.query.get("continue"):
        try:
            start = int(base64.urlsafe_b64decode(req.query["continue"].encode()).decode())
        except ValueError as exc:
            raise bad_request("continue key is not valid: illegal base64 data") from exc
    limit = int(req.query.get("limit") or 0)
    if limit > 0:
        page = items[start : start + limit]
        if start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        items = page
    elif start:
        items = items[start:]
    if not rtype.is_custom:
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
    return {"apiVersion": rtype.api_version, "kind": rtype.list_kind, "metadata": meta, "items": items}


class Reads(ServerState):
    """GET handlers; each holds the store lock while it copies what it answers."""

    def _get(self, target: Target, req: Request) -> Response:
        assert target.name is not None
        with self.store.lock:
            self.controller.reconcile()
            obj = self.store.get(target.rtype, target.namespace or "", target.name)
            if obj is None:
                raise errors.not_found(target.rtype, target.name)
            obj = copy.deepcopy(obj)
        if target.subresource == "log":
            return self._pod_log(obj, req)
        if target.subresource is None and wants_table(req.headers.get("accept", "")):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(200, table(target.rtype, [obj], meta, self.clock()))
        return json_response(200, obj)

    def _list(self, target: Target, req: Request, *, watch: bool) -> Response:
        matches = matching(req)
        if watch:
            return self._watch(target, req, matches)
        with self.store.lock:
            self.controller.reconcile()
            items = [copy.deepcopy(o) for o in self.store.items(target.rtype, target.namespace) if matches(o)]
            resource_version = self.store.resource_version
        body = list_body(target.rtype, items, resource_version, req)
        if wants_table(req.headers.get("accept", "")):
            body = table(target.rtype, body["items"], body["metadata"], self.clock())
        return json_response(200, body)

    def _watch(self, target: Target, req: Request, matches: Callable[[dict[str, Any]], bool]) -> Response:
        timeout = min(int(req.query.get("timeoutSeconds") or _MAX_WATCH_SECONDS), _MAX_WATCH_SECONDS)
        since = req.query.get("resourceVersion") or ""
        as_table = wants_table(req.headers.get("accept", ""))

        def present(obj: dict[str, Any]) -> dict[str, Any]:
            if not as_table:
                return obj
            # kubectl get --watch: every event carries a one-row Table.
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return table(target.rtype, [obj], meta, self.clock())

        return Response(200, stream=self._watch_stream(target, matches, since, self.clock() + timeout, present))

    def _watch_stream(
        self,
        target: Target,
        matches: Callable[[dict[str, Any]], bool],
        since: str,
        deadline: float,
        present: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Iterator[bytes]:
        rtype, namespace = target.rtype, target.namespace
        initial: list[dict[str, Any]] = []
        with self.store.lock:
            self.controller.reconcile()
            oldest = self.store.oldest_watchable()
            if since in ("", "0"):
                cursor = self.store.resource_version
                initial = [copy.deepcopy(o) for o in self.store.items(rtype, namespace) if matches(o)]
            else:
                cursor = int(since) if since.isdigit() else -1
        if cursor < oldest:
            gone = ApiError(410, "Expired", f"too old resource version: {since} ({oldest})")
            yield _watch_line("ERROR", gone.status())
            return
        for obj in initial:
            yield _watch_line("ADDED", present(obj))
        while not self.stopping.is_set() and self.clock() < deadline:
            with self.store.lock:
                self.controller.reconcile()
                events = self.store.events_after(cursor, rtype, namespace)
                if not events:
                    wake = self.controller.next_change()
                    wait = min(0.5, max(deadline - self.clock(), 0.0))
                    if wake is not None:
                        wait = min(wait, max(wake - self.clock(), 0.0) + 0.001)
                    self.store.changed.wait(wait)
                    self.controller.reconcile()
                    events = self.store.events_after(cursor, rtype, namespace)
                if events:
                    cursor = events[-1].resource_version
            for event in events:
                if matches(event.object):
                    yield _watch_line(event.type, present(copy.deepcopy(event.object)))

    def _pod_log(self, pod: dict[str, Any], req: Request) -> Response:
        name = pod["metadata"]["name"]
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        container = req.query.get("container") or (statuses[0]["name"] if statuses else "kserve-container")
        status = next((s for s in statuses if s.get("name") == container), None)
        running = status is not None and "running" in (status.get("state") or {})
        if not running:
            waiting = ((status or {}).get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "ContainerCreating")
            raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')
        started = status["state"]["running"].get("startedAt", "") if status else ""
        spec: dict[str, Any] = next((c for c in pod["spec"]["containers"] if c.get("name") == container), {})
        node = self.store.get(NODES, "", pod["spec"].get("nodeName") or "")
        lines = startup_lines(spec, node, started)
        tail = req.query.get("tailLines")
        if tail and tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) else []
        return Response(200, ("\n".join(lines) + "\n").encode(), content_type="text/plain")

    # ------------------------------------------------------------------ CRDs (read-only)

    def _crds(self, target: Target, req: Request) -> Response:
        objects = self._crd_list()
        if target.name is None:
            if truthy(req.query.get("watch")):
                raise errors.method_not_allowed()
            matches = matching(req)
            items = [copy.deepcopy(o) for o in objects if matches(o)]
            return json_response(200, list_body(target.rtype, items, self.store.resource_version, req))
        for obj in objects:
            if obj["metadata"]["name"] == target.name:
                return json_response(200, obj)
        raise errors.not_found(target.rtype, target.name)

    def _crd_list(self) -> list[dict[str, Any]]:
        if self._crd_objects is None:
            objects = []
            for name in sorted(CRD_FILES):
                crd = copy.deepcopy(load_crd(name))
                crd["metadata"].update(
                    {
                        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                        "resourceVersion": "1",
                        "generation": 1,
                        "creationTimestamp": timestamp(self.clock()),
                    }
                )
                names = crd["spec"]["names"]
                crd["status"] = {
                    "acceptedNames": names,
                    "conditions": [
                        {
                            "type": "NamesAccepted",
                            "status": "True",
                            "reason": "NoConflicts",
                            "message": "no conflicts found",
                        },
                        {
                            "type": "Established",
                            "status": "True",
                            "reason": "InitialNamesAccepted",
                            "message": "the initial names have been accepted",
                        },
                    ],
                    "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
                }
                objects.append(crd)
            self._crd_objects = objects
        return self._crd_objects


def _watch_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"
