"""The session-wide secret scan finds a secret in a log line and in a response, and never prints it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from tests.support import fixtures_secrets

CANARY = "ghp_canary_token_5e1f0c77"


@pytest.fixture
def new_leaks() -> Iterator[list[str]]:
    """The leaks recorded during the test; taken back afterwards so these deliberate ones do not fail the run."""
    before = len(fixtures_secrets._leaks)
    found: list[str] = []
    yield found
    found.extend(fixtures_secrets._leaks[before:])
    del fixtures_secrets._leaks[before:]


def test_a_secret_in_a_log_line_is_a_leak(new_leaks: list[str]) -> None:
    fixtures_secrets.register_secrets({"GITHUB_TOKEN": CANARY})
    logging.getLogger("portal.services.example").info("pushing with token %s", CANARY)
    leaks = list(fixtures_secrets._leaks[-1:])
    assert leaks and leaks[0].startswith("GITHUB_TOKEN in log record of portal.services.example")
    assert CANARY not in leaks[0] and "<GITHUB_TOKEN>" in leaks[0]


def test_a_secret_in_a_response_is_a_leak(make_app: Callable[..., Flask], new_leaks: list[str]) -> None:
    app = make_app(GITHUB_TOKEN=CANARY)

    @app.get("/leaky")
    def leaky() -> dict[str, str]:
        return {"token": app.config["SETTINGS"].github_token}

    before = len(fixtures_secrets._leaks)
    assert app.test_client().get("/leaky").status_code == 200
    leaks = fixtures_secrets._leaks[before:]
    assert leaks and leaks[0].startswith("GITHUB_TOKEN in response body (200 OK)")
    assert app.test_client().get("/system/info").status_code == 200
    assert len(fixtures_secrets._leaks) == before + 1  # the real endpoints show no secret
