"""Writes of the dev cluster's API: create, replace, patch (merge, JSON, strategic, apply), delete."""

from __future__ import annotations

import copy
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import yaml

from portal.devcluster import errors
from portal.devcluster.coretypes import check_core, default_core, prune_core
from portal.devcluster.errors import ApiError, bad_request
from portal.devcluster.messages import Request, Response, ServerState, Target, json_response
from portal.devcluster.patch import apply_config, json_patch, merge_patch
from portal.devcluster.reads import list_body, matching
from portal.devcluster.resources import INFERENCE_SERVICES, NAMESPACES, ResourceType
from portal.devcluster.schema import (
    KSERVE_VALIDATOR,
    inference_service_admission,
    validate_custom_resource,
    validate_object_meta,
)
from portal.devcluster.status import timestamp

log = logging.getLogger("portal.devcluster")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
_SYSTEM_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds", "selfLink", "managedFields")  # fmt: skip


@dataclass
class _Prepared:
    obj: dict[str, Any]
    warnings: list[str]
    causes: list[dict[str, str]]


class Writes(ServerState):
    """POST, PUT, PATCH and DELETE handlers; validation, admission and optimistic concurrency."""

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

    def _create(self, target: Target, req: Request) -> Response:
        obj = self._decode_object(req, target.rtype)
        return self._create_object(target, obj, req)

    def _create_object(self, target: Target, obj: dict[str, Any], req: Request) -> Response:
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

    def _replace(self, target: Target, req: Request) -> Response:
        obj = self._decode_object(req, target.rtype)
        with self.store.lock:
            self.controller.reconcile()
            current = self._current(target)
            return self._update(target, current, obj, req)

    def _current(self, target: Target) -> dict[str, Any]:
        assert target.name is not None
        current = self.store.get(target.rtype, target.namespace or "", target.name)
        if current is None:
            raise errors.not_found(target.rtype, target.name)
        return current

    def _update(self, target: Target, current: dict[str, Any], obj: dict[str, Any], req: Request) -> Response:
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

    def _patch(self, target: Target, req: Request) -> Response:
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

    def _delete(self, target: Target, req: Request) -> Response:
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

    def _delete_collection(self, target: Target, req: Request) -> Response:
        rtype = target.rtype
        matches = matching(req)
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
            return json_response(200, list_body(rtype, doomed, resource_version, Request("GET", "")))
        return json_response(200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})


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
