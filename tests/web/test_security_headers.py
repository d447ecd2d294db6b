"""Every HTML response of the portal carries the security headers; the policy forbids inline code."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from portal.security_headers import CONTENT_SECURITY_POLICY


def _html_paths(app: Flask) -> list[str]:
    """Every GET route under /ui plus /docs, path arguments filled with a placeholder (404 pages count too)."""
    paths = {"/docs", "/ui/no-such-page"}
    for rule in app.url_map.iter_rules():
        if "GET" in (rule.methods or set()) and rule.rule.startswith("/ui"):
            paths.add(re.sub(r"<[^>]+>", "x", rule.rule))
    return sorted(paths)


def test_every_portal_page_and_partial_answers_with_the_security_headers(app: Flask, client: FlaskClient) -> None:
    paths = _html_paths(app)
    assert len(paths) > 20 and "/ui/history/timeline" in paths
    for path in paths:
        response = client.get(path)
        if response.status_code in (301, 302, 308):
            continue
        assert response.mimetype == "text/html", path
        csp = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp, path
        assert "unsafe-inline" not in csp or path == "/docs", path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path


def test_the_policy_allows_only_our_own_scripts_and_styles() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_swagger_ui_may_style_inline_but_not_script(client: FlaskClient) -> None:
    csp = client.get("/docs").headers["Content-Security-Policy"]
    assert "style-src 'self' 'unsafe-inline'" in csp and "script-src 'self';" in csp


def test_json_answers_are_nosniff_and_the_favicon_exists(client: FlaskClient) -> None:
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
