"""schemathesis hooks for the contract tests (loaded through SCHEMATHESIS_HOOKS).

`POST /models/test` GETs its `readinessUrl`: generated URLs would send requests to arbitrary hosts.
Every URL of the documented form is pointed at a closed loopback port before the call (still of that form,
so the case keeps its meaning); URLs not of that form are refused by the API before any request.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

from portal.schemas.runtime import READINESS_URL_PATTERN

_HOST = re.compile(r"^(https?://)[^/?#]+")
LOOPBACK = "127.0.0.1:9"  # the discard port: nothing listens there, the probe fails at once


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Keep readiness probes on loopback."""
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("readinessUrl"), str):
        url = body["readinessUrl"]
        if re.match(READINESS_URL_PATTERN, url):
            body["readinessUrl"] = _HOST.sub(lambda m: m.group(1) + LOOPBACK, url, count=1)


MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@schemathesis.check
def mutation_needs_the_token(ctx: Any, response: Any, case: Any) -> bool | None:
    """With EXPECT_TOKEN_REFUSAL=1 (the run without the token): every mutating call is answered 401."""
    import os

    if os.environ.get("EXPECT_TOKEN_REFUSAL") != "1" or case.method.upper() not in MUTATING:
        return None
    if response.status_code != 401:
        raise AssertionError(f"{case.method} {case.path} answered {response.status_code} without the token, not 401")
    challenge = " ".join(
        " ".join(values) if isinstance(values, list) else str(values)
        for name, values in response.headers.items()
        if name.lower() == "www-authenticate"
    )
    if "Bearer" not in challenge:
        raise AssertionError(f"a 401 names the Bearer scheme in WWW-Authenticate, got {challenge!r}")
    return True
