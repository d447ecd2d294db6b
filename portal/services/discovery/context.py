"""Discovery context: GPU profiles loaded at start-up, the cached cluster inventory, the Hub client and the profiles fit is judged on."""

from __future__ import annotations

import threading
import time

from flask import Flask, current_app

from portal.config import ConfigError, Settings
from portal.extensions import current_settings
from portal.services.cluster import get_cluster
from portal.services.gpu_profiles import GpuProfile, ProfileFileError, load_profiles
from portal.services.huggingface import HubClient, current_hub
from portal.services.inventory import Inventory, read_inventory

INVENTORY_TTL = 10.0


def init_app(app: Flask) -> None:
    """Load GPU profiles at start-up; a malformed GPU_PROFILE_PATH stops the app with one line."""
    settings: Settings = app.config["SETTINGS"]
    try:
        profiles = load_profiles(settings.gpu_profile_path)
    except ProfileFileError as exc:
        raise ConfigError(f"GPU_PROFILE_PATH: {exc}") from None
    if not profiles:
        raise ConfigError(f"GPU_PROFILE_PATH: {settings.gpu_profile_path}: defines no GPU profiles")
    app.extensions["gpu_profiles"] = profiles
    app.extensions["gpu_inventory"] = _InventoryCache()


def app_profiles() -> list[GpuProfile]:
    """The GPU profiles loaded at start-up."""
    profiles = current_app.extensions.get("gpu_profiles")
    if profiles is None:  # apps built without init_app (should not happen) still answer
        profiles = load_profiles(current_settings().gpu_profile_path)
        current_app.extensions["gpu_profiles"] = profiles
    return list(profiles)


class _InventoryCache:
    """The inventory for a few seconds: every search would otherwise list nodes and pods."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: Inventory | None = None
        self.at = 0.0


def inventory(*, fresh: bool = False) -> Inventory:
    """The cluster's GPU inventory (cached for INVENTORY_TTL seconds per process)."""
    cache = current_app.extensions.setdefault("gpu_inventory", _InventoryCache())
    assert isinstance(cache, _InventoryCache)
    with cache.lock:
        if not fresh and cache.value is not None and time.monotonic() - cache.at < INVENTORY_TTL:
            return cache.value
    value = read_inventory(get_cluster(), app_profiles())
    with cache.lock:
        cache.value, cache.at = value, time.monotonic()
    return value


def hub_client() -> HubClient:
    """A Hub client for the current app (Redis cache shared by all workers)."""
    return current_hub()


def fit_profiles(inv: Inventory | None = None) -> tuple[list[GpuProfile], set[str]]:
    """Profiles to judge fit on: those in the cluster, else all; plus the names present in the cluster."""
    profiles = app_profiles()
    inv = inv or inventory()
    present = {name.lower() for name in inv.profile_names()}
    chosen = [p for p in profiles if p.name.lower() in present]
    return (chosen or profiles), present
