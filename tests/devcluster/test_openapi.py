"""The OpenAPI documents the dev cluster serves (what kubectl downloads for validation and explain)."""

from __future__ import annotations

from typing import Any

import requests

from portal.devcluster import DevCluster
from portal.devcluster.openapi import definition_name
from portal.devcluster.resources import RESOURCE_TYPES


def test_v3_index_points_at_one_document_per_group_version(cluster: DevCluster) -> None:
    index = requests.get(f"{cluster.url}/openapi/v3", timeout=10).json()
    assert sorted(index["paths"]) == [
        "api/v1",
        "apis/apiextensions.k8s.io/v1",
        "apis/apps/v1",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/serving.kserve.io/v1alpha1",
        "apis/serving.kserve.io/v1beta1",
    ]
    for key, entry in index["paths"].items():
        assert entry["serverRelativeURL"].startswith(f"/openapi/v3/{key}?hash=")
        document = requests.get(cluster.url + entry["serverRelativeURL"], timeout=10).json()
        assert document["openapi"].startswith("3.")


def _kinds(schemas: dict[str, Any]) -> dict[str, str]:
    return {
        gvk["kind"]: name
        for name, schema in schemas.items()
        for gvk in schema.get("x-kubernetes-group-version-kind", [])
    }


def test_every_served_kind_has_a_schema_with_its_group_version_kind(cluster: DevCluster) -> None:
    for rtype in RESOURCE_TYPES:
        key = f"apis/{rtype.group}/{rtype.version}" if rtype.group else f"api/{rtype.version}"
        schemas = requests.get(f"{cluster.url}/openapi/v3/{key}", timeout=10).json()["components"]["schemas"]
        assert _kinds(schemas)[rtype.kind] == definition_name(rtype)


def test_inference_service_schema_comes_from_the_crd(cluster: DevCluster) -> None:
    document = requests.get(f"{cluster.url}/openapi/v3/apis/serving.kserve.io/v1beta1", timeout=10).json()
    schemas = document["components"]["schemas"]
    isvc = schemas["io.kserve.serving.v1beta1.InferenceService"]
    predictor = isvc["properties"]["spec"]["properties"]["predictor"]
    assert predictor["properties"]["minReplicas"]["type"] == "integer"
    assert isvc["properties"]["metadata"]["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas  # each document is self-contained
    patch = document["paths"]["/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"][
        "patch"
    ]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "InferenceService"
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_v2_is_json_only(cluster: DevCluster) -> None:
    protobuf = requests.get(
        f"{cluster.url}/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
        timeout=10,
    )
    assert protobuf.status_code == 406
    assert protobuf.json()["reason"] == "NotAcceptable"
    document = requests.get(f"{cluster.url}/openapi/v2", headers={"Accept": "application/json"}, timeout=10).json()
    assert document["swagger"] == "2.0"
    pod = document["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
