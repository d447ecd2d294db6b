"""Jobs API: purging finished jobs (DELETE /jobs) and the queued-job answer of cancel/retry/no-op."""

from __future__ import annotations

from flask import Flask

from portal.models import Job
from portal.services import history
from portal.services import jobs as job_service


def _job(status: str) -> Job:
    """A no-op job brought to `status` through the job service, as a worker would."""
    job = job_service.create_job("noop", actor="tester")
    if status in ("running", "completed", "failed"):
        job_service.start(job)
    if status == "completed":
        job_service.complete(job)
    elif status == "failed":
        job_service.fail(job, "it broke")
    elif status == "cancelled":
        job_service.cancel_job(job.id, actor="tester")
    assert job.status == status
    return job


def _statuses(app: Flask) -> list[str]:
    return sorted(job["status"] for job in app.test_client().get("/jobs").json["jobs"])


def test_delete_purges_finished_jobs_and_keeps_running_ones(app: Flask) -> None:
    for status in ("pending", "running", "completed", "completed", "failed", "cancelled"):
        _job(status)
    client = app.test_client()

    only_failed = client.delete("/jobs?status=failed")
    assert only_failed.status_code == 200
    assert only_failed.json == {"status": "deleted", "filteredStatus": "failed", "deleted": 1}
    assert _statuses(app) == ["cancelled", "completed", "completed", "pending", "running"]

    everything = client.delete("/jobs")
    assert everything.json == {"status": "deleted", "filteredStatus": "", "deleted": 3}
    assert _statuses(app) == ["pending", "running"]
    purges = [(e.actor, e.meta) for e in history.query_events(event="jobs_purged")[0]]
    assert purges == [("anonymous", {"status": "", "count": 3}), ("anonymous", {"status": "failed", "count": 1})]


def test_delete_refuses_unfinished_statuses_and_deletes_nothing(app: Flask) -> None:
    _job("running")
    _job("completed")
    client = app.test_client()
    for status in ("running", "pending", "bogus"):
        response = client.delete(f"/jobs?status={status}")
        assert response.status_code == 400, status
        assert set(response.json) == {"error", "code", "details"}
        assert "status" in response.json["details"]["fields"]["query"]
    assert _statuses(app) == ["completed", "running"]
    assert history.query_events(event="jobs_purged")[0] == []


def test_cancel_retry_and_noop_answer_the_job_and_its_url(app: Flask) -> None:
    client = app.test_client()
    queued = client.post("/jobs/noop", json={})
    assert queued.status_code == 202
    job_id = queued.json["job"]["id"]
    assert queued.json == {"status": "queued", "job": queued.json["job"], "jobUrl": f"/jobs/{job_id}"}
    assert client.get(queued.json["jobUrl"]).json["id"] == job_id

    cancelled = client.post(f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200
    assert (cancelled.json["status"], cancelled.json["job"]["status"]) == ("cancelled", "cancelled")
    assert cancelled.json["jobUrl"] == f"/jobs/{job_id}"

    retried = client.post(f"/jobs/{job_id}/retry")
    assert retried.status_code == 202
    assert (retried.json["status"], retried.json["job"]["status"], retried.json["jobUrl"]) == (
        "queued",
        "pending",
        f"/jobs/{job_id}",
    )
