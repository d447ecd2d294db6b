"""Security headers: a Content-Security-Policy without 'unsafe-inline' on every HTML page, and friends.

The portal's own pages and Swagger UI load scripts and styles only from /static (no inline handlers,
no inline `style=`, htmx told not to inject its indicator styles), so the policy can forbid inline code:
an injected `<script>` or `onerror=` does not run. Swagger UI needs inline styles (not scripts), and
the RQ dashboard at /rq is a third-party page built on inline scripts and client-side templates, so
each gets a policy of its own that still forbids framing and outside origins.
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Swagger UI (/docs) sets inline styles from its React components; its scripts stay 'self' only.
SWAGGER_UI_POLICY = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
RQ_DASHBOARD_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
REFERRER_POLICY = "same-origin"


def add_security_headers(response: Response) -> Response:
    """nosniff on everything; CSP, frame and referrer policies on HTML responses."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        policy = CONTENT_SECURITY_POLICY
        if request.path == "/docs":
            policy = SWAGGER_UI_POLICY
        elif request.path.startswith("/rq"):
            policy = RQ_DASHBOARD_POLICY
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", REFERRER_POLICY)
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response of the app."""
    app.after_request(add_security_headers)
