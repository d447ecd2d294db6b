"""Fixtures for catalog and activation tests: a dev cluster per test and an app wired to it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.devcluster.cluster import DevCluster

__all__ = ["cluster_app", "cluster_catalog", "copy_example_catalog", "devcluster", "write_entry_file"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CATALOG = ROOT / "examples" / "catalog"
READY_DELAY = 0.3


def copy_example_catalog(target: Path) -> Path:
    """Copy examples/catalog to `target` (the catalog root); returns the models directory."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(EXAMPLE_CATALOG, target)
    return target / "models"


def write_entry_file(models_dir: Path, entry: dict[str, Any], name: str | None = None) -> Path:
    """Write one catalog entry file (`<id>.json` unless `name` is given)."""
    path = models_dir / (name or f"{entry['id']}.json")
    path.write_text(json.dumps(entry, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def devcluster(tmp_path: Path) -> Iterator[DevCluster]:
    """A fresh dev cluster (default seed) on a free loopback port, with `.kubeconfig` written in tmp."""
    cluster = DevCluster(ready_delay=READY_DELAY)
    cluster.start("127.0.0.1", 0)
    cluster.kubeconfig = cluster.write_kubeconfig(tmp_path / "devcluster.kubeconfig", namespace="ai")  # type: ignore[attr-defined]
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_catalog(tmp_path: Path) -> Path:
    """A copy of the example catalog for this test; returns its models directory."""
    return copy_example_catalog(tmp_path / "example-catalog")


@pytest.fixture
def cluster_app(make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path) -> Iterator[Flask]:
    """An app (context pushed) talking to `devcluster`, serving a copy of the example catalog."""
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        KUBE_TIMEOUT="3",
        MODEL_MANAGER_DEVCLUSTER="true",
    )
    with app.app_context():
        yield app
