"""The htmx convention: pages are always whole, each partial has an endpoint of its own, templates stay CSP-clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import Job
from portal.services import history
from tests.support.hub import HubServer
from tests.web.helpers import csrf_token

ROOT = Path(__file__).resolve().parents[2]
HTMX_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true", "HX-Target": "timeline"}


@pytest.mark.parametrize(
    "path", ["/ui/", "/ui/history?event=x", "/ui/jobs?status=failed", "/ui/catalog?q=a", "/ui/weights"]
)
def test_pages_ignore_htmx_headers_and_answer_whole_pages(client: FlaskClient, path: str) -> None:
    html = client.get(path, headers=HTMX_RESTORE).get_data(as_text=True)
    assert html.startswith("<!doctype html>") and 'id="header_active"' in html and "</html>" in html


def test_history_timeline_partial_pushes_the_page_url(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        history.record("model_activated", actor="alice", model_id="m1")
        history.record("weights_deleted", actor="bob", model_id="m2")
    response = client.get("/ui/history/timeline?event=model_activated&modelId=&since=", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.startswith('<div id="timeline">')
    assert "model_activated" in body and "weights_deleted" not in body
    assert response.headers["HX-Push-Url"] == "/ui/history?event=model_activated", (
        "the page's URL, empty filters dropped"
    )
    bad = client.get("/ui/history/timeline?since=yesterday-ish").get_data(as_text=True)
    assert 'role="alert"' in bad and "since" in bad


def test_job_table_partial_replaces_the_url_and_links_pages_to_the_page(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        for n in range(27):
            db.session.add(Job(type="noop", status="failed", actor="t", target=f"t{n}", message="m"))
        db.session.commit()
    response = client.get("/ui/jobs/table?status=failed", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.startswith('<div id="job_table"') and "<html" not in body
    assert response.headers["HX-Replace-Url"] == "/ui/jobs?status=failed"
    assert 'href="/ui/jobs?status=failed&amp;page=2"' in body, "pagination goes to the page, not the partial"
    page = client.get("/ui/jobs").get_data(as_text=True)
    assert 'hx-get="/ui/jobs/table"' in page and 'hx-sync="this:replace"' in page and "onchange" not in page


def test_weights_page_prefills_the_install_form_from_the_query(client: FlaskClient) -> None:
    html = client.get("/ui/weights?hfModelId=acme/tiny-chat&revision=v1").get_data(as_text=True)
    assert 'id="hfModelId" name="hfModelId"' in html and 'value="acme/tiny-chat"' in html and 'value="v1"' in html


def test_install_form_is_loaded_through_the_install_schema(install_app: Flask, hub: HubServer) -> None:
    client = install_app.test_client()
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token(client)}
    empty = client.post("/ui/weights/install", data={"hfModelId": " "}, headers=headers)
    assert empty.status_code == 422 and "Enter a Hugging Face model id" in empty.get_data(as_text=True)
    too_long = client.post("/ui/weights/install", data={"hfModelId": "a/b", "revision": "r" * 201}, headers=headers)
    html = too_long.get_data(as_text=True)
    assert too_long.status_code == 422 and 'id="revision-error"' in html and 'value="a/b"' in html
    assert db.session.query(Job).count() == 0
    plain = client.post("/ui/weights/install", data={"hfModelId": ""}, headers={"X-CSRFToken": headers["X-CSRFToken"]})
    assert plain.status_code == 422 and "<html" in plain.get_data(as_text=True), "without htmx: the whole page"


def test_templates_have_no_inline_code_styles_or_hard_coded_portal_urls() -> None:
    offenders = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern in (
            r"\son[a-z]+\s*=",
            r"\sstyle\s*=",
            r"<script(?![^>]*\ssrc=)",
            r'(href|hx-get|hx-post|action)="/',
        ):
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert offenders == []
