"""The weights volume fills up during a download: the job fails clearly, nothing half-written stays."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.jobs.test_weights_install import _install, _job, _wait_for
from tests.support.fixtures_weights import isolated_queue
from tests.support.hub import HubServer

VOLUME_BYTES = 6 * 1024 * 1024


@pytest.fixture
def small_volume(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs: a volume that really runs out of space (needs root, as CI and `make test` run)."""
    mount_point = tmp_path / "volume"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME_BYTES}", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(path: Path) -> None:
    """Write zeros until the filesystem says it is full."""
    chunk = b"\0" * 65536
    with path.open("wb") as handle:
        try:
            while True:
                handle.write(chunk)
                handle.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@pytest.mark.slow
def test_volume_full_mid_download_fails_cleanly_and_retry_completes(
    make_app: Any, hub: HubServer, small_repo: Any, worker_process: Any, small_volume: Path
) -> None:
    weights = small_volume / "weights"
    weights.mkdir()
    app: Flask = make_app(HF_ENDPOINT=hub.url, WEIGHTS_STORAGE_PATH=str(weights), **isolated_queue())
    with app.app_context():
        client = app.test_client()
        first = _install(client)["job"]["id"]
        worker_process().wait()
        assert _job(first).status == "completed"
        dest = weights / "acme" / "tiny-llm"
        old_files = {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()}

        shard = small_repo.weight_files[0]
        new_sha = hub.add_commit("acme/tiny-llm", {shard: os.urandom(2_000_000)})
        hub.throttle(400_000)
        update = _install(client, overwrite=True)
        assert update["revision"] == new_sha
        job_id = update["job"]["id"]
        worker = worker_process()
        _wait_for(lambda: _job(job_id).bytes_done > 0)
        filler = small_volume / "filler"
        _fill(filler)  # something else on the volume takes the rest of the space
        worker.wait()

        job = _job(job_id)
        assert job.status == "failed"
        assert "no space left" in (job.error or "").lower(), job.error
        # The previous version is intact and still the one published.
        assert {p.name: p.read_bytes() for p in dest.iterdir() if p.is_file()} == old_files
        assert json.loads((dest / ".model-manager").read_text())["revision"] == small_repo.commit
        # Nothing half-written stays behind to fill the volume further.
        assert sorted(p.name for p in (weights / "acme").iterdir()) == ["tiny-llm"]

        filler.unlink()
        hub.throttle(None)
        assert client.post(f"/jobs/{job_id}/retry").status_code == 202
        worker_process().wait()
        assert _job(job_id).status == "completed"
        assert json.loads((dest / ".model-manager").read_text())["revision"] == new_sha
