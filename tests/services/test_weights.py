"""Weights service: usage cache freshness, staging names and the staging sweep (real directories)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flask import Flask

from portal.services import jobs as job_service
from portal.services import weights


def _install(root: Path, name: str, files: dict[str, int]) -> Path:
    path = root / name
    path.mkdir(parents=True)
    for file, size in files.items():
        (path / file).parent.mkdir(parents=True, exist_ok=True)
        (path / file).write_bytes(b"x" * size)
    (path / weights.MARKER).write_text(json.dumps({"modelId": name, "revision": "abc"}))
    return path


def _age(path: Path, seconds: float) -> None:
    """Make a directory tree look untouched for `seconds` (and its dirs' scans trustworthy)."""
    past = time.time() - seconds
    for dirpath, dirs, files in os.walk(path):
        for name in files + dirs:
            os.utime(os.path.join(dirpath, name), (past, past), follow_symlinks=False)
    os.utime(path, (past, past))


def test_usage_is_fresh_after_changes_and_says_how_fresh(app: Flask) -> None:
    root = weights.storage_root()
    _install(root, "acme/one", {"a.bin": 1000, "sub/b.bin": 500})
    _install(root, "acme/two", {"c.bin": 300})
    _age(root, 60)
    first = weights.usage()
    assert first["usedBytes"] == 1800 and first["modelCount"] == 2
    assert first["checkedAt"] and first["fullScanAgeSeconds"] == 0.0
    _install(root, "acme/three", {"d.bin": 7})
    (root / "acme" / "one" / "sub" / "new.bin").write_bytes(b"y" * 20)  # a file added deep inside an install
    second = weights.usage()
    assert second["usedBytes"] == 1827 and second["modelCount"] == 3
    weights.delete_weights("acme/two", actor="tester", active=(None, None))
    assert weights.usage()["usedBytes"] == 1527
    assert {m["name"] for m in weights.list_weights()} == {"acme/one", "acme/three"}


def test_a_file_rewritten_in_place_is_counted_after_a_full_refresh(app: Flask) -> None:
    root = weights.storage_root()
    install = _install(root, "acme/one", {"a.bin": 1000})
    _age(root, 60)
    assert weights.usage()["usedBytes"] == 1000
    with (install / "a.bin").open("ab") as handle:  # no entry added: the directory's mtime stays
        handle.write(b"z" * 24)
    _age(root, 60)
    assert weights.refresh_usage()[0]["sizeBytes"] == 1024
    assert weights.usage()["usedBytes"] == 1024


def test_staging_is_keyed_by_repo_and_commit_and_reserved(app: Flask) -> None:
    dest = weights.storage_root() / "acme" / "tiny"
    one = weights.staging_dir(dest, "acme/tiny", "a" * 40)
    assert one == weights.staging_dir(dest, "acme/tiny", "a" * 40)
    assert one != weights.staging_dir(dest, "acme/tiny", "b" * 40)
    assert one != weights.staging_dir(dest, "other/tiny", "a" * 40)
    assert one.name.startswith("tiny.partial-") and weights.is_reserved(f"acme/{one.name}")
    assert weights.is_reserved("acme/tiny.partial") and weights.is_reserved("acme/tiny.old-123")


def test_sweep_removes_old_staging_but_not_fresh_or_busy_ones(app: Flask) -> None:
    root = weights.storage_root()
    _install(root, "acme/kept", {"a.bin": 10})
    old = root / "acme" / "gone.partial-0123456789abcdef"
    old.mkdir(parents=True)
    (old / "model.safetensors.part").write_bytes(b"x" * 10)
    replaced = root / "acme" / "kept.old-1700000000000"
    replaced.mkdir()
    legacy = root / "top.partial"
    legacy.mkdir()
    fresh = root / "acme" / "fresh.partial-0123456789abcdef"
    fresh.mkdir()
    busy = root / "acme" / "busy.partial-0123456789abcdef"
    busy.mkdir()
    for path in (old, replaced, legacy, busy):
        _age(path, 3600)
    job_service.create_job(weights.JOB_TYPE, actor="tester", target="acme/busy", payload={})
    removed = weights.sweep_staging(max_age=600)
    assert sorted(removed) == ["acme/gone.partial-0123456789abcdef", "acme/kept.old-1700000000000", "top.partial"]
    assert fresh.is_dir() and busy.is_dir() and (root / "acme" / "kept" / "a.bin").is_file()
    assert not old.exists() and not replaced.exists() and not legacy.exists()


def test_a_growing_part_file_keeps_its_staging(app: Flask) -> None:
    staging = weights.storage_root() / "acme" / "slow.partial-0123456789abcdef"
    staging.mkdir(parents=True)
    part = staging / "model.safetensors.part"
    part.write_bytes(b"x")
    _age(staging, 3600)
    part.write_bytes(b"xx")  # still being written: its mtime is now
    assert weights.sweep_staging(max_age=600) == []


def test_storage_uris_parse_build_and_map_to_the_volume(app: Flask) -> None:
    settings = app.config["SETTINGS"]
    root = weights.storage_root()
    _install(root, "acme/one", {"a.bin": 1})
    (root / "escape").symlink_to("/")
    uri = weights.storage_uri("acme/one")
    assert (
        uri == weights.pvc_uri(settings.weights_pvc_name, "acme/one") == f"pvc://{settings.weights_pvc_name}/acme/one"
    )
    parsed = weights.parse_pvc(uri)
    assert parsed is not None and (parsed.claim, parsed.path) == (settings.weights_pvc_name, "acme/one")
    assert weights.parse_pvc("hf://acme/one") is None and weights.parse_pvc("pvc:///x") == weights.paths.PvcUri("", "x")
    assert weights.local_path(settings, uri) == (root / "acme" / "one").resolve()
    for outside in ("pvc://other-claim/acme/one", f"pvc://{settings.weights_pvc_name}/../etc", "s3://b/k"):
        assert weights.local_path(settings, outside) is None, outside
    assert weights.local_path(settings, f"pvc://{settings.weights_pvc_name}/escape/etc") is None, "symlink out"
    assert weights.uri_uses(uri, "acme/one") and weights.uri_uses(uri + "/sub", "acme/one")
    assert weights.uri_uses(f"pvc://{settings.weights_pvc_name}/acme", "acme/one"), "a parent dir serves it too"
    assert not weights.uri_uses(uri, "acme/on") and not weights.uri_uses("hf://acme/one", "acme/one")
