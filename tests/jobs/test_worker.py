"""A job enqueued through the service is run by a real worker process and reaches `completed`."""

from __future__ import annotations

import subprocess
import sys
import time

from flask import Flask

from portal.extensions import db
from portal.models import Job
from portal.services import jobs as job_service
from tests.conftest import ROOT, subprocess_env
from tests.support.fixtures_secrets import scan_text


def run_worker_burst(app_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `flask --app wsgi worker --burst` as its own process with the test app's settings."""
    done = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=subprocess_env(app_env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    scan_text(done.stdout + done.stderr, "a burst worker's output")
    return done


def test_real_worker_process_runs_the_job(app: Flask, app_env: dict[str, str]) -> None:
    job = job_service.create_job("noop", actor="tester")
    assert db.session.get(Job, job.id).status == "pending"  # the row exists before any worker runs
    proc = run_worker_burst(app_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    db.session.expire_all()
    row = db.session.get(Job, job.id)
    assert row.status == "completed", (row.status, row.error, proc.stderr[-2000:])
    assert row.progress == 100 and row.attempt == 1 and row.actor == "tester"
    assert [line.stage for line in job_service.job_logs(job.id)][-1] == "completed"


def test_cancel_pending_job_and_retry(app: Flask, app_env: dict[str, str]) -> None:
    job = job_service.create_job("noop", actor="tester")
    job_service.cancel_job(job.id, actor="tester")
    assert db.session.get(Job, job.id).status == "cancelled"
    job_service.retry_job(job.id, actor="tester")
    proc = run_worker_burst(app_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    db.session.expire_all()
    assert db.session.get(Job, job.id).status == "completed"


def test_enqueue_with_redis_down_fails_clearly(make_app) -> None:  # type: ignore[no-untyped-def]
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    client = app.test_client()
    started = time.monotonic()
    response = client.post("/jobs/noop", json={})
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.json["code"] == "queue_unavailable"
    job_id = response.json["details"]["jobId"]
    assert client.get(f"/jobs/{job_id}").json["status"] == "failed"


def test_worker_skips_a_job_whose_row_is_gone(app: Flask, app_env: dict[str, str]) -> None:
    job = job_service.create_job("noop", actor="tester")
    db.session.delete(db.session.get(Job, job.id))
    db.session.commit()
    proc = run_worker_burst(app_env)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
