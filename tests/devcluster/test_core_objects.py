"""Secrets, config maps and PVCs: the writes other parts of the product make."""

from __future__ import annotations

import base64

import pytest
from kubernetes.client import CoreV1Api, CustomObjectsApi, V1ConfigMap, V1ObjectMeta, V1Secret
from kubernetes.client.exceptions import ApiException

from tests.devcluster.conftest import status_of


def test_secret_create_read_delete(core: CoreV1Api) -> None:
    created = core.create_namespaced_secret(
        "ai", V1Secret(metadata=V1ObjectMeta(name="gh-token", labels={"app": "mm"}), string_data={"token": "abc"})
    )
    assert created.metadata.uid and created.metadata.resource_version
    read = core.read_namespaced_secret("gh-token", "ai")
    assert base64.b64decode(read.data["token"]) == b"abc"
    assert read.type == "Opaque"
    assert [s.metadata.name for s in core.list_namespaced_secret("ai", label_selector="app=mm").items] == ["gh-token"]
    core.delete_namespaced_secret("gh-token", "ai")
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("gh-token", "ai")
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'secrets "gh-token" not found'


def test_secret_already_exists_and_patch(core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_secret("ai", V1Secret(metadata=V1ObjectMeta(name="hf-token"), string_data={"a": "b"}))
    assert err.value.status == 409
    assert status_of(err.value)["reason"] == "AlreadyExists"
    patched = core.patch_namespaced_secret("hf-token", "ai", {"metadata": {"labels": {"rotated": "yes"}}})
    assert patched.metadata.labels == {"rotated": "yes"}
    assert "HUGGING_FACE_HUB_TOKEN" in patched.data


def test_create_in_missing_namespace(core: CoreV1Api) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("nope", V1ConfigMap(metadata=V1ObjectMeta(name="x"), data={"a": "b"}))
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'namespaces "nope" not found'


def test_config_map_replace_and_invalid_name(core: CoreV1Api) -> None:
    cm = core.create_namespaced_config_map("ai", V1ConfigMap(metadata=V1ObjectMeta(name="catalog"), data={"a": "1"}))
    cm.data = {"a": "2"}
    assert core.replace_namespaced_config_map("catalog", "ai", cm).data == {"a": "2"}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("ai", V1ConfigMap(metadata=V1ObjectMeta(name="Bad_Name")))
    assert err.value.status == 422
    cause = status_of(err.value)["details"]["causes"][0]
    assert cause["field"] == "metadata.name"
    assert "RFC 1123 subdomain" in cause["message"]


def test_serving_runtimes(custom: CustomObjectsApi) -> None:
    runtime = custom.get_namespaced_custom_object(
        "serving.kserve.io", "v1alpha1", "ai", "servingruntimes", "vllm-runtime"
    )
    assert runtime["spec"]["containers"][0]["name"] == "kserve-container"
    listed = custom.list_cluster_custom_object("serving.kserve.io", "v1alpha1", "clusterservingruntimes")
    assert listed["kind"] == "ClusterServingRuntimeList" and listed["items"] == []
