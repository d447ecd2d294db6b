"""Redis stopped and started again (empty, as a pod without persistence) while the portal is in use."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask

from portal.extensions import db
from portal.models import Job
from portal.web.pages import REDIS_BANNER_TTL
from tests.jobs.test_worker import run_worker_burst
from tests.support.fixtures_redis import PrivateRedis

BANNER = "Redis is unavailable: installs and other jobs cannot be queued"


def test_redis_restart_loses_nothing(
    make_app: Callable[..., Flask], app_env: dict[str, str], private_redis: PrivateRedis
) -> None:
    app = make_app(REDIS_URL=private_redis.url, JOB_STALE_AFTER="0")
    client = app.test_client()
    queued = client.post("/jobs/noop", json={})
    assert queued.status_code == 202
    queued_id = queued.json["job"]["id"]

    private_redis.stop()  # the queue and the job in it are gone with the process
    refused = client.post("/jobs/noop", json={})
    assert refused.status_code == 503 and refused.json["code"] == "queue_unavailable"
    assert "Redis" in refused.json["error"]
    page = client.get("/ui/jobs")
    assert page.status_code == 200 and BANNER in page.get_data(as_text=True)
    jobs_list = client.get("/jobs")
    assert jobs_list.status_code == 200  # the rows are in the database: reads keep working
    assert {job["id"] for job in jobs_list.json["jobs"]} >= {queued_id}

    private_redis.start()
    proc = run_worker_burst(app_env)  # the worker's maintenance finds the lost job and queues it again
    assert proc.returncode == 0, proc.stderr[-2000:]
    with app.app_context():
        db.session.expire_all()
        row = db.session.get(Job, queued_id)
        assert row is not None and row.status == "completed", (row.status if row else None, proc.stderr[-2000:])
        assert any("Queued again" in line.message for line in row.logs)
        refused_row = db.session.get(Job, refused.json["details"]["jobId"])
        assert refused_row is not None and refused_row.status == "failed"  # said 503 at the time: not run later
    assert client.post("/jobs/noop", json={}).status_code == 202
    # The banner is re-checked every REDIS_BANNER_TTL seconds per process: it goes away on its own.
    deadline = time.monotonic() + REDIS_BANNER_TTL + 5
    while BANNER in client.get("/ui/jobs").get_data(as_text=True):
        assert time.monotonic() < deadline, "the Redis banner stayed after Redis came back"
        time.sleep(0.2)
