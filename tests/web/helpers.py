"""Helpers for portal tests: CSRF tokens from rendered pages."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def csrf_token(client: FlaskClient, page: str = "/ui/") -> str:
    """The CSRF token the portal embeds in its pages."""
    html = client.get(page).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page carries a CSRF token"
    return match.group(1)
