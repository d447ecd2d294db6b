"""Validation service: every check runs and says pass / warn / fail in words, against the dev cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask

from portal.services import validation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog" / "models" / "tiny-gpt2-test.json"


def _checks(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["name"]: (c["status"], c["message"]) for c in result["checks"]}


def test_a_good_entry_passes_every_cluster_check(cluster_app: Flask) -> None:
    result = validation.validate_entry(json.loads(EXAMPLE.read_text()))
    checks = _checks(result)
    assert result["valid"] is True and result["errors"] == [] and "status" not in result
    for name in ("schema", "manifest", "storage", "secret:hf-token", "gpu-capacity", "runtime"):
        assert checks[name][0] == "pass", (name, checks[name])
    assert "venus-model-storage" in checks["storage"][1] and "vllm-runtime" in checks["runtime"][1]
    # No Hub here: what needs it is a warning that says so, and does not make the entry invalid.
    assert checks["architecture"][0] == "warn" and "unreachable" in checks["fit"][1]


def test_a_bad_entry_fails_with_the_field_and_still_runs_the_other_checks(cluster_app: Flask) -> None:
    entry = json.loads(EXAMPLE.read_text())
    entry["vllm"] = {"maxModelLen": "long"}
    entry["env"] = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "missing-secret", "key": "k"}}}]
    result = validation.validate_entry(entry)
    checks = _checks(result)
    assert result["valid"] is False and result["status"] == "warning"
    assert any("vllm.maxModelLen" in e for e in result["errors"])
    assert checks["schema"][0] == "fail" and "vllm.maxModelLen" in checks["schema"][1]
    assert checks["secret:missing-secret"] == ("fail", "secret missing-secret not found in namespace ai")
    assert checks["runtime"][0] == "pass"  # best effort: the rest of the entry is still checked


def test_without_a_cluster_the_cluster_checks_say_not_checked(app: Flask) -> None:
    result = validation.validate_entry(json.loads(EXAMPLE.read_text()), use_cluster=False)
    checks = _checks(result)
    assert result["valid"] is True
    for name in ("storage", "secret:hf-token", "gpu-capacity", "runtime"):
        assert checks[name][0] == "warn" and checks[name][1].startswith("not checked"), (name, checks[name])


def test_an_unreadable_file_fails_the_schema_check(app: Flask, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    for path in (broken, tmp_path / "missing.json"):
        result = validation.validate_file(path, use_cluster=False)
        assert result["valid"] is False
        assert result["checks"][0]["name"] == "schema" and result["checks"][0]["status"] == "fail"
        assert str(path) in result["errors"][0]


def test_preview_renders_the_manifest_even_for_a_warning(app: Flask) -> None:
    entry = json.loads(EXAMPLE.read_text())
    out = validation.preview_entry({**entry, "vllm": {"maxModelLen": 0}})
    assert out["status"] == "warning" and out["validation"]["valid"] is False
    assert out["manifest"]["kind"] == "InferenceService"
