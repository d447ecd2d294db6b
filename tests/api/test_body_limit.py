"""Bodies over MAX_CONTENT_LENGTH: 413 with the JSON error on every API mutation, a clear page in the portal."""

from __future__ import annotations

import re

from flask import Flask

from portal.services import history
from tests.web.helpers import csrf_token

LIMIT = 64 * 1024  # a small limit keeps the oversized bodies cheap to build


def _oversized() -> bytes:
    return b'{"id": "' + b"x" * LIMIT + b'"}'


def test_every_api_mutation_answers_413_with_the_error_schema(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    client = app.test_client()
    spec = client.get("/openapi.json").json
    mutations = [
        (method.upper(), re.sub(r"\{[^}]+\}", "some-id", path))
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(mutations) >= 15
    for method, path in mutations:
        response = client.open(path, method=method, data=_oversized(), content_type="application/json")
        assert response.status_code == 413, (method, path, response.status_code)
        assert response.json == {
            "error": "the request body is too large: at most 64 KiB is accepted",
            "code": "payload_too_large",
            "details": {"maxBytes": LIMIT},
        }, (method, path)
        documented = spec["paths"][
            next(p for p in spec["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", p), path))
        ]
        assert documented[method.lower()]["responses"]["413"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert history.query_events()[1] == 0  # nothing was done


def test_the_default_limit_is_8_mib(app: Flask) -> None:
    response = app.test_client().post(
        "/models/deactivate", data=b"x" * (8 * 1024 * 1024 + 1), content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json["error"] == "the request body is too large: at most 8 MiB is accepted"


def test_portal_form_over_the_limit_gets_a_clear_page(app: Flask) -> None:
    app.config["MAX_CONTENT_LENGTH"] = LIMIT
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/ui/weights/install", data={"csrf_token": token, "hfModelId": "a/" + "b" * LIMIT})
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "413" in page and "the request body is too large" in page
    assert "<html" in page and "Back to the portal" in page
