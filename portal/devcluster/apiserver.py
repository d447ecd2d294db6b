"""The Kubernetes REST semantics of the dev cluster, independent of the HTTP plumbing.

`ApiServer.handle(Request) -> Response` implements discovery, get/list/watch, create, replace,
patch (merge, JSON, strategic-as-merge for core types, simplified apply) and delete for the
types in `resources.py`, with the status codes, `Status` bodies, `Warning` headers and
optimistic concurrency of a real API server.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from portal.devcluster import errors
from portal.devcluster.controller import KServeController, timestamp
from portal.devcluster.coretypes import check_core, default_core, prune_core
from portal.devcluster.errors import ApiError, bad_request
from portal.devcluster.patch import apply_config, json_patch, merge_patch
from portal.devcluster.resources import (
    CUSTOM_RESOURCE_DEFINITIONS,
    INFERENCE_SERVICES,
    NAMESPACES,
    RESOURCE_TYPES,
    ResourceType,
    group_versions,
    lookup,
)
from portal.devcluster.schema import (
    CRD_FILES,
    KSERVE_VALIDATOR,
    format_warning,
    inference_service_admission,
    load_crd,
    validate_custom_resource,
    validate_object_meta,
)
from portal.devcluster.selectors import field_selector, label_selector
from portal.devcluster.store import Store

log = logging.getLogger("portal.devcluster")

KUBERNETES_VERSION = {
    "major": "1",
    "minor": "31",
    "emulationMajor": "1",
    "emulationMinor": "31",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "30",
    "gitVersion": "v1.31.4+devcluster",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:43:21Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_SYSTEM_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds", "selfLink", "managedFields")  # fmt: skip
_MAX_WATCH_SECONDS = 3600


@dataclass
class Request:
    """One HTTP request, already read off the socket."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """The media type of the body, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    """What to send back; `stream` bodies are written chunk by chunk (watch)."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    stream: Iterator[bytes] | None = None


def json_response(status: int, payload: Any, warnings: list[str] | None = None) -> Response:
    """A JSON response with optional `Warning` headers."""
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    headers = [("Warning", format_warning(w)) for w in warnings or []]
    return Response(status, body, headers=headers)


def status_response(err: ApiError) -> Response:
    """The `Status` body of a failure."""
    response = json_response(err.code, err.status())
    response.headers.extend(err.headers.items())
    return response


@dataclass
class _Target:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclass
class _Prepared:
    obj: dict[str, Any]
    warnings: list[str]
    causes: list[dict[str, str]]


class ApiServer:
    """Routes requests to discovery or to the object store, holding the store lock per request."""

    def __init__(
        self,
        store: Store,
        controller: KServeController,
        clock: Callable[[], float],
        *,
        token: str | None = None,
    ) -> None:
        self.store = store
        self.controller = controller
        self.clock = clock
        self.token = token
        self.server_address = ""
        self.stopping = threading.Event()
        self._crd_objects: list[dict[str, Any]] | None = None

    # ------------------------------------------------------------------ entry point

    def handle(self, req: Request) -> Response:
        """Answer one request; never raises."""
        try:
            if self.token is not None and req.headers.get("authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            return self._route(req)
        except ApiError as err:
            return status_response(err)
        except Exception:
            log.exception("devcluster: %s %s failed", req.method, req.path)
            return status_response(ApiError(500, "InternalError", "Internal error occurred: devcluster bug", {}))

    def reconcile(self) -> None:
        """Let the simulated controller catch up with the clock."""
        with self.store.lock:
            self.controller.reconcile()

    # ------------------------------------------------------------------ routing

    def _route(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if not parts:
            return json_response(200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]})
        head = parts[0]
        if head == "version" and len(parts) == 1:
            return json_response(200, KUBERNETES_VERSION)
        if head in ("healthz", "livez", "readyz") and len(parts) == 1:
            return Response(200, b"ok", content_type="text/plain; charset=utf-8")
        if head == "api":
            if len(parts) == 1:
                return json_response(200, self._api_versions())
            if parts[1] != "v1":
                raise errors.path_not_found()
            if len(parts) == 2:
                return json_response(200, self._resource_list("", "v1"))
            return self._resource(req, "", "v1", parts[2:])
        if head == "apis":
            groups = group_versions()
            if len(parts) == 1:
                return json_response(
                    200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in groups]}
                )
            group = parts[1]
            if group not in groups:
                raise errors.path_not_found()
            if len(parts) == 2:
                return json_response(200, {"kind": "APIGroup", "apiVersion": "v1", **self._group(group)})
            if parts[2] not in groups[group]:
                raise errors.path_not_found()
            if len(parts) == 3:
                return json_response(200, self._resource_list(group, parts[2]))
            return self._resource(req, group, parts[2], parts[3:])
        raise errors.path_not_found()

    def _api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.server_address}],
        }

    def _group(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in group_versions()[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources: list[dict[str, Any]] = []
        for rtype in RESOURCE_TYPES:
            if rtype.group != group or rtype.version != version:
                continue
            entry: dict[str, Any] = {
                "name": rtype.plural,
                "singularName": rtype.singular,
                "namespaced": rtype.namespaced,
                "kind": rtype.kind,
                "verbs": list(rtype.verbs),
            }
            if rtype.short_names:
                entry["shortNames"] = list(rtype.short_names)
            if rtype.group == "serving.kserve.io":
                entry["categories"] = ["all"] if rtype is INFERENCE_SERVICES else []
            resources.append(entry)
            for sub in rtype.subresources:
                verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
                resources.append(
                    {
                        "name": f"{rtype.plural}/{sub}",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "kind": rtype.kind if sub != "log" else "Pod",
                        "verbs": verbs,
                    }
                )
        group_version = f"{group}/{version}" if group else version
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (not group and len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise errors.path_not_found()
        rtype = lookup(group, version, rest[0])
        if rtype is None:
            raise errors.path_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if rtype.namespaced and namespace is None and name is not None:
            raise errors.path_not_found()
        if not rtype.namespaced and namespace is not None:
            raise errors.path_not_found()
        if sub is not None and sub not in rtype.subresources:
            raise errors.path_not_found()
        return _Target(rtype, namespace, name, sub)

    def _resource(self, req: Request, group: str, version: str, rest: list[str]) -> Response:
        target = self._target(group, version, rest)
        rtype, method = target.rtype, req.method
        verb = {
            "GET": "get" if target.name else ("watch" if _truthy(req.query.get("watch")) else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if target.name else "deletecollection",
        }.get(method)
        if (
            verb is None
            or (verb not in rtype.verbs and target.subresource is None)
            or (target.subresource and verb not in ("get", "update", "patch"))
        ):
            raise errors.method_not_allowed()
        if target.subresource == "log" and verb != "get":
            raise errors.method_not_allowed()
        if method == "POST" and target.name is not None:
            raise errors.method_not_allowed()
        if method in ("PUT", "PATCH") and target.name is None:
            raise errors.method_not_allowed()
        if rtype.namespaced and target.namespace is None and verb in ("create", "deletecollection"):
            raise errors.method_not_allowed()
        if rtype is CUSTOM_RESOURCE_DEFINITIONS:
            return self._crds(target, req)
        if verb in ("list", "watch"):
            return self._list(target, req, watch=verb == "watch")
        if verb == "get":
            return self._get(target, req)
        if verb == "create":
            return self._create(target, req)
        if verb == "update":
            return self._replace(target, req)
        if verb == "patch":
            return self._patch(target, req)
        if verb == "delete":
            return self._delete(target, req)
        return self._delete_collection(target, req)

    # ------------------------------------------------------------------ reads

    def _get(self, target: _Target, req: Request) -> Response:
        assert target.name is not None
        with self.store.lock:
            self.controller.reconcile()
            obj = self.store.get(target.rtype, target.namespace or "", target.name)
            if obj is None:
                raise errors.not_found(target.rtype, target.name)
            obj = copy.deepcopy(obj)
        if target.subresource == "log":
            return self._pod_log(obj, req)
        return json_response(200, obj)

    def _matching(self, target: _Target, req: Request) -> Callable[[dict[str, Any]], bool]:
        by_label = label_selector(req.query.get("labelSelector"))
        by_field = field_selector(req.query.get("fieldSelector"))
        return lambda obj: by_label(obj) and by_field(obj)

    def _list(self, target: _Target, req: Request, *, watch: bool) -> Response:
        matches = self._matching(target, req)
        if watch:
            return self._watch(target, req, matches)
        with self.store.lock:
            self.controller.reconcile()
            items = [copy.deepcopy(o) for o in self.store.items(target.rtype, target.namespace) if matches(o)]
            resource_version = self.store.resource_version
        return json_response(200, self._list_body(target.rtype, items, resource_version, req))

    def _list_body(
        self, rtype: ResourceType, items: list[dict[str, Any]], resource_version: int, req: Request
    ) -> dict[str, Any]:
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

    def _watch(self, target: _Target, req: Request, matches: Callable[[dict[str, Any]], bool]) -> Response:
        timeout = min(int(req.query.get("timeoutSeconds") or _MAX_WATCH_SECONDS), _MAX_WATCH_SECONDS)
        since = req.query.get("resourceVersion") or ""
        return Response(200, stream=self._watch_stream(target, matches, since, self.clock() + timeout))

    def _watch_stream(
        self, target: _Target, matches: Callable[[dict[str, Any]], bool], since: str, deadline: float
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
            yield _watch_line("ADDED", obj)
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
                    yield _watch_line(event.type, copy.deepcopy(event.object))

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
        args = " ".join(
            next((c.get("args") or [] for c in pod["spec"]["containers"] if c.get("name") == container), [])
        )
        lines = [
            f"INFO {started} api_server.py:528] vLLM API server version 0.6.3.post1",
            f"INFO {started} api_server.py:529] args: {args}",
            f"INFO {started} model_runner.py:1067] Loading model weights from /mnt/models",
            f"INFO {started} model_runner.py:1072] Loading model weights took 2.9 GiB",
            f"INFO {started} gpu_executor.py:122] # GPU blocks: 28813, # CPU blocks: 9362",
            f"INFO {started} launcher.py:19] Available routes are: /v1/models, /v1/chat/completions, /v1/completions",
            "INFO:     Started server process [1]",
            "INFO:     Application startup complete.",
            "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)",
        ]
        tail = req.query.get("tailLines")
        if tail and tail.isdigit():
            lines = lines[-int(tail) :] if int(tail) else []
        return Response(200, ("\n".join(lines) + "\n").encode(), content_type="text/plain")

    # ------------------------------------------------------------------ writes

    def _decode(self, req: Request, rtype: ResourceType | None) -> Any:
        try:
            if req.content_type.endswith("yaml"):
                return yaml.safe_load(req.body.decode() or "null")
            return json.loads(req.body.decode() or "null")
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"couldn't get version/kind; json parse error: {exc}") from exc

    def _decode_object(self, req: Request, rtype: ResourceType) -> dict[str, Any]:
        obj = self._decode(req, rtype)
        return self._check_kind(obj, rtype)

    def _check_kind(self, obj: Any, rtype: ResourceType) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise bad_request("couldn't get version/kind; json parse error: expected an object")
        if rtype.is_custom and not obj.get("kind"):
            raise bad_request(f"Object 'Kind' is missing in '{json.dumps(obj, separators=(',', ':'))[:200]}'")
        obj.setdefault("apiVersion", rtype.api_version)
        obj.setdefault("kind", rtype.kind)
        if obj["apiVersion"] != rtype.api_version:
            raise bad_request(
                f"the API version in the data ({obj['apiVersion']}) does not match the expected API version ({rtype.api_version})"
            )
        if obj["kind"] != rtype.kind:
            raise bad_request(f"the kind in the data ({obj['kind']}) does not match the expected kind ({rtype.kind})")
        meta = obj.setdefault("metadata", {})
        if meta is None:
            obj["metadata"] = {}
        elif not isinstance(meta, dict):
            raise bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: metadata must be an object'
            )
        return obj

    def _options(self, req: Request) -> tuple[bool, str]:
        dry_run = req.query.get("dryRun", "")
        if dry_run not in ("", "All"):
            raise bad_request(f'Invalid dry run value: "{dry_run}": supported values: "All"')
        validation = req.query.get("fieldValidation") or "Warn"
        if validation not in ("Ignore", "Warn", "Strict"):
            raise bad_request(
                f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", "Strict", "Warn"'
            )
        return dry_run == "All", validation

    def _prepare(self, rtype: ResourceType, obj: dict[str, Any], validation: str) -> _Prepared:
        if rtype.crd is not None:
            result = validate_custom_resource(obj, rtype.crd, rtype.version, namespaced=rtype.namespaced)
            pruned, unknown, causes = result.pruned, result.unknown_fields, list(result.causes)
        else:
            pruned, unknown = prune_core(rtype, obj)
            pruned.setdefault("metadata", {})
            name_rule = "label" if rtype is NAMESPACES else "subdomain"
            causes = validate_object_meta(pruned["metadata"], namespaced=rtype.namespaced, name_rule=name_rule)
            if not causes:
                pruned = default_core(rtype, pruned)
                check_core(rtype, pruned)
        if unknown and validation == "Strict":
            listed = ", ".join(f'unknown field "{p}"' for p in unknown)
            raise bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: strict decoding error: {listed}'
            )
        warnings = [f'unknown field "{p}"' for p in unknown] if validation == "Warn" else []
        return _Prepared(pruned, warnings, causes)

    def _admit(self, rtype: ResourceType, prepared: _Prepared) -> None:
        name = prepared.obj["metadata"].get("name", "")
        if prepared.causes:
            raise errors.invalid(rtype, name, prepared.causes)
        if rtype is INFERENCE_SERVICES:
            denial = inference_service_admission(prepared.obj)
            if denial:
                raise ApiError(403, "Forbidden", f'admission webhook "{KSERVE_VALIDATOR}" denied the request: {denial}')

    def _create(self, target: _Target, req: Request) -> Response:
        obj = self._decode_object(req, target.rtype)
        return self._create_object(target, obj, req)

    def _create_object(self, target: _Target, obj: dict[str, Any], req: Request) -> Response:
        rtype = target.rtype
        dry_run, validation = self._options(req)
        meta = obj["metadata"]
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != target.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = target.namespace
        else:
            meta.pop("namespace", None)
        for key in _SYSTEM_META:
            meta.pop(key, None)
        if "status" in rtype.subresources and rtype.is_custom:
            obj.pop("status", None)
        with self.store.lock:
            self.controller.reconcile()
            if not meta.get("name") and isinstance(meta.get("generateName"), str):
                meta["name"] = self._generate_name(rtype, target.namespace or "", meta["generateName"])
            prepared = self._prepare(rtype, obj, validation)
            if rtype.namespaced and self.store.get(NAMESPACES, "", target.namespace or "") is None:
                raise errors.namespace_not_found(target.namespace or "")
            self._admit(rtype, prepared)
            obj = prepared.obj
            name = obj["metadata"]["name"]
            if self.store.get(rtype, target.namespace or "", name) is not None:
                raise errors.already_exists(rtype, name)
            obj["metadata"]["uid"] = str(uuid.uuid4())
            obj["metadata"]["creationTimestamp"] = timestamp(self.clock())
            if rtype.is_custom:
                obj["metadata"]["generation"] = 1
            if dry_run:
                return json_response(201, obj, prepared.warnings)
            stored = copy.deepcopy(self.store.save(rtype, obj))
            self.controller.reconcile()
        log.info("devcluster: created %s %s/%s", rtype.qualified, target.namespace or "-", name)
        return json_response(201, stored, prepared.warnings)

    def _generate_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        for _ in range(100):
            name = prefix + "".join(secrets.choice(alphabet) for _ in range(5))
            if self.store.get(rtype, namespace, name) is None:
                return name
        raise errors.already_exists(rtype, prefix)

    def _replace(self, target: _Target, req: Request) -> Response:
        obj = self._decode_object(req, target.rtype)
        with self.store.lock:
            self.controller.reconcile()
            current = self._current(target)
            return self._update(target, current, obj, req)

    def _current(self, target: _Target) -> dict[str, Any]:
        assert target.name is not None
        current = self.store.get(target.rtype, target.namespace or "", target.name)
        if current is None:
            raise errors.not_found(target.rtype, target.name)
        return current

    def _update(self, target: _Target, current: dict[str, Any], obj: dict[str, Any], req: Request) -> Response:
        rtype, name = target.rtype, target.name or ""
        dry_run, validation = self._options(req)
        meta = obj["metadata"]
        if meta.get("name") != name:
            raise bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({name})"
            )
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != target.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = target.namespace
        current_meta = current["metadata"]
        if meta.get("uid") and meta["uid"] != current_meta["uid"]:
            raise errors.conflict(
                rtype,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {current_meta['uid']}",
            )
        wanted_version = meta.get("resourceVersion")
        if not wanted_version:
            if not rtype.unconditional_update:
                cause = {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: 0x0: must be specified for an update",
                    "field": "metadata.resourceVersion",
                }
                raise errors.invalid(rtype, name, [cause])
        elif wanted_version != current_meta["resourceVersion"]:
            raise errors.conflict(rtype, name, errors.STALE_OBJECT)
        if target.subresource == "status":
            new = copy.deepcopy(current)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
        else:
            new = obj
            if "status" in rtype.subresources and rtype.is_custom:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if key in current_meta:
                new["metadata"][key] = current_meta[key]
            else:
                new["metadata"].pop(key, None)
        new["metadata"]["resourceVersion"] = current_meta["resourceVersion"]
        new["metadata"].pop("managedFields", None)
        prepared = self._prepare(rtype, new, validation)
        self._admit(rtype, prepared)
        new = prepared.obj
        if rtype.is_custom and _desired_state(new) != _desired_state(current):
            new["metadata"]["generation"] = int(current_meta.get("generation") or 1) + 1
        if new == current or dry_run:
            return json_response(200, copy.deepcopy(new), prepared.warnings)
        stored = copy.deepcopy(self.store.save(rtype, new))
        self.controller.reconcile()
        return json_response(200, stored, prepared.warnings)

    def _patch(self, target: _Target, req: Request) -> Response:
        rtype = target.rtype
        kind = req.content_type
        accepted = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH] + ([] if rtype.is_custom else [STRATEGIC_PATCH])
        if kind not in accepted:
            raise errors.unsupported_patch(accepted)
        if kind == APPLY_PATCH and not req.query.get("fieldManager"):
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                    {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}
                ]},
            )  # fmt: skip
        patch = self._decode(req, None)
        with self.store.lock:
            self.controller.reconcile()
            assert target.name is not None
            current = self.store.get(rtype, target.namespace or "", target.name)
            if current is None:
                if kind != APPLY_PATCH or target.subresource:
                    raise errors.not_found(rtype, target.name)
                obj = self._check_kind(copy.deepcopy(patch), rtype)
                obj["metadata"].setdefault("name", target.name)
                return self._create_object(target, obj, req)
            base = copy.deepcopy(current)
            if kind == JSON_PATCH:
                patched = json_patch(base, patch)
            elif kind == APPLY_PATCH:
                patched = apply_config(base, patch)
            else:
                if not isinstance(patch, dict):
                    raise bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}")
                patched = merge_patch(base, patch)
            patched = self._check_kind(patched, rtype)
            return self._update(target, current, patched, req)

    def _delete(self, target: _Target, req: Request) -> Response:
        rtype = target.rtype
        options = self._decode(req, None) if req.body.strip() else {}
        options = options if isinstance(options, dict) else {}
        dry_run = req.query.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        with self.store.lock:
            self.controller.reconcile()
            current = copy.deepcopy(self._current(target))
            name, meta = current["metadata"]["name"], current["metadata"]
            preconditions = options.get("preconditions") or {}
            if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
                raise errors.conflict(
                    rtype,
                    name,
                    f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object meta: {meta.get('uid')}",
                )
            wanted = preconditions.get("resourceVersion")
            if wanted and wanted != meta.get("resourceVersion"):
                raise errors.conflict(
                    rtype,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {wanted}, ResourceVersion in meta: {meta.get('resourceVersion')}",
                )
            if not dry_run:
                self._remove(rtype, target.namespace or "", name)
                self.controller.reconcile()
        return json_response(200, current if rtype.delete_returns_object else _success(rtype, current))

    def _remove(self, rtype: ResourceType, namespace: str, name: str) -> None:
        self.store.remove(rtype, namespace, name)
        if rtype is NAMESPACES:
            for other in self.store.all_types():
                if other.namespaced:
                    for obj in self.store.items(other, name):
                        self.store.remove(other, name, obj["metadata"]["name"])
        log.info("devcluster: deleted %s %s/%s", rtype.qualified, namespace or "-", name)

    def _delete_collection(self, target: _Target, req: Request) -> Response:
        rtype = target.rtype
        matches = self._matching(target, req)
        dry_run = req.query.get("dryRun") == "All"
        with self.store.lock:
            self.controller.reconcile()
            doomed = [copy.deepcopy(o) for o in self.store.items(rtype, target.namespace) if matches(o)]
            if not dry_run:
                for obj in doomed:
                    self._remove(rtype, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
                self.controller.reconcile()
            resource_version = self.store.resource_version
        if rtype.is_custom:
            return json_response(200, self._list_body(rtype, doomed, resource_version, Request("GET", "")))
        return json_response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})

    # ------------------------------------------------------------------ CRDs (read-only)

    def _crds(self, target: _Target, req: Request) -> Response:
        objects = self._crd_list()
        if target.name is None:
            if _truthy(req.query.get("watch")):
                raise errors.method_not_allowed()
            matches = self._matching(target, req)
            items = [copy.deepcopy(o) for o in objects if matches(o)]
            return json_response(200, self._list_body(target.rtype, items, self.store.resource_version, req))
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


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


def _watch_line(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


def _desired_state(obj: dict[str, Any]) -> dict[str, Any]:
    """Everything but metadata and status: a change here bumps metadata.generation."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _success(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": obj["metadata"]["name"]}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.plural
    details["uid"] = obj["metadata"].get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
