"""The catalog directory flipped by git-sync (symlink swap) or removed while requests are served."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from tests.support.fixtures_cluster import copy_example_catalog


def _generation(directory: Path, prefix: str, count: int) -> set[str]:
    source = json.loads(
        (Path(__file__).resolve().parents[2] / "examples/catalog/models/tiny-gpt2-test.json").read_text()
    )
    directory.mkdir(parents=True)
    ids = set()
    for i in range(count):
        entry = {**source, "id": f"{prefix}-{i:02}", "displayName": f"{prefix} {i}"}
        (directory / f"{entry['id']}.json").write_text(json.dumps(entry, indent=2), encoding="utf-8")
        ids.add(entry["id"])
    return ids


def test_git_sync_flip_and_removal_through_the_api(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    root = tmp_path / "git-sync"
    root.mkdir()
    ids_a = _generation(tmp_path / "rev-a", "alpha", 30)
    ids_b = _generation(tmp_path / "rev-b", "beta", 30)
    link = root / "models"
    link.symlink_to(tmp_path / "rev-a")
    app = make_app(MODEL_CATALOG_ROOT=str(root), CATALOG_REFRESH_INTERVAL="0")
    client = app.test_client()
    assert {m["id"] for m in client.get("/models").json} == ids_a

    stop = threading.Event()
    swaps = 0

    def git_sync() -> None:
        nonlocal swaps
        while not stop.is_set():
            tmp = root / "models.tmp"
            tmp.symlink_to(tmp_path / ("rev-b" if swaps % 2 == 0 else "rev-a"))
            os.replace(tmp, link)  # git-sync's atomic flip
            swaps += 1

    flipper = threading.Thread(target=git_sync)
    flipper.start()
    try:
        for _ in range(60):
            response = client.get("/models")
            assert response.status_code == 200
            assert {m["id"] for m in response.json} in (ids_a, ids_b)
            assert client.get("/ui/catalog").status_code == 200
    finally:
        stop.set()
        flipper.join()
    assert swaps > 5

    # The checkout disappears (volume unmounted, git-sync wiping it): the last good catalog is served,
    # and both the API and every page say so.
    served = {m["id"] for m in client.get("/models").json}
    os.unlink(link)
    response = client.get("/models")
    assert response.status_code == 200 and {m["id"] for m in response.json} == served
    status = client.get("/catalog/status").json
    assert status["status"] == "missing"
    page = client.get("/ui/catalog").get_data(as_text=True)
    assert "the catalog directory is missing" in page
    model_id = sorted(served)[0]
    assert client.get(f"/models/{model_id}").status_code == 200

    # It comes back (a fresh checkout): the portal follows without a restart.
    models = copy_example_catalog(tmp_path / "fresh")
    link.symlink_to(models)
    expected = {p.stem for p in models.glob("*.json")}
    assert {m["id"] for m in client.get("/models").json} == expected
    assert client.get("/catalog/status").json["status"] == "live"
