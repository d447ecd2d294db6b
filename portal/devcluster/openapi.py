"""The dev cluster's OpenAPI documents, so that kubectl validates, explains and patches as usual.

- `/openapi/v3` lists one document per group-version (`api/v1`, `apis/serving.kserve.io/v1beta1`,
  ...) with a content hash in its `serverRelativeURL`, as kube-apiserver does; each document is
  self-contained (OpenAPI 3.0: paths plus `components.schemas`).
- `/openapi/v2` is the same content as one Swagger 2.0 document. kubectl asks for protobuf first;
  the dev cluster speaks JSON only and answers 406 to a request that does not accept JSON, which
  sends kubectl to the v3 documents.

Schemas: the custom resources' come from the bundled CRDs (`metadata` replaced by a reference to
ObjectMeta, as the API server publishes them); the core types' are derived from the official
client's models (generated from Kubernetes' own OpenAPI), renamed to Kubernetes' definition names
(`io.k8s.api.core.v1.Pod`). Each served kind carries `x-kubernetes-group-version-kind`, and each
operation `x-kubernetes-action` plus the query parameters the dev cluster honours (`dryRun`,
`fieldManager`, `fieldValidation`), which tells kubectl it may leave validation to the server.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from typing import Any

import kubernetes.client

from portal.devcluster.resources import RESOURCE_TYPES, ResourceType
from portal.devcluster.schema import crd_schema

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1."
_META_TYPES = {"ObjectMeta", "ManagedFieldsEntry", "OwnerReference", "ListMeta", "Status", "StatusDetails",
               "StatusCause", "LabelSelector", "LabelSelectorRequirement", "DeleteOptions", "Preconditions",
               "Condition"}  # fmt: skip
_EXTENSIONS = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_QUANTITY_MAPS = {"limits", "requests", "allocatable", "capacity"}
_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")
_DOCSTRING_TAIL = re.compile(r"\n\nAttributes:.*", re.DOTALL)
_QUANTITY_SCHEMA = {
    "description": "Quantity is a fixed-point representation of a number (`1`, `500m`, `16Gi`).",
    "type": "string",
}


def definition_name(rtype: ResourceType) -> str:
    """Kubernetes' name for a kind's schema: `io.k8s.api.core.v1.Pod`, `io.kserve.serving.v1beta1.…`."""
    if rtype.is_custom:
        reversed_group = ".".join(reversed(rtype.group.split(".")))
        return f"{reversed_group}.{rtype.version}.{rtype.kind}"
    if rtype.group == "apiextensions.k8s.io":
        return _EXTENSIONS + rtype.kind
    package = rtype.group.split(".")[0] or "core"
    return f"io.k8s.api.{package}.{rtype.version}.{rtype.kind}"


def _model_definition_name(model: str) -> str:
    """`V1ObjectMeta` → `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, and so on."""
    bare = re.sub(r"^(CoreV1|ApiextensionsV1|RbacV1|V1)", "", model)
    if bare in _META_TYPES:
        return _META + bare
    if model.startswith("ApiextensionsV1") or bare.startswith(("CustomResource", "JSONSchemaProps", "JSON")):
        return _EXTENSIONS + bare
    if bare in ("WebhookConversion", "WebhookClientConfig", "ExternalDocumentation", "ValidationRule"):
        return _EXTENSIONS + bare
    if bare.startswith(("Deployment", "RollingUpdateDeployment")):
        return "io.k8s.api.apps.v1." + bare
    if bare in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "PolicyRule", "RoleRef", "Subject",
                "AggregationRule"):  # fmt: skip
        return "io.k8s.api.rbac.v1." + bare
    return "io.k8s.api.core.v1." + bare


def _client_model(kind: str) -> Any:
    for prefix in ("V1", "CoreV1"):
        model = getattr(kubernetes.client, f"{prefix}{kind}", None)
        if model is not None:
            return model
    raise KeyError(kind)


def _clean(node: Any, prefix: str, field: str = "") -> Any:
    """A pydantic JSON schema node rewritten the way Kubernetes publishes it."""
    if isinstance(node, list):
        return [_clean(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    options = node.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) == 1:
            del node["anyOf"]
            node = {**kept[0], **node}
    node.pop("title", None)
    if node.get("default", "") is None:
        node.pop("default")
    if node.get("additionalProperties") is False:
        node.pop("additionalProperties")
    if "description" in node:
        node["description"] = _DOCSTRING_TAIL.sub("", str(node["description"])).strip()
    if field in _QUANTITY_MAPS and node.get("additionalProperties") == {"type": "string"}:
        node["additionalProperties"] = {"$ref": prefix + _QUANTITY}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = prefix + _model_definition_name(value.rsplit("/", 1)[-1])
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _clean(child, prefix, name) for name, child in value.items()}
        else:
            out[key] = _clean(value, prefix)
    if "$ref" in out and len(out) > 1 and prefix == V3_PREFIX:
        # OpenAPI 3.0 ignores siblings of $ref; Kubernetes wraps the reference in allOf.
        out = {"allOf": [{"$ref": out.pop("$ref")}], **out}
    return out


def _gvk(rtype: ResourceType) -> list[dict[str, str]]:
    return [{"group": rtype.group, "kind": rtype.kind, "version": rtype.version}]


def _core_definitions(rtype: ResourceType, prefix: str) -> dict[str, Any]:
    raw = _client_model(rtype.kind).model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    definitions = {_model_definition_name(name): _clean(body, prefix) for name, body in raw.pop("$defs", {}).items()}
    top = _clean(raw, prefix)
    top["x-kubernetes-group-version-kind"] = _gvk(rtype)
    definitions[definition_name(rtype)] = top
    return definitions


def _custom_definition(rtype: ResourceType, prefix: str) -> dict[str, Any]:
    assert rtype.crd is not None
    schema = copy.deepcopy(crd_schema(rtype.crd, rtype.version))
    properties = schema.setdefault("properties", {})
    meta_ref = {"$ref": prefix + _META + "ObjectMeta"}
    description = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
    properties["metadata"] = (
        {"allOf": [meta_ref], "description": description}
        if prefix == V3_PREFIX
        else {**meta_ref, "description": description}
    )
    schema["x-kubernetes-group-version-kind"] = _gvk(rtype)
    return schema


def _definitions(rtypes: list[ResourceType], prefix: str) -> dict[str, Any]:
    """The schemas of `rtypes` and of everything they reference (ObjectMeta, PodSpec, ...)."""
    pool: dict[str, Any] = {_QUANTITY: dict(_QUANTITY_SCHEMA)}
    wanted: list[str] = []
    for rtype in rtypes:
        if rtype.is_custom:
            pool[definition_name(rtype)] = _custom_definition(rtype, prefix)
            pool.update({k: v for k, v in _core_definitions(_meta_carrier(), prefix).items() if k.startswith(_META)})
        else:
            pool.update(_core_definitions(rtype, prefix))
        wanted.append(definition_name(rtype))
    kept: dict[str, Any] = {}
    while wanted:
        name = wanted.pop()
        if name in kept or name not in pool:
            continue
        kept[name] = pool[name]
        wanted.extend(ref[len(prefix) :] for ref in _refs(pool[name]))
    return dict(sorted(kept.items()))


def _meta_carrier() -> ResourceType:
    """A core type whose model pulls in ObjectMeta and its parts (for custom resources' documents)."""
    return next(r for r in RESOURCE_TYPES if r.kind == "ConfigMap")


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


def _parameter(name: str, location: str, description: str, *, v3: bool, required: bool = False) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": location, "description": description, "uniqueItems": True}
    if required:
        param["required"] = True
    if v3:
        param["schema"] = {"type": "string"}
    else:
        param["type"] = "string"
    return param


def _write_parameters(v3: bool) -> list[dict[str, Any]]:
    return [
        _parameter("dryRun", "query", "When present (All), the request is validated but nothing is stored.", v3=v3),
        _parameter("fieldManager", "query", "A name for the actor making these changes.", v3=v3),
        _parameter(
            "fieldValidation",
            "query",
            "Ignore, Warn (default) or Strict: how the server treats unknown or duplicate fields.",
            v3=v3,
        ),
    ]


def _operation(
    rtype: ResourceType, action: str, ref: str, *, v3: bool, body: tuple[str, ...] = (), writes: bool = False
) -> dict[str, Any]:
    kind = rtype.kind
    operation: dict[str, Any] = {
        "description": f"{action} {kind}",
        "operationId": f"{action}{rtype.group.split('.')[0].title()}{rtype.version.title()}{kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(rtype)[0],
    }
    parameters = _write_parameters(v3) if writes else []
    ok: dict[str, Any] = {"description": "OK"}
    if v3:
        ok["content"] = {"application/json": {"schema": {"$ref": ref}}}
        if body:
            operation["requestBody"] = {"content": {t: {"schema": {"$ref": ref}} for t in body}, "required": True}
    else:
        ok["schema"] = {"$ref": ref}
        if body:
            parameters = [{"name": "body", "in": "body", "required": True, "schema": {"$ref": ref}}, *parameters]
            operation["consumes"] = list(body)
        operation["produces"] = ["application/json", "application/yaml"]
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = {"200": ok, "401": {"description": "Unauthorized"}}
    return operation


def _paths(rtype: ResourceType, prefix: str) -> dict[str, Any]:
    v3 = prefix == V3_PREFIX
    ref = prefix + definition_name(rtype)
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    scope = f"{base}/namespaces/{{namespace}}" if rtype.namespaced else base
    collection, item = f"{scope}/{rtype.plural}", f"{scope}/{rtype.plural}/{{name}}"
    verbs = set(rtype.verbs)
    path_params = [_parameter("name", "path", f"name of the {rtype.kind}", v3=v3, required=True)]
    if rtype.namespaced:
        path_params.append(_parameter("namespace", "path", "object name and auth scope", v3=v3, required=True))
    writes_json = ("application/json", "application/yaml")
    listing: dict[str, Any] = {"parameters": path_params[1:]}
    if "list" in verbs:
        listing["get"] = _operation(rtype, "list", ref, v3=v3)
    if "create" in verbs:
        listing["post"] = _operation(rtype, "post", ref, v3=v3, body=writes_json, writes=True)
    if "deletecollection" in verbs:
        listing["delete"] = _operation(rtype, "deletecollection", ref, v3=v3)
    single: dict[str, Any] = {"parameters": path_params}
    if "get" in verbs:
        single["get"] = _operation(rtype, "get", ref, v3=v3)
    if "update" in verbs:
        single["put"] = _operation(rtype, "put", ref, v3=v3, body=writes_json, writes=True)
    if "patch" in verbs:
        single["patch"] = _operation(rtype, "patch", ref, v3=v3, body=_PATCH_TYPES, writes=True)
    if "delete" in verbs:
        single["delete"] = _operation(rtype, "delete", ref, v3=v3)
    paths = {collection: listing, item: single}
    if "status" in rtype.subresources:
        paths[f"{item}/status"] = {
            "parameters": path_params,
            "get": _operation(rtype, "get", ref, v3=v3),
            "put": _operation(rtype, "put", ref, v3=v3, body=writes_json, writes=True),
            "patch": _operation(rtype, "patch", ref, v3=v3, body=_PATCH_TYPES, writes=True),
        }
    return paths


def _group_version_key(rtype: ResourceType) -> str:
    return f"apis/{rtype.group}/{rtype.version}" if rtype.group else f"api/{rtype.version}"


_INFO = {"title": "Kubernetes", "version": "v1.31.4+devcluster"}


def _serialized(rtypes: list[ResourceType], prefix: str) -> bytes:
    """One document (OpenAPI 3.0 for the v3 prefix, Swagger 2.0 otherwise) for `rtypes`."""
    paths: dict[str, Any] = {}
    for rtype in rtypes:
        paths.update(_paths(rtype, prefix))
    schemas = _definitions(rtypes, prefix)
    if prefix == V3_PREFIX:
        document = {"openapi": "3.0.0", "info": _INFO, "paths": paths, "components": {"schemas": schemas}}
    else:
        document = {"swagger": "2.0", "info": _INFO, "paths": paths, "definitions": schemas}
    return json.dumps(document, separators=(",", ":")).encode()


@functools.cache
def v3_documents() -> dict[str, bytes]:
    """Each group-version's OpenAPI 3.0 document, serialized once: `{"api/v1": b"{...}", ...}`."""
    grouped: dict[str, list[ResourceType]] = {}
    for rtype in RESOURCE_TYPES:
        grouped.setdefault(_group_version_key(rtype), []).append(rtype)
    return {key: _serialized(rtypes, V3_PREFIX) for key, rtypes in grouped.items()}


def v3_hash(key: str) -> str:
    """The content hash kube-apiserver puts in `serverRelativeURL` (clients cache by it)."""
    return hashlib.sha512(v3_documents()[key]).hexdigest().upper()


def v3_index() -> dict[str, Any]:
    """The body of `/openapi/v3`: where each group-version's document is."""
    return {
        "paths": {
            key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={v3_hash(key)}"} for key in sorted(v3_documents())
        }
    }


@functools.cache
def v2_document() -> bytes:
    """The Swagger 2.0 document of every served type (`/openapi/v2`), serialized once."""
    return _serialized(list(RESOURCE_TYPES), V2_PREFIX)


def accepts_json(accept: str) -> bool:
    """True when an `Accept` header allows a JSON answer (missing, `*/*`, `application/json`)."""
    if not accept.strip():
        return True
    media = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return any(m in ("application/json", "*/*", "application/*") for m in media)
