"""The portal's htmx convention in one place: htmx context and HX-* headers go through htmx-flask.

Pages never look at htmx headers: every partial has an endpoint of its own, so first loads and
history restores always get whole pages. Only mutations (form posts) ask `is_htmx()`, to answer
htmx with the partial and a plain form post (no JavaScript) with a redirect.
"""

from __future__ import annotations

import htmx_flask
from flask import Response

# htmx stops polling an element when a poll answers 286 (and still swaps the final content in).
STOP_POLLING = 286


def is_htmx() -> bool:
    """True when htmx sent the request (HX-Request, read through htmx-flask's `request.htmx`)."""
    return bool(htmx_flask.request.htmx)


def partial_response(
    html: str,
    status: int = 200,
    *,
    trigger: str | None = None,
    push_url: str | None = None,
    replace_url: str | None = None,
) -> Response:
    """A partial with htmx response headers (`HX-Trigger` events, `HX-Push-Url`/`HX-Replace-Url`) set by htmx-flask."""
    response: Response = htmx_flask.make_response(
        html, status, trigger=trigger, push_url=push_url, replace_url=replace_url
    )
    return response
