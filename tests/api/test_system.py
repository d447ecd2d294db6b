"""Health, system info, metrics, docs, errors and request ids."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.fixtures_redis import PrivateRedis


def test_healthz_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_healthz_names_redis_when_it_stops(make_app: Callable[..., Flask], private_redis: PrivateRedis) -> None:
    app = make_app(REDIS_URL=private_redis.url)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    private_redis.stop()
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert response.json["checks"]["database"] == "ok"
    assert response.json["checks"]["redis"].startswith("error")
    assert "redis" in response.json["message"]


def test_system_info_has_no_secrets(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        MODEL_MANAGER_API_TOKEN="s3cr3t-token",
        HUGGINGFACE_API_TOKEN="hf_secret",
        GITHUB_TOKEN="gh_secret",
        SLACK_WEBHOOK_URL="https://hooks.example/T000/secretpath",
    )
    body = app.test_client().get("/system/info")
    assert body.status_code == 200
    text = body.get_data(as_text=True)
    for secret in ("s3cr3t-token", "hf_secret", "gh_secret", "secretpath", "test-secret-key"):
        assert secret not in text
    info = body.json
    assert info["auth"]["enabled"] is True
    assert info["notifications"]["slackWebhookConfigured"] is True
    assert info["persistence"]["driver"] in ("sqlite", "postgres")
    assert info["cache"] == {
        "catalogTTL": "30s",
        "huggingfaceTTL": "5m0s",
        "vllmTTL": "10m0s",
    }
    assert isinstance(info["recentJobs"], list) and isinstance(info["recentHistory"], list)


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    response = client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert set(response.json) == {"error", "code", "details"}


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.put("/healthz")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "GET" in response.json["details"]["allowed"]


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = client.post("/jobs/noop", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json["code"] == "malformed_json"
    assert response.json["error"]


def test_wrong_type_is_400_with_field_errors(client: FlaskClient) -> None:
    response = client.post("/jobs/noop", json={"sleepSeconds": "forever"})
    assert response.status_code == 400
    assert response.json["code"] == "validation_error"
    assert "sleepSeconds" in response.json["details"]["fields"]["json"]
    response = client.get("/jobs?limit=100000")
    assert response.status_code == 400 and "limit" in response.json["details"]["fields"]["query"]


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f-]{36}", generated)
    # A hostile id is replaced, not echoed.
    hostile = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f-]{36}", hostile)


def test_request_id_in_log_line(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="portal.access"):
        client.get("/healthz", headers={"X-Request-ID": "trace-me-42"})
    assert any("request_id=trace-me-42" in r.getMessage() for r in caplog.records)


def test_metrics_count_requests_by_route_template(client: FlaskClient) -> None:
    client.get("/jobs/00000000-0000-0000-0000-000000000001")
    client.get("/jobs/00000000-0000-0000-0000-000000000002")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'model_manager_http_requests_total{method="GET",path="/jobs/<job_id:job_id>",status="404"}' in text
    assert "00000000-0000-0000-0000-000000000001" not in text
    assert "model_manager_http_request_duration_seconds_bucket" in text


def test_openapi_document(client: FlaskClient) -> None:
    for path in ("/openapi", "/openapi.json"):
        spec = client.get(path).json
        assert spec["openapi"].startswith("3.")
        assert "/healthz" in spec["paths"] and "/jobs/{job_id}" in spec["paths"]
        assert spec["paths"]["/jobs/noop"]["post"]["security"] == [{"bearerAuth": []}]


def test_swagger_ui_uses_only_local_assets(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs, "the page loads its assets"
    for ref in refs:
        assert ref.startswith("/static/"), ref
        assert client.get(ref).status_code == 200, ref
    script = client.get("/static/js/docs.js").get_data(as_text=True)
    assert "/openapi.json" in script and "http" not in script.replace("/openapi.json", "")


def test_root_redirects_to_portal(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/ui/")


def test_openapi_document_is_valid_openapi_3(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    spec = client.get("/openapi.json").json
    validate(spec)
    assert len(spec["paths"]) >= 30


def test_system_info_lists_gpu_profiles(client: FlaskClient) -> None:
    profiles = client.get("/system/info").json["gpuProfiles"]
    assert {"nvidia-l4", "nvidia-h100-80gb", "amd-mi300x"} <= {p["name"] for p in profiles}
    assert "nvidia-l4" in client.get("/ui/system").get_data(as_text=True)


def test_metrics_report_the_queue_depth(client: FlaskClient) -> None:
    for _ in range(2):
        assert client.post("/jobs/noop", json={}).status_code == 202  # no worker runs: both wait in the queue
    text = client.get("/metrics").get_data(as_text=True)
    assert "model_manager_job_queue_depth 2.0" in text
