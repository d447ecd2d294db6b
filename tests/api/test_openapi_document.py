"""The OpenAPI document: one error schema everywhere, the token on every mutation, routes and Allow headers agree."""

from __future__ import annotations

import pytest
from flask import Flask

MUTATING = {"post", "put", "patch", "delete"}


def test_every_error_response_of_every_operation_is_the_error_schema(app: Flask) -> None:
    spec = app.test_client().get("/openapi.json").json
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["code"]["type"] == "string" and set(error["required"]) == {"error", "code"}
    assert spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    operations = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method != "parameters"
    ]
    assert len(operations) >= 40
    for path, method, operation in operations:
        responses = operation["responses"]
        assert responses["default"] == {"$ref": "#/components/responses/DEFAULT_ERROR"}, (method, path)
        for status, response in responses.items():
            if status != "default" and int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                # /healthz keeps its documented report shape when a dependency fails (it names the failed check).
                expected = "Health" if (path, status) == ("/healthz", "503") else "Error"
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (method, path, status)
        if method in MUTATING:
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert {"401", "413"} <= set(responses), (method, path)
        if "{" in path:
            assert {"400", "404"} <= set(responses), (method, path)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/models/deactivate", {"OPTIONS", "POST"}),
        ("/models/rollback", {"OPTIONS", "POST"}),
        ("/models/test", {"OPTIONS", "POST"}),
        ("/jobs/noop", {"OPTIONS", "POST"}),
        ("/weights/install/status/abc", {"GET", "HEAD", "OPTIONS"}),
        ("/weights/usage", {"GET", "HEAD", "OPTIONS"}),
        ("/weights/acme/model/info", {"GET", "HEAD", "OPTIONS"}),
        ("/weights/acme/model", {"DELETE", "OPTIONS"}),
        ("/models/tiny-gpt2-test", {"GET", "HEAD", "OPTIONS"}),
    ],
)
def test_allow_lists_exactly_the_documented_methods(app: Flask, path: str, allowed: set[str]) -> None:
    response = app.test_client().options(path)
    assert set(response.headers["Allow"].split(", ")) == allowed


def test_fixed_routes_are_not_swallowed_by_parameters(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/jobs/noop").status_code == 405
    assert client.get("/models/deactivate").status_code == 405
    refused = client.delete("/weights/usage")
    assert refused.status_code == 405 and refused.json["details"]["allowed"] == ["GET", "HEAD", "OPTIONS"]
    assert client.delete("/weights/install/status/abc").status_code == 405
    # The parameters still reach their views.
    missing = client.delete("/weights/acme/model")
    assert missing.status_code == 404 and missing.json["code"] == "weights_not_found"
    assert client.get("/jobs/0123-abc").json["code"] == "job_not_found"
