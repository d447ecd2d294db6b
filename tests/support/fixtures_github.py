"""Pytest fixture for the local GitHub API stub."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.github import GitHubStub

__all__ = ["github"]


@pytest.fixture
def github() -> Iterator[GitHubStub]:
    """A fresh GitHub API stub on a free loopback port."""
    with GitHubStub() as stub:
        yield stub
