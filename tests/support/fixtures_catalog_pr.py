"""Fixtures for catalog pull requests and notifications: a token-guarded git server and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gitserver import GitServer
from tests.support.webhook import WebhookReceiver

__all__ = ["git_server", "webhook"]

GIT_TOKEN = "ghp_testtoken_0123456789abcdef"


@pytest.fixture
def git_server() -> Iterator[GitServer]:
    """A git smart-HTTP server that wants GIT_TOKEN, with fresh repositories per test."""
    with GitServer(token=GIT_TOKEN) as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A webhook receiver that verifies signatures made with `hook-secret`."""
    with WebhookReceiver(secret="hook-secret") as receiver:
        yield receiver
