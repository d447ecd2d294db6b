"""Weight installs end to end: the API queues, a real RQ worker process downloads from the local Hub."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from flask import Flask

from portal.extensions import db
from portal.models import Job
from portal.services import history
from tests.support.fixtures_weights import isolated_queue
from tests.support.hub import HubServer


def _job(job_id: str) -> Job:
    db.session.rollback()  # end the read transaction: SQLite/PostgreSQL snapshots would hide new commits
    row = db.session.get(Job, job_id)
    assert row is not None
    return row


def _install(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/weights/install", json={"hfModelId": "acme/tiny-llm", **body})
    assert response.status_code == 202, response.json
    return response.json  # type: ignore[no-any-return]


def _wait_for(predicate: Any, timeout: float = 30, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def test_install_completes_with_verified_files_and_marker(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    body = _install(client)
    assert body["status"] == "queued" and body["target"] == "acme/tiny-llm"
    assert body["storageUri"] == "pvc://venus-model-storage/acme/tiny-llm"
    assert body["inferenceModelPath"] == "/mnt/models/acme/tiny-llm"
    assert body["jobUrl"] == f"/jobs/{body['job']['id']}"
    assert body["weightsInstallStatus"] == f"/weights/install/status/{body['job']['id']}"
    assert body["job"]["bytesTotal"] > 1_000_000 and body["job"]["status"] == "pending"
    out = worker_process().wait()
    job = _job(body["job"]["id"])
    assert job.status == "completed", (job.error, out[-3000:])
    assert job.progress == 100 and job.bytes_done == job.bytes_total and job.files_done == job.files_total
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    dest = root / "acme" / "tiny-llm"
    for name in [*small_repo.weight_files, "config.json", "tokenizer.json"]:
        blob = hub.blob("acme/tiny-llm", name)
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == blob.sha256
    marker = json.loads((dest / ".model-manager").read_text())
    assert marker["modelId"] == "acme/tiny-llm" and marker["revision"] == small_repo.commit
    assert marker["totalBytes"] == job.bytes_total and marker["unverified"] == []
    files = {entry["name"]: entry for entry in marker["files"]}
    assert files["config.json"]["verifiedBy"] == "git-blob-id"
    for name, entry in files.items():
        blob = hub.blob("acme/tiny-llm", name)
        assert (entry["size"], entry["sha256"]) == (blob.size, blob.sha256), name
    assert sorted(p.name for p in (root / "acme").iterdir()) == ["tiny-llm"], "no staging dir left"
    assert not list(dest.rglob("*.part"))
    listing = client.get("/weights").json["weights"]
    assert listing[0]["name"] == "acme/tiny-llm" and listing[0]["revision"] == small_repo.commit
    assert history.last_event("weight_install_completed", model_id="acme/tiny-llm") is not None
    status = client.get(body["weightsInstallStatus"]).json
    assert status["result"]["storageUri"] == body["storageUri"]


def test_progress_rows_increase_and_reach_the_total(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    hub.throttle(700_000)
    job_id = _install(client)["job"]["id"]
    worker = worker_process()
    samples: list[tuple[float, int, str, float | None, str | None]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = _job(job_id)
        samples.append((time.monotonic(), job.bytes_done, job.stage or "", job.rate, job.current_file))
        if job.finished:
            break
        time.sleep(0.05)
    worker.wait()
    job = _job(job_id)
    assert job.status == "completed", job.error
    values = [s[1] for s in samples]
    assert values == sorted(values), "bytes done never goes back"
    distinct = sorted(set(values))
    assert len(distinct) >= 4, distinct
    assert distinct[-1] == job.bytes_total
    assert any(s[3] for s in samples if s[2] == "downloading"), "a rate is shown while downloading"
    assert any(s[4] and s[4].endswith(".safetensors") for s in samples), "the current file is shown"
    stages = [s[2] for s in samples]
    assert "downloading" in stages and stages[-1] == "completed"
    # At most two progress writes a second: distinct values cannot change faster than that.
    changes = [samples[i][0] for i in range(1, len(samples)) if samples[i][1] != samples[i - 1][1]]
    duration = samples[-1][0] - samples[0][0]
    assert len(changes) <= 2 * duration + 3


def test_cancel_stops_a_running_download_quickly(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    hub.throttle(200_000)
    job_id = _install(client)["job"]["id"]
    worker = worker_process()
    _wait_for(lambda: _job(job_id).bytes_done > 50_000)
    response = client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200 and response.json["job"]["status"] == "cancelled"
    cancelled_at = time.monotonic()
    worker.wait(timeout=15)
    assert time.monotonic() - cancelled_at < 5, "the worker stopped the download within 5 s"
    _wait_for(lambda: hub.active_downloads() == 0, timeout=5)  # the horse closed every download
    sent = hub.bytes_sent()
    assert client.get(f"/jobs/{job_id}").json["status"] == "cancelled"
    assert hub.bytes_sent() == sent, "no more bytes flow after the cancel"
    job = _job(job_id)
    assert job.status == "cancelled" and job.stage == "cancelled"
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    assert not (root / "acme" / "tiny-llm").exists(), "nothing half-written under the target name"
    assert client.get("/weights").json["weights"] == []


def test_dropped_connection_fails_then_retry_resumes(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard = small_repo.weight_files[0]
    size = hub.blob("acme/tiny-llm", shard).size
    hub.drop_after(shard, 100_000, times=10)
    job_id = _install(client)["job"]["id"]
    worker_process(WEIGHTS_DOWNLOAD_RETRIES="2").wait()
    job = _job(job_id)
    assert job.status == "failed" and shard in (job.error or ""), job.error
    assert "dropped the connection 3 times" in (job.error or "")
    hub.clear_faults()
    hub.reset_requests()
    assert client.post(f"/jobs/{job_id}/retry").status_code == 202
    worker_process().wait()
    job = _job(job_id)
    assert job.status == "completed", job.error
    resent = hub.bytes_sent(shard)
    assert 0 < resent < size, (resent, size)
    assert resent == size - 300_000  # three tries of 100 kB each reached the disk the first time
    assert all(r.range for r in hub.downloads(shard)), "the retry asked for the rest with Range"


def test_single_drop_resumes_within_the_attempt(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard = small_repo.weight_files[1]
    size = hub.blob("acme/tiny-llm", shard).size
    hub.drop_after(shard, 200_000)
    job_id = _install(client)["job"]["id"]
    worker_process().wait()
    assert _job(job_id).status == "completed"
    assert hub.bytes_sent(shard) == size, "resumed from byte 200000, nothing fetched twice"


def test_corrupt_file_fails_checksum_and_publishes_nothing(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard = small_repo.weight_files[0]
    hub.corrupt(shard)
    job_id = _install(client)["job"]["id"]
    out = worker_process().wait()
    job = _job(job_id)
    assert job.status == "failed", out[-3000:]
    assert job.error is not None and f"checksum mismatch for {shard}" in job.error
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    assert not (root / "acme" / "tiny-llm").exists()
    staged = [p.name for p in (root / "acme").glob("tiny-llm.partial-*/**/*") if p.is_file()]
    assert shard + ".part" not in staged and shard not in staged, "the bad file is deleted, not kept for a retry"
    event = history.last_event("weight_install_failed", model_id="acme/tiny-llm")
    assert event is not None and "checksum mismatch" in event.meta["error"]


def test_killed_worker_is_reaped_and_retry_completes(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    install_app.config["JOB_STALE_AFTER"] = 2
    client = install_app.test_client()
    hub.throttle(250_000)
    job_id = _install(client)["job"]["id"]
    worker = worker_process()
    _wait_for(lambda: _job(job_id).bytes_done > 100_000)
    worker.kill()
    killed_at = time.monotonic()
    done_before = hub.bytes_sent()

    def reaped() -> bool:
        return client.get(f"/jobs/{job_id}").json["status"] == "failed"

    _wait_for(reaped, timeout=10, interval=0.2)
    assert time.monotonic() - killed_at < 2 + 3, "failed within the heartbeat bound"
    job = _job(job_id)
    assert job.error is not None and "worker died" in job.error
    hub.throttle(None)
    hub.reset_requests()
    assert client.post(f"/jobs/{job_id}/retry").status_code == 202
    worker_process().wait()
    job = _job(job_id)
    assert job.status == "completed", job.error
    assert hub.bytes_sent() < job.bytes_total, "the retry resumed instead of starting over"
    assert done_before > 0


def test_overwrite_keeps_the_old_version_until_the_new_one_is_verified(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    first = _install(client)["job"]["id"]
    worker_process().wait()
    assert _job(first).status == "completed"
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    dest = root / "acme" / "tiny-llm"
    old_config = (dest / "config.json").read_bytes()
    assert client.post("/weights/install", json={"hfModelId": "acme/tiny-llm"}).status_code == 409
    shard = small_repo.weight_files[0]
    new_sha = hub.add_commit(
        "acme/tiny-llm", {"config.json": b'{"model_type": "llama", "v": 2}', shard: b"\x01" * 300_000}
    )
    hub.corrupt(shard)
    failed = _install(client, overwrite=True)
    assert failed["revision"] == new_sha
    worker_process().wait()
    assert _job(failed["job"]["id"]).status == "failed"
    assert (dest / "config.json").read_bytes() == old_config, "a failed overwrite leaves the old version"
    assert json.loads((dest / ".model-manager").read_text())["revision"] == small_repo.commit
    hub.clear_faults()
    hub.throttle(300_000)
    assert client.post(f"/jobs/{failed['job']['id']}/retry").status_code == 202
    worker = worker_process()
    _wait_for(lambda: _job(failed["job"]["id"]).bytes_done > 0)
    assert (dest / "config.json").read_bytes() == old_config, "old version still served while downloading"
    worker.wait()
    assert _job(failed["job"]["id"]).status == "completed"
    assert json.loads((dest / ".model-manager").read_text())["revision"] == new_sha
    assert (dest / shard).read_bytes() == b"\x01" * 300_000
    assert sorted(p.name for p in (root / "acme").iterdir()) == ["tiny-llm"], "no staging or old dirs left"


def test_timeout_fails_the_job_with_the_reason(
    make_app: Any, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    app = make_app(HF_ENDPOINT=hub.url, WEIGHTS_INSTALL_TIMEOUT="2s", **isolated_queue())
    hub.throttle(100_000)
    with app.app_context():
        client = app.test_client()
        job_id = _install(client)["job"]["id"]
        worker_process().wait(timeout=30)
        job = _job(job_id)
        assert job.status == "failed"
        assert job.error is not None and "WEIGHTS_INSTALL_TIMEOUT" in job.error
