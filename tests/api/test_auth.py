"""Auth: every mutating route in the OpenAPI document needs the token when one is set."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask

from portal.auth import MUTATING_METHODS

TOKEN = "test-token-0123456789"


def mutating_operations(app: Flask) -> list[tuple[str, str]]:
    """(method, concrete path) for every mutating operation the OpenAPI document lists."""
    spec = app.test_client().get("/openapi.json").json
    operations = []
    for template, methods in spec["paths"].items():
        path = re.sub(r"\{[^}]+\}", "x", template)
        for method in methods:
            if method.upper() in MUTATING_METHODS:
                operations.append((method.upper(), path))
    return operations


def test_every_mutating_route_needs_the_token(make_app: Callable[..., Flask]) -> None:
    app = make_app(MODEL_MANAGER_API_TOKEN=TOKEN)
    client = app.test_client()
    operations = mutating_operations(app)
    assert len(operations) >= 4, operations
    for method, path in operations:
        response = client.open(path, method=method, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.json["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = client.open(path, method=method, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, (method, path)
        for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"X-API-Key": TOKEN}):
            allowed = client.open(path, method=method, json={}, headers=headers)
            assert allowed.status_code != 401, (method, path, allowed.get_json())


def test_reads_stay_open_with_a_token(make_app: Callable[..., Flask]) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN=TOKEN).test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/jobs").status_code == 200


def test_without_a_token_mutations_are_open_and_info_says_so(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/system/info").json["auth"]["enabled"] is False
    assert client.post("/jobs/noop", json={}).status_code == 202


def test_actor_is_recorded_on_jobs(make_app: Callable[..., Flask]) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN=TOKEN).test_client()
    job = client.post("/jobs/noop", json={}, headers={"Authorization": f"Bearer {TOKEN}"}).json["job"]
    assert job["actor"] == "api-token"


@pytest.mark.parametrize("path", ["/rq/", "/rq/0/data/queues.json"])
def test_rq_dashboard_is_behind_the_same_auth(make_app: Callable[..., Flask], path: str) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN=TOKEN).test_client()
    response = client.get(path)
    assert response.status_code == 302 and "/ui/sign-in" in response.headers["Location"]
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
