"""Pytest fixtures for the local Hub; import them in a conftest (`from tests.support.fixtures_hub import *`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import HfApi, constants

from tests.support.hub import HubServer

__all__ = ["hf_cache", "hub", "hub_api", "hub_server"]


@pytest.fixture(scope="session")
def hub_server() -> Iterator[HubServer]:
    """One local Hub per test session (per xdist worker); use `hub` in tests, which resets it."""
    with HubServer() as server:
        yield server


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Private huggingface_hub cache and no ambient token, so tests never touch ~/.cache or a real login."""
    home = tmp_path / "hf-home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # huggingface_hub reads these paths into module constants at import time; point them here too.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    return cache


@pytest.fixture
def hub(hub_server: HubServer, hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    """The session's local Hub, emptied, with knobs reset and `HF_ENDPOINT` set to its URL."""
    hub_server.reset()
    monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
    yield hub_server
    hub_server.reset()


@pytest.fixture
def hub_api(hub: HubServer) -> HfApi:
    """An anonymous `HfApi` pointed at the local Hub."""
    return HfApi(endpoint=hub.url)
