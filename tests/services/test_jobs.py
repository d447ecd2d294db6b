"""Job service: reads reap dead jobs, shutdown stops, cancel/retry rules (real database and Redis)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from portal.errors import Conflict
from portal.extensions import db
from portal.services import history, weights
from portal.services import jobs as job_service


def _running_install(heartbeat_age: float) -> str:
    job = job_service.create_job(weights.JOB_TYPE, actor="tester", target="acme/x", model_id="acme/x", payload={})
    job_service.start(job, worker="w1")
    job.heartbeat_at = job_service.now() - timedelta(seconds=heartbeat_age)
    db.session.commit()
    return job.id


def test_reading_a_job_reaps_it_when_its_worker_stopped_beating(app: Flask) -> None:
    app.config["JOB_STALE_AFTER"] = 5
    fresh = _running_install(heartbeat_age=1)
    dead = _running_install(heartbeat_age=60)
    job_service._last_reap = 0.0  # the once-a-second throttle is per process; start this test unthrottled
    assert job_service.get_job(dead).status == "failed"
    assert "worker died" in (job_service.get_job(dead).error or "")
    assert job_service.get_job(fresh).status == "running"
    event = history.last_event("weight_install_failed", model_id="acme/x")
    assert event is not None and event.meta["jobId"] == dead


def test_listing_jobs_reaps_too(app: Flask) -> None:
    app.config["JOB_STALE_AFTER"] = 5
    dead = _running_install(heartbeat_age=60)
    job_service._last_reap = 0.0
    rows, total = job_service.list_jobs(status="running")
    assert total == 0 and rows == []
    assert job_service.get_job(dead).status == "failed"


def test_stop_for_shutdown_fails_a_running_job_once(app: Flask) -> None:
    job_id = _running_install(heartbeat_age=0)
    assert job_service.stop_for_shutdown(job_id) is True
    job = job_service.get_job(job_id)
    assert (job.status, job.stage, job.error) == ("failed", "stopped", job_service.SHUTDOWN_REASON)
    assert job_service.stop_for_shutdown(job_id) is False, "a finished job is left as it is"
    assert job_service.retry_job(job_id, actor="tester").status == "pending"


def test_only_finished_jobs_can_be_retried_and_only_active_ones_cancelled(app: Flask) -> None:
    job_id = _running_install(heartbeat_age=0)
    with pytest.raises(Conflict) as retried:
        job_service.retry_job(job_id, actor="tester")
    assert retried.value.code == "job_not_retryable"
    assert job_service.cancel_job(job_id, actor="tester").status == "cancelled"
    with pytest.raises(Conflict) as cancelled:
        job_service.cancel_job(job_id, actor="tester")
    assert cancelled.value.code == "job_not_cancellable"
