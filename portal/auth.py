"""Who is acting, and whether they may: API token, signed-in portal session, trusted proxy header."""

from __future__ import annotations

import hmac

from flask import Flask, g, request, session

from portal.config import Settings
from portal.extensions import current_settings

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANONYMOUS = "anonymous"
API_TOKEN_ACTOR = "api-token"


def settings() -> Settings:
    """The app's Settings."""
    return current_settings()


def presented_token() -> str:
    """The token a request presents: `Authorization: Bearer …` or `X-API-Key`."""
    header = request.headers.get("Authorization", "").strip()
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key", "").strip()


def token_matches(candidate: str, expected: str) -> bool:
    """Constant-time comparison of a presented token with the configured one."""
    if not candidate or not expected:
        return False
    return hmac.compare_digest(candidate.encode(), expected.encode())


def proxy_user() -> str | None:
    """The user named by the trusted proxy header, when configured and present."""
    header = settings().auth_proxy_user_header
    if not header:
        return None
    value = request.headers.get(header, "").strip()
    return value[:256] or None


def resolve_actor() -> str:
    """Work out the acting user once per request and remember it on `g`."""
    config = settings()
    if config.auth_enabled and token_matches(presented_token(), config.model_manager_api_token):
        return API_TOKEN_ACTOR
    user = proxy_user()
    if user:
        return user
    signed_in = session.get("user")
    if isinstance(signed_in, str) and signed_in:
        return signed_in
    return ANONYMOUS


def current_actor() -> str:
    """The acting user of this request (`api-token`, a proxy user, a signed-in name or `anonymous`)."""
    actor = g.get("actor")
    if actor is None:
        actor = resolve_actor()
        g.actor = actor
    return str(actor)


def api_request_allowed() -> bool:
    """True when this API request may proceed (reads are open; mutations need the token when set)."""
    config = settings()
    if not config.auth_enabled or request.method not in MUTATING_METHODS:
        return True
    return token_matches(presented_token(), config.model_manager_api_token)


def portal_user_allowed() -> bool:
    """True when a portal mutation (or /rq) may proceed: auth off, signed in, proxy user, or token."""
    config = settings()
    if not config.auth_enabled:
        return True
    if token_matches(presented_token(), config.model_manager_api_token):
        return True
    if proxy_user():
        return True
    return bool(session.get("user"))


def sign_in(token: str) -> bool:
    """Start a portal session when the pasted token is right."""
    config = settings()
    if not token_matches(token.strip(), config.model_manager_api_token):
        return False
    session.clear()
    session["user"] = "operator"
    session.permanent = True
    return True


def sign_out() -> None:
    """End the portal session."""
    session.clear()


def init_app(app: Flask) -> None:
    """Nothing to register yet; kept for symmetry with the other modules."""
    app.extensions["auth"] = True
