"""Installs against a faulty Hub and a stopped portal: staging per commit, hashes, retries, shutdown.

Real worker processes (and `scripts/run.py` itself) run against the local Hub server; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests
from flask import Flask

from portal.services import jobs as job_service
from tests.conftest import ROOT, subprocess_env
from tests.jobs.test_weights_install import _install, _job, _wait_for
from tests.support.hub import HubServer

REPO = "acme/tiny-llm"


def _other_bytes(hub: HubServer, names: list[str], fill: int) -> dict[str, bytes]:
    """Same names and sizes as the current files, other bytes (what a second commit would hold)."""
    return {name: bytes([fill]) * hub.blob(REPO, name).size for name in names}


def _staging(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "acme").iterdir() if p.name != "tiny-llm")


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, process group) of every live (non-zombie) process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def _descendants(pid: int) -> dict[int, int]:
    """Live processes below `pid`: pid → process group."""
    table = _proc_table()
    found: dict[int, int] = {}
    frontier = {pid}
    while frontier:
        children = {p for p, (parent, _) in table.items() if parent in frontier and p not in found}
        found.update({p: table[p][1] for p in children})
        frontier = children
    return found


def test_cancelled_overwrite_then_reinstall_publishes_v1_exactly(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    v1 = small_repo.commit
    assert _job(_install(client)["job"]["id"]).status == "pending"
    worker_process().wait()
    v1_bytes = {p.name: p.read_bytes() for p in (root / "acme" / "tiny-llm").iterdir() if p.name != ".model-manager"}
    v2 = hub.add_commit(REPO, _other_bytes(hub, small_repo.weight_files, 2))
    hub.throttle(400_000)
    second = _install(client, overwrite=True)
    assert second["revision"] == v2
    worker = worker_process()
    _wait_for(lambda: _job(second["job"]["id"]).bytes_done > 600_000)
    assert client.post(f"/jobs/{second['job']['id']}/cancel").status_code == 200
    worker.wait(timeout=20)
    assert len(_staging(root)) == 1, "the cancelled install's staging is kept for its retry"
    hub.clear_faults()
    hub.reset_requests()
    third = _install(client, revision=v1, overwrite=True)
    worker_process().wait()
    job = _job(third["job"]["id"])
    assert job.status == "completed" and job.attempt == 1, job.error
    dest = root / "acme" / "tiny-llm"
    for name, data in v1_bytes.items():
        assert (dest / name).read_bytes() == data, f"{name} is v1's file byte for byte"
    assert json.loads((dest / ".model-manager").read_text())["revision"] == v1
    assert _staging(root) == [], "the superseded commit's staging is gone"
    assert hub.bytes_sent(repo_id=REPO) >= sum(len(d) for d in v1_bytes.values()), "nothing of v2 was reused"


def test_hashes_come_from_the_tree_or_the_resolve_headers(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard_a, shard_b = small_repo.weight_files
    hub.hide_hashes(shard_a, sources=("info",))  # the tree API still has it
    hub.hide_hashes(shard_b, sources=("info", "tree"))  # only X-Linked-Etag on resolve has it
    body = _install(client)
    manifest = {f["name"]: f for f in body["job"]["payload"]["manifest"]}
    assert manifest[shard_a]["sha256"] == hub.blob(REPO, shard_a).sha256
    assert manifest[shard_b]["sha256"] == hub.blob(REPO, shard_b).sha256
    assert manifest["config.json"]["gitOid"] == hub.blob(REPO, "config.json").git_oid
    assert body["job"]["payload"]["unverified"] == []
    hub.corrupt(shard_b)  # the hash from the resolve header is really checked
    worker_process().wait()
    job = _job(body["job"]["id"])
    assert job.status == "failed" and f"checksum mismatch for {shard_b}" in (job.error or "")


def test_unverified_files_are_reported_and_refused_when_required(
    install_app: Flask, make_app: Any, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard = small_repo.weight_files[0]
    hub.hide_hashes(shard)
    body = _install(client)
    assert body["job"]["payload"]["unverified"] == [shard]
    worker_process().wait()
    job = _job(body["job"]["id"])
    assert job.status == "completed", job.error
    assert job.result is not None and job.result["unverified"] == [shard]
    assert "Verified" in " ".join(line.message for line in job_service.job_logs(job.id))
    assert not any("of every" in line.message for line in job_service.job_logs(job.id))
    logs = [line.message for line in job_service.job_logs(job.id) if line.stage == "verifying"]
    assert logs and f"no hash on the Hub for 1: {shard}" in logs[0]
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    marker = json.loads((root / "acme" / "tiny-llm" / ".model-manager").read_text())
    entries = {e["name"]: e for e in marker["files"]}
    assert entries[shard]["sha256"] == "unverified" and marker["unverified"] == [shard]
    assert entries[small_repo.weight_files[1]]["sha256"] == hub.blob(REPO, small_repo.weight_files[1]).sha256
    listing = client.get("/weights").json["weights"]
    assert listing[0]["unverified"] == [shard]
    page = client.get("/ui/weights").get_data(as_text=True)
    assert "unverified" in page and shard in page
    card = client.get(f"/ui/jobs/{job.id}/card").get_data(as_text=True)
    assert "Unverified" in card and shard in card

    strict = make_app(HF_ENDPOINT=hub.url, WEIGHTS_REQUIRE_SHA256="true")
    with strict.app_context():
        response = strict.test_client().post("/weights/install", json={"hfModelId": REPO, "overwrite": True})
    assert response.status_code == 409, response.json
    assert response.json["code"] == "sha256_unavailable" and response.json["details"]["unverified"] == [shard]
    assert "WEIGHTS_REQUIRE_SHA256" in response.json["error"]


def test_an_install_after_a_kill_never_reuses_another_commits_partials(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    install_app.config["JOB_STALE_AFTER"] = 2
    client = install_app.test_client()
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    hub.throttle(300_000)
    first = _install(client)["job"]["id"]
    worker = worker_process()
    _wait_for(lambda: _job(first).bytes_done > 300_000)
    worker.kill()
    _wait_for(lambda: client.get(f"/jobs/{first}").json["status"] == "failed", timeout=15, interval=0.2)
    assert _staging(root), "the killed install left its partial files"
    v2 = hub.add_commit(REPO, _other_bytes(hub, small_repo.weight_files, 3))
    hub.clear_faults()
    hub.reset_requests()
    second = _install(client)
    assert second["revision"] == v2
    worker_process().wait()
    assert _job(second["job"]["id"]).status == "completed"
    dest = root / "acme" / "tiny-llm"
    for name in small_repo.weight_files:
        data = (dest / name).read_bytes()
        assert data == bytes([3]) * len(data), f"{name} is the new commit's file"
        assert hub.bytes_sent(name) == len(data), "fetched whole: nothing of the other commit was resumed"
    assert _staging(root) == []


def test_transient_hub_errors_are_retried_and_the_install_completes(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard_a, shard_b = small_repo.weight_files
    size_a = hub.blob(REPO, shard_a).size
    hub.fail_download(shard_a, 503)
    hub.fail_download(shard_b, 429, retry_after=2)
    hub.drop_after("tokenizer.json", 200, times=3)
    hub.drop_after(shard_a, 150_000, times=2)
    job_id = _install(client)["job"]["id"]
    worker_process().wait()
    job = _job(job_id)
    assert job.status == "completed" and job.attempt == 1, job.error
    retries = [line.message for line in job_service.job_logs(job_id) if line.stage == "retrying"]
    assert job.result is not None and job.result["retries"] == len(retries) == 7, retries
    assert any(
        m.startswith(f"the Hub answered 503 once while downloading {shard_a}; retrying in") and "(HTTP 503" in m
        for m in retries
    )
    assert any(
        m.startswith(f"the Hub asked us to slow down (429) once while downloading {shard_b}; retrying in 2 s")
        for m in retries
    )
    assert any("the Hub dropped the connection 3 times while downloading tokenizer.json" in m for m in retries)
    assert any(f"the Hub dropped the connection 2 times while downloading {shard_a}" in m for m in retries)
    assert hub.bytes_sent(shard_a) == size_a, "the drops resumed from the bytes on disk"
    assert all(r.range for r in hub.downloads(shard_a)[1:])


def test_the_retry_message_is_shown_on_the_job_while_it_waits(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    shard = small_repo.weight_files[0]
    hub.fail_download(shard, 429, retry_after=3)
    job_id = _install(client)["job"]["id"]
    worker = worker_process()
    message = _wait_for(lambda: (m := client.get(f"/jobs/{job_id}").json.get("message") or "") and "429" in m and m)
    assert message.startswith(f"the Hub asked us to slow down (429) once while downloading {shard}; retrying in 3 s")
    worker.wait()
    assert _job(job_id).status == "completed"


def test_worker_shutdown_stops_the_horse_and_fails_the_job(
    install_app: Flask, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    client = install_app.test_client()
    hub.throttle(200_000)
    job_id = _install(client)["job"]["id"]
    worker = worker_process()
    _wait_for(lambda: _job(job_id).bytes_done > 100_000)
    below = _descendants(worker.proc.pid)
    assert any(group != worker.proc.pid for group in below.values()), "the horse runs in a group of its own"
    os.kill(worker.proc.pid, signal.SIGTERM)
    worker.wait(timeout=20)
    assert not set(below) & set(_proc_table()), "no work horse is left behind"
    sent = hub.bytes_sent()
    job = _job(job_id)
    assert job.status == "failed" and job.error == job_service.SHUTDOWN_REASON
    hub.throttle(None)
    assert client.post(f"/jobs/{job_id}/retry").status_code == 202
    worker_process().wait()
    assert _job(job_id).status == "completed"
    assert hub.bytes_sent() - sent < _job(job_id).bytes_total, "the retry resumed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_run_stopped_during_an_install_leaves_no_process_behind(
    install_app: Flask, app_env: dict[str, str], hub: HubServer, small_repo: Any, tmp_path: Path
) -> None:
    port = _free_port()
    env = subprocess_env(app_env)
    env.update(
        PORT=str(port),
        MODEL_MANAGER_RUN_DIR=str(tmp_path / "run"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        GUNICORN_WORKERS="1",
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    run = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "run.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    started: dict[int, int] = {}
    try:
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return requests.get(f"{base}/healthz", timeout=1).status_code < 500
            except requests.RequestException:
                return False

        _wait_for(up, timeout=90, interval=0.2)
        hub.throttle(150_000)
        response = requests.post(f"{base}/weights/install", json={"hfModelId": REPO}, timeout=30)
        assert response.status_code == 202, response.text
        job_id = response.json()["job"]["id"]
        _wait_for(lambda: requests.get(f"{base}/jobs/{job_id}", timeout=5).json()["bytesDone"] > 50_000, timeout=60)
        started = _descendants(run.pid)
        groups = {group for pid, group in started.items() if pid != run.pid}
        assert len(groups) >= 4, "redis/devcluster, worker, gunicorn and the horse, each in its own group"
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate(timeout=10)
    assert run.returncode == 0, out[-3000:]
    left = set(started) & set(_proc_table())
    assert not left, f"processes left behind: {left}\n{out[-3000:]}"
    job = _job(job_id)
    assert job.status == "failed" and job.error == job_service.SHUTDOWN_REASON, (job.status, job.error)
    assert "did not stop" not in out, "stopped within the bound, nothing had to be killed"
