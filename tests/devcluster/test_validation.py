"""Validation against the real KServe CRD: 422 causes, pruning with warnings, Strict."""

from __future__ import annotations

import copy

import pytest
from kubernetes.client import CustomObjectsApi
from kubernetes.client.exceptions import ApiException

from portal.devcluster import validate_custom_resource, validate_inference_service
from portal.devcluster.seed import read_seed
from tests.devcluster.conftest import GROUP, PLURAL, REALISTIC_ISVC, VERSION, isvc, status_of


def test_realistic_manifest_is_valid_without_warnings() -> None:
    result = validate_inference_service(REALISTIC_ISVC)
    assert result.ok
    assert result.causes == []
    assert result.warnings == []
    assert result.pruned == REALISTIC_ISVC


def test_default_seed_runtime_is_valid() -> None:
    runtime = next(o for o in read_seed(None) if o["kind"] == "ServingRuntime")
    result = validate_custom_resource(runtime, "servingruntimes.serving.kserve.io", "v1alpha1")
    assert result.ok and result.warnings == []


def test_wrong_type_is_422_with_field_cause(custom: CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, isvc(minReplicas="one"))
    assert err.value.status == 422
    body = status_of(err.value)
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "InferenceService"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "string": spec.predictor.minReplicas in body must be of type integer: "string"',
            "field": "spec.predictor.minReplicas",
        }
    ]
    assert body["message"] == (
        'InferenceService.serving.kserve.io "active-llm" is invalid: spec.predictor.minReplicas: '
        'Invalid value: "string": spec.predictor.minReplicas in body must be of type integer: "string"'
    )


def test_missing_required_fields(custom: CustomObjectsApi) -> None:
    no_predictor = copy.deepcopy(REALISTIC_ISVC)
    no_predictor["spec"] = {}
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, no_predictor)
    assert err.value.status == 422
    assert status_of(err.value)["details"]["causes"] == [
        {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.predictor"}
    ]
    body = isvc()
    body["spec"]["predictor"]["model"]["modelFormat"] = {}
    body["spec"]["predictor"]["model"]["env"].append({"value": "nameless"})
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, body)
    fields = {c["field"]: c["reason"] for c in status_of(err.value)["details"]["causes"]}
    assert fields == {
        "spec.predictor.model.modelFormat.name": "FieldValueRequired",
        "spec.predictor.model.env[2].name": "FieldValueRequired",
    }


def test_several_errors_are_all_reported() -> None:
    body = isvc(minReplicas=-1.5, logger={"mode": "everything"})
    body["spec"]["predictor"]["model"]["resources"]["limits"]["cpu"] = "ten"
    body["spec"]["predictor"]["model"]["env"].append({"name": "HF_HOME", "value": "dup"})
    body["metadata"]["labels"] = {"model": "Qwen/Qwen2.5"}
    causes = {c["field"]: c for c in validate_inference_service(body).causes}
    assert causes["spec.predictor.minReplicas"]["message"].endswith('must be of type integer: "number"')
    assert causes["spec.predictor.logger.mode"]["reason"] == "FieldValueNotSupported"
    assert "should match" in causes["spec.predictor.model.resources.limits.cpu"]["message"]
    assert causes["spec.predictor.model.env[2]"]["reason"] == "FieldValueDuplicate"
    assert causes["metadata.labels"]["message"].startswith('Invalid value: "Qwen/Qwen2.5": a valid label')


def test_unknown_fields_are_pruned_with_warning(custom: CustomObjectsApi) -> None:
    body = isvc()
    body["spec"]["predictor"]["foo"] = "bar"
    body["spec"]["predictor"]["model"]["gpuCount"] = 1
    data, status, headers = custom.create_namespaced_custom_object_with_http_info(GROUP, VERSION, "ai", PLURAL, body)
    assert status == 201
    assert "foo" not in data["spec"]["predictor"]
    assert "gpuCount" not in data["spec"]["predictor"]["model"]
    warning = headers.get("Warning")
    assert '299 - "unknown field \\"spec.predictor.foo\\""' in warning
    assert '299 - "unknown field \\"spec.predictor.model.gpuCount\\""' in warning
    stored = custom.get_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, "active-llm")
    assert "foo" not in stored["spec"]["predictor"]


def test_ignore_field_validation_sends_no_warning(custom: CustomObjectsApi) -> None:
    body = isvc(foo="bar")
    data, _, headers = custom.create_namespaced_custom_object_with_http_info(
        GROUP, VERSION, "ai", PLURAL, body, field_validation="Ignore"
    )
    assert headers.get("Warning") is None
    assert "foo" not in data["spec"]["predictor"]


def test_strict_field_validation_rejects_unknown_fields(custom: CustomObjectsApi) -> None:
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, isvc(foo="bar"), field_validation="Strict")
    # A real API server answers 400 BadRequest here (strict decoding happens before validation).
    assert err.value.status == 400
    assert status_of(err.value)["message"] == (
        'InferenceService in version "v1beta1" cannot be handled as a InferenceService: '
        'strict decoding error: unknown field "spec.predictor.foo"'
    )
    assert validate_inference_service(isvc(foo="bar"), strict=True).causes == [
        {"reason": "FieldValueInvalid", "message": "unknown field", "field": "spec.predictor.foo"}
    ]


def test_preserve_unknown_fields_keeps_status_extras() -> None:
    body = isvc()
    body["status"] = {"url": "http://x", "somethingNew": {"a": 1}}
    result = validate_inference_service(body)
    assert result.warnings == []
    assert result.pruned["status"]["somethingNew"] == {"a": 1}


def test_int_or_string_quantities_and_defaults() -> None:
    body = isvc()
    body["spec"]["predictor"]["model"]["resources"]["limits"]["amd.com/gpu"] = 1
    body["spec"]["predictor"]["model"]["ports"] = [{"containerPort": 8080}]
    result = validate_inference_service(body)
    assert result.ok, result.causes
    assert result.pruned["spec"]["predictor"]["model"]["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    body["spec"]["predictor"]["model"]["resources"]["limits"]["amd.com/gpu"] = True
    assert not validate_inference_service(body).ok


def test_kserve_webhook_rejects_names_and_empty_predictors(custom: CustomObjectsApi) -> None:
    dotted = isvc("qwen2.5-1.5b")
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, dotted)
    assert err.value.status == 403
    assert "must start with alphabetical character" in status_of(err.value)["message"]
    empty = copy.deepcopy(REALISTIC_ISVC)
    empty["spec"]["predictor"] = {"minReplicas": 1}
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ai", PLURAL, empty)
    assert err.value.status == 403
    assert "exactly one of" in status_of(err.value)["message"]
