"""InferenceService CRUD through CustomObjectsApi: the contract the product relies on."""

from __future__ import annotations

import copy

import pytest
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from tests.devcluster.conftest import GROUP, PLURAL, REALISTIC_ISVC, VERSION, isvc, status_of


def create(custom: CustomObjectsApi, body: dict, **kwargs: object) -> dict:
    return custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, body, **kwargs)


def get(custom: CustomObjectsApi, name: str = "active-llm") -> dict:
    return custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, name)


def test_create_get_list_round_trip(custom: CustomObjectsApi) -> None:
    created = create(custom, REALISTIC_ISVC)
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert created["spec"] == REALISTIC_ISVC["spec"]
    fetched = get(custom)
    assert fetched["metadata"]["uid"] == meta["uid"]
    assert fetched["spec"] == REALISTIC_ISVC["spec"]
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL)
    assert listed["kind"] == "InferenceServiceList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["active-llm"]
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [i["metadata"]["namespace"] for i in everywhere["items"]] == ["ai"]
    assert custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"] == []


def test_resource_version_is_monotonic_and_cluster_wide(custom: CustomObjectsApi) -> None:
    first = create(custom, isvc("one", nodeSelector={"kubernetes.io/hostname": "nowhere"}))
    second = create(custom, isvc("two", nodeSelector={"kubernetes.io/hostname": "nowhere"}))
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL)
    assert int(listed["metadata"]["resourceVersion"]) >= int(second["metadata"]["resourceVersion"])


def test_list_with_label_selector(custom: CustomObjectsApi) -> None:
    labelled = isvc("labelled")
    labelled["metadata"]["labels"] = {"model-manager/managed": "true"}
    create(custom, labelled)
    create(custom, isvc("plain"))
    names = lambda sel: [  # noqa: E731
        i["metadata"]["name"]
        for i in custom.list_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, label_selector=sel)["items"]
    ]
    assert names("model-manager/managed=true") == ["labelled"]
    assert names("model-manager/managed!=true") == ["plain"]
    assert names("!model-manager/managed") == ["plain"]


def test_get_missing_is_404_not_found(custom: CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        get(custom, "active-llm")
    assert err.value.status == 404
    body = status_of(err.value)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'inferenceservices.serving.kserve.io "active-llm" not found',
        "reason": "NotFound",
        "details": {"name": "active-llm", "group": "serving.kserve.io", "kind": "inferenceservices"},
        "code": 404,
    }


