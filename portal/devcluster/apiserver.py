"""The Kubernetes REST semantics of the dev cluster, independent of the HTTP plumbing: routing.

`ApiServer.handle(Request) -> Response` answers discovery itself and routes resource URLs to the
handlers in `reads` (get/list/watch, pod logs, CRDs) and `writes` (create, replace, patch — merge,
JSON, strategic-as-merge for core types, simplified apply — and delete) for the types in
`resources.py`, with the status codes, `Status` bodies, `Warning` headers and optimistic
concurrency of a real API server.
"""

from __future__ import annotations

import logging
from typing import Any

from portal.devcluster import errors, openapi
from portal.devcluster.errors import ApiError
from portal.devcluster.messages import Request, Response, Target, json_response, status_response, truthy
from portal.devcluster.reads import Reads
from portal.devcluster.resources import (
    CUSTOM_RESOURCE_DEFINITIONS,
    INFERENCE_SERVICES,
    RESOURCE_TYPES,
    group_versions,
    lookup,
)
from portal.devcluster.writes import Writes

log = logging.getLogger("portal.devcluster")

__all__ = ["ApiServer", "Request", "Response", "json_response", "status_response"]

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


class ApiServer(Reads, Writes):
    """Routes requests to discovery or to the read and write handlers, which hold the store lock."""

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
            paths = ["/api", "/api/v1", "/apis", "/healthz", "/openapi/v2", "/openapi/v3", "/version"]
            return json_response(200, {"paths": paths})
        head = parts[0]
        if head == "openapi":
            return self._openapi(req, parts[1:])
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

    def _openapi(self, req: Request, rest: list[str]) -> Response:
        if rest == ["v2"]:
            if not openapi.accepts_json(req.headers.get("accept", "")):
                # kubectl asks for protobuf first; 406 makes it use the v3 documents instead.
                raise errors.generic(406, "only application/json is served", "NotAcceptable")
            return Response(200, openapi.v2_document())
        if rest == ["v3"]:
            return json_response(200, openapi.v3_index())
        key = "/".join(rest[1:])
        if rest[:1] == ["v3"] and key in openapi.v3_documents():
            return Response(200, openapi.v3_documents()[key])
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

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
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
        return Target(rtype, namespace, name, sub)

    def _resource(self, req: Request, group: str, version: str, rest: list[str]) -> Response:
        target = self._target(group, version, rest)
        rtype, method = target.rtype, req.method
        verb = {
            "GET": "get" if target.name else ("watch" if truthy(req.query.get("watch")) else "list"),
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
