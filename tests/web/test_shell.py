"""Portal shell: pages render, CSRF, sign-in, banners, Vary."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.web.helpers import csrf_token

TOKEN = "portal-token-abcdef"


def test_pages_render(client: FlaskClient) -> None:
    for path in ("/ui/", "/ui/system", "/ui/jobs", "/ui/history", "/ui/sign-in"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert 'href="/ui/jobs"' in html and 'href="/ui/history"' in html and 'href="/ui/system"' in html
        assert "/static/vendor/htmx/htmx.min.js" in html
        assert "HX-Request" in response.headers["Vary"]


def test_auth_disabled_banner(client: FlaskClient) -> None:
    page = client.get("/ui/").get_data(as_text=True)
    assert "Authentication is disabled" in page
    assert "Redis is unavailable" not in page


def test_portal_post_without_csrf_is_refused(client: FlaskClient) -> None:
    response = client.post("/ui/sign-out")
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_portal_post_with_csrf_header_passes(client: FlaskClient) -> None:
    token = csrf_token(client)
    assert client.post("/ui/sign-out", headers={"X-CSRFToken": token}).status_code == 302


def test_portal_mutation_needs_sign_in_when_token_set(make_app: Callable[..., Flask]) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN=TOKEN).test_client()
    page = client.get("/ui/").get_data(as_text=True)
    assert "Authentication is disabled" not in page and "Sign in" in page
    token = csrf_token(client)
    refused = client.post("/ui/sign-out", headers={"X-CSRFToken": token, "HX-Request": "true"})
    assert refused.status_code == 401
    wrong = client.post("/ui/sign-in", data={"token": "nope", "csrf_token": token})
    assert wrong.status_code == 422 and "not right" in wrong.get_data(as_text=True)
    signed = client.post("/ui/sign-in", data={"token": TOKEN, "csrf_token": token, "next": "/ui/jobs"})
    assert signed.status_code == 302 and signed.headers["Location"] == "/ui/jobs"
    # Signing in starts a new session (no fixation), so the page hands out a new CSRF token.
    fresh = csrf_token(client)
    assert client.post("/ui/sign-out", headers={"X-CSRFToken": fresh}).status_code == 302


def test_sign_in_never_redirects_off_site(make_app: Callable[..., Flask]) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN=TOKEN).test_client()
    token = csrf_token(client)
    response = client.post("/ui/sign-in", data={"token": TOKEN, "csrf_token": token, "next": "//evil.example/"})
    assert response.headers["Location"] == "/ui/"


def test_trusted_proxy_header_names_the_actor(make_app: Callable[..., Flask]) -> None:
    client = make_app(MODEL_MANAGER_API_TOKEN=TOKEN, AUTH_PROXY_USER_HEADER="X-Forwarded-User").test_client()
    token = csrf_token(client)
    response = client.post("/ui/sign-out", headers={"X-CSRFToken": token, "X-Forwarded-User": "alice"})
    assert response.status_code == 302


def test_unknown_portal_page_is_html_404(client: FlaskClient) -> None:
    response = client.get("/ui/nowhere")
    assert response.status_code == 404
    assert response.mimetype == "text/html" and "no such page" in response.get_data(as_text=True)


def test_history_page_bad_since_shows_message(client: FlaskClient) -> None:
    response = client.get("/ui/history?since=yesterday-ish")
    assert response.status_code == 200
    assert "since must be a duration" in response.get_data(as_text=True)


def test_redis_down_banner(make_app: Callable[..., Flask]) -> None:
    client = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    page = client.get("/ui/").get_data(as_text=True)
    assert "Redis is unavailable" in page


def test_home_guides_a_new_user(client: FlaskClient) -> None:
    html = client.get("/ui/").get_data(as_text=True)
    assert "Start here" in html
    for link in ('href="/ui/discover"', 'href="/ui/weights"', 'href="/ui/catalog"', 'href="/ui/history"'):
        assert link in html, link
