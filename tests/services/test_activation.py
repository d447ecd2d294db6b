"""Activation service details against the dev cluster: dry-run warnings and refusals, status parsing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from flask import Flask
from urllib3 import HTTPHeaderDict

from portal.errors import InvalidInput
from portal.services import activation
from portal.services.catalog import get_catalog
from portal.services.manifests import render_inference_service


def _manifest(app: Flask) -> dict[str, Any]:
    return render_inference_service(get_catalog().get_entry("tiny-gpt2-test"), app.config["SETTINGS"])


def test_unknown_field_is_pruned_with_a_warning(cluster_app: Flask) -> None:
    manifest = _manifest(cluster_app)
    manifest["spec"]["predictor"]["model"]["storage"] = {"key": "k", "colour": "blue"}
    result = activation.dry_run_manifest(manifest)
    assert result["action"] == "create"
    assert any("colour" in warning for warning in result["warnings"]), result["warnings"]


def test_schema_violation_surfaces_the_causes(cluster_app: Flask) -> None:
    manifest = _manifest(cluster_app)
    manifest["spec"]["predictor"]["minReplicas"] = "one"
    with pytest.raises(InvalidInput) as caught:
        activation.dry_run_manifest(manifest)
    assert caught.value.status == 422 and caught.value.code == "manifest_invalid"
    fields = [cause["field"] for cause in caught.value.details["causes"]]
    assert any("minReplicas" in field for field in fields), caught.value.details


def test_dry_run_of_an_existing_object_is_an_update(cluster_app: Flask) -> None:
    manifest = _manifest(cluster_app)
    activation.activate("tiny-gpt2-test", actor="tester")
    changed = copy.deepcopy(manifest)
    changed["spec"]["predictor"]["model"]["storage"] = {"key": "k", "bogus": "x"}
    result = activation.dry_run_manifest(changed)
    assert result["action"] == "update" and any("bogus" in w for w in result["warnings"])


def test_parse_warnings() -> None:
    headers = HTTPHeaderDict()
    headers.add("Warning", '299 - "unknown field \\"spec.x\\""')
    headers.add("Warning", '299 - "second, with a comma"')
    assert activation.parse_warnings(headers) == ['unknown field "spec.x"', "second, with a comma"]
    assert activation.parse_warnings({"Warning": "plain text"}) == ["plain text"]
    assert activation.parse_warnings(None) == []


def test_describe_ignores_the_status_of_an_older_generation() -> None:
    obj = {
        "metadata": {"generation": 2},
        "status": {"observedGeneration": 1, "url": "http://x", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    described = activation.describe(obj)
    assert described["ready"] == "Unknown" and described["phase"] == "pending" and described["url"] is None
    obj["status"]["observedGeneration"] = 2
    assert activation.describe(obj)["phase"] == "ready"
    failing = {
        "metadata": {"generation": 1},
        "status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}],
        },
    }
    assert activation.describe(failing) == {
        "ready": "False",
        "reason": "Unschedulable",
        "message": "0/2 nodes",
        "url": None,
        "phase": "failed",
    }