def test_create_twice_is_409_already_exists(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    with pytest.raises(ApiException) as err:
        create(custom, REALISTIC_ISVC)
    assert err.value.status == 409
    body = status_of(err.value)
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'inferenceservices.serving.kserve.io "active-llm" already exists'


def test_replace_bumps_generation_only_on_spec_change(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    current = get(custom)
    current["metadata"].setdefault("labels", {})["team"] = "ml"
    relabelled = custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", current)
    assert relabelled["metadata"]["generation"] == 1
    assert relabelled["metadata"]["labels"] == {"team": "ml"}
    relabelled["spec"]["predictor"]["model"]["args"] = ["--dtype", "bfloat16"]
    replaced = custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", relabelled)
    assert replaced["metadata"]["generation"] == 2
    assert int(replaced["metadata"]["resourceVersion"]) > int(relabelled["metadata"]["resourceVersion"])
    assert get(custom)["spec"]["predictor"]["model"]["args"] == ["--dtype", "bfloat16"]


def test_replace_with_stale_resource_version_is_409_conflict(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    stale = get(custom)
    fresh = copy.deepcopy(stale)
    fresh["spec"]["predictor"]["minReplicas"] = 1
    fresh["metadata"]["annotations"]["touched"] = "yes"
    custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", fresh)
    stale["spec"]["predictor"]["model"]["args"] = []
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", stale)
    assert err.value.status == 409
    body = status_of(err.value)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on inferenceservices.serving.kserve.io "active-llm": '
        "the object has been modified; please apply your changes to the latest version and try again"
    )


def test_replace_without_resource_version_is_invalid(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", REALISTIC_ISVC)
    assert err.value.status == 422
    assert status_of(err.value)["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_replace_missing_is_404(custom: CustomObjectsApi) -> None:
    body = isvc()
    body["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", body)
    assert err.value.status == 404


def test_merge_patch(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ai", PLURAL, "active-llm",
        {"metadata": {"annotations": {"model-manager/model-id": "other"}}, "spec": {"predictor": {"minReplicas": None}}},
    )  # fmt: skip
    assert patched["metadata"]["annotations"]["model-manager/model-id"] == "other"
    assert "minReplicas" not in patched["spec"]["predictor"]
    assert patched["metadata"]["generation"] == 2
    assert patched["spec"]["predictor"]["model"] == REALISTIC_ISVC["spec"]["predictor"]["model"]


def test_json_patch(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    ops = [
        {"op": "test", "path": "/spec/predictor/minReplicas", "value": 1},
        {"op": "replace", "path": "/spec/predictor/model/args/3", "value": "bfloat16"},
        {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
    ]
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ai", PLURAL, "active-llm", ops, _content_type="application/json-patch+json"
    )
    assert patched["spec"]["predictor"]["model"]["args"][3] == "bfloat16"
    assert patched["metadata"]["labels"] == {"a": "b"}
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "ai", PLURAL, "active-llm",
            [{"op": "test", "path": "/spec/predictor/minReplicas", "value": 5}],
            _content_type="application/json-patch+json",
        )  # fmt: skip
    assert err.value.status == 422


def test_patch_with_stale_resource_version_conflicts(custom: CustomObjectsApi) -> None:
    created = create(custom, REALISTIC_ISVC)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ai", PLURAL, "active-llm", {"metadata": {"labels": {"x": "1"}}}
    )
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "ai", PLURAL, "active-llm",
            {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"], "labels": {"x": "2"}}},
        )  # fmt: skip
    assert err.value.status == 409


def test_strategic_merge_patch_is_unsupported_for_custom_resources(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            "ai",
            PLURAL,
            "active-llm",
            {"spec": {}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415


def test_patch_missing_is_404(custom: CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, "ai", PLURAL, "ghost", {"metadata": {"labels": {"a": "b"}}}
        )
    assert err.value.status == 404


def test_server_side_apply_creates_then_updates(custom: CustomObjectsApi) -> None:
    kwargs = {"field_manager": "model-manager", "force": True, "_content_type": "application/apply-patch+yaml"}
    _, status, _ = custom.patch_namespaced_custom_object_with_http_info(
        GROUP, VERSION, "ai", PLURAL, "active-llm", REALISTIC_ISVC, **kwargs
    )
    # Like the real API server: 201 when the apply created the object (the client only decodes 200).
    assert status == 201
    assert get(custom)["metadata"]["generation"] == 1
    changed = isvc(minReplicas=2)
    updated = custom.patch_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", changed, **kwargs)
    assert updated["spec"]["predictor"]["minReplicas"] == 2
    assert updated["metadata"]["generation"] == 2


def test_delete_returns_the_object_and_removes_it(custom: CustomObjectsApi) -> None:
    create(custom, REALISTIC_ISVC)
    deleted = custom.delete_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")
    assert deleted["kind"] == "InferenceService"
    assert deleted["metadata"]["name"] == "active-llm"
    with pytest.raises(ApiException) as err:
        get(custom)
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        custom.delete_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")
    assert err.value.status == 404
    assert status_of(err.value)["details"]["name"] == "active-llm"


def test_dry_run_stores_nothing(custom: CustomObjectsApi) -> None:
    would_be = create(custom, REALISTIC_ISVC, dry_run="All")
    assert would_be["metadata"]["name"] == "active-llm"
    assert would_be["spec"] == REALISTIC_ISVC["spec"]
    with pytest.raises(ApiException):
        get(custom)
    create(custom, REALISTIC_ISVC)
    before = get(custom)
    changed = copy.deepcopy(before)
    changed["spec"]["predictor"]["minReplicas"] = 3
    replaced = custom.replace_namespaced_custom_object(
        GROUP, VERSION, "ai", PLURAL, "active-llm", changed, dry_run="All"
    )
    assert replaced["spec"]["predictor"]["minReplicas"] == 3
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ai", PLURAL, "active-llm", {"spec": {"predictor": {"minReplicas": 4}}}, dry_run="All"
    )
    assert patched["spec"]["predictor"]["minReplicas"] == 4
    custom.delete_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", dry_run="All")
    after = get(custom)
    assert after["spec"] == before["spec"]
    assert after["metadata"]["generation"] == 1


def test_dry_run_still_validates(custom: CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        create(custom, isvc(minReplicas="one"), dry_run="All")
    assert err.value.status == 422


def test_status_is_ignored_on_create_and_replace(custom: CustomObjectsApi) -> None:
    body = isvc(nodeSelector={"kubernetes.io/hostname": "nowhere"})
    body["status"] = {"url": "http://fake"}
    created = create(custom, body)
    assert "status" not in created
    current = get(custom)
    current["status"] = {"url": "http://fake"}
    replaced = custom.replace_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm", current)
    assert replaced["status"].get("url") != "http://fake"


def test_create_in_missing_namespace_is_404(custom: CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, "elsewhere", PLURAL, isvc() | {"metadata": {"name": "x"}}
        )
    assert err.value.status == 404
    assert status_of(err.value)["message"] == 'namespaces "elsewhere" not found'
