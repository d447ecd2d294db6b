"""Jobs: create the row, commit, then enqueue with the same id; query, log, cancel, retry."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from flask import current_app
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job as RQJob
from sqlalchemy import func, select

from portal.errors import Conflict, InvalidInput, NotFound, Unavailable
from portal.extensions import current_settings, db, redis_holder
from portal.metrics import JOB_DURATION, JOBS_TOTAL
from portal.models import Job, JobLog
from portal.models.job import FINISHED_STATUSES, JOB_STATUSES
from portal.services import history

log = logging.getLogger(__name__)
JOB_ID_PATTERN = r"[0-9A-Za-z-]{1,64}"
_JOB_ID = re.compile(JOB_ID_PATTERN)

MAX_LIMIT = 200
# Which RQ function runs which job type; one line per type keeps enqueue and retry in one place.
JOB_FUNCTIONS: dict[str, str] = {
    "noop": "jobs.system.noop",
}
# Job types whose running function refreshes `heartbeat_at`; only these can be reaped as "worker died".
HEARTBEAT_TYPES: set[str] = set()
_last_reap = 0.0


def register_job_type(
    job_type: str, func_path: str, *, heartbeat: bool = False, on_reaped: Callable[[Job], None] | None = None
) -> None:
    """Declare the RQ function (dotted path) that runs a job type, whether it sends heartbeats, and its reap hook."""
    JOB_FUNCTIONS[job_type] = func_path
    if heartbeat:
        HEARTBEAT_TYPES.add(job_type)
    if on_reaped is not None:
        REAP_HOOKS[job_type] = on_reaped


def now() -> datetime:
    """UTC now (one place so tests read the same clock)."""
    return datetime.now(UTC)


def create_job(
    job_type: str,
    *,
    actor: str,
    payload: dict[str, Any] | None = None,
    target: str | None = None,
    model_id: str | None = None,
    max_attempts: int = 1,
    message: str = "Queued",
    timeout: float | None = None,
    fields: dict[str, Any] | None = None,
) -> Job:
    """Insert the job row, commit, then enqueue it on RQ under the same id (`fields`: extra columns)."""
    if job_type not in JOB_FUNCTIONS:
        raise InvalidInput(f"unknown job type: {job_type}", code="unknown_job_type")
    job = Job(
        type=job_type,
        status="pending",
        stage="queued",
        payload=payload or {},
        target=target,
        model_id=model_id,
        max_attempts=max_attempts,
        actor=actor,
        message=message,
    )
    for name, value in (fields or {}).items():
        setattr(job, name, value)
    db.session.add(job)
    db.session.flush()
    _add_log(job, "info", "queued", f"Job created by {actor}")
    db.session.commit()
    enqueue(job, timeout=timeout)
    return job


def enqueue(job: Job, *, timeout: float | None = None) -> None:
    """Put an existing (committed) job on the queue; on Redis failure mark it failed and raise 503."""
    queue = redis_holder(current_app).queue
    job_timeout = int(timeout) if timeout else None
    try:
        queue.enqueue(
            JOB_FUNCTIONS[job.type],
            job.id,
            job_id=job.id,
            job_timeout=job_timeout,
            result_ttl=3600,
            failure_ttl=86400,
            description=f"{job.type} {job.target or ''}".strip(),
        )
    except redis.RedisError as exc:
        job.status, job.stage, job.error = "failed", "failed", f"queue unavailable: {exc}"
        job.message = "Could not queue the job: Redis is unavailable"
        job.finished_at = now()
        db.session.commit()
        raise Unavailable(
            "the job queue (Redis) is unavailable; try again when it is back",
            code="queue_unavailable",
            details={"jobId": job.id},
        ) from exc


def job_envelope(job: Job, status: str = "queued") -> dict[str, Any]:
    """The API's answer about a job it just queued, cancelled or retried: `{"status", "job", "jobUrl"}`."""
    return {"status": status, "job": job.to_dict(), "jobUrl": f"/jobs/{job.id}"}


def get_job(job_id: str) -> Job:
    """The job with that id (stale running jobs reaped first, so it never shows a dead job running), or NotFound."""
    reap_stale_jobs()
    # Ids are UUIDs; anything else (over-long, NUL bytes, …) cannot exist and is not sent to the database.
    job = db.session.get(Job, job_id) if _JOB_ID.fullmatch(job_id) else None
    if job is None:
        raise NotFound("job not found", code="job_not_found", details={"id": job_id})
    return job


def list_jobs(
    *,
    limit: int = 100,
    offset: int = 0,
    status: str | None = None,
    job_type: str | None = None,
    model_id: str | None = None,
) -> tuple[list[Job], int]:
    """Newest-first jobs matching the filters (applied before the limit, stale jobs reaped first), plus the total."""
    if status and status.lower() not in JOB_STATUSES:
        raise InvalidInput(
            f"unknown status {status!r}",
            code="invalid_status",
            details={"status": status, "allowed": list(JOB_STATUSES)},
        )
    limit = max(1, min(limit, MAX_LIMIT))
    reap_stale_jobs()
    stmt = select(Job)
    if status:
        stmt = stmt.where(Job.status == status.lower())
    if job_type:
        stmt = stmt.where(func.lower(Job.type) == job_type.lower())
    if model_id:
        stmt = stmt.where(func.lower(Job.model_id) == model_id.lower())
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(stmt.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(max(0, offset)))
    return list(rows), int(total)


def _add_log(job: Job, level: str, stage: str | None, message: str) -> JobLog:
    entry = JobLog(job_id=job.id, level=level, stage=stage, message=message[:4000])
    db.session.add(entry)
    return entry


def append_log(job: Job, level: str, stage: str | None, message: str, *, commit: bool = True) -> None:
    """Add a log line to a job."""
    _add_log(job, level, stage, message)
    if commit:
        db.session.commit()


def job_logs(job_id: str) -> list[JobLog]:
    """The log lines of a job, oldest first."""
    get_job(job_id)
    return list(db.session.scalars(select(JobLog).where(JobLog.job_id == job_id).order_by(JobLog.id)))


def start(job: Job, *, worker: str | None = None, message: str = "Running") -> None:
    """Mark a job running (a new attempt)."""
    job.attempt += 1
    job.status, job.stage, job.message = "running", "running", message
    job.error, job.cancelled_at, job.finished_at = None, None, None
    job.started_at = job.heartbeat_at = now()
    job.worker = worker
    _add_log(job, "info", "running", f"Attempt {job.attempt} started")
    db.session.commit()


def complete(job: Job, *, result: dict[str, Any] | None = None, message: str = "Done") -> None:
    """Mark a job completed."""
    job.status, job.stage, job.message, job.progress = "completed", "completed", message, 100
    job.result = result
    job.finished_at = now()
    job.eta_seconds = 0
    _add_log(job, "info", "completed", message)
    db.session.commit()
    _count_finished(job)


def _count_finished(job: Job) -> None:
    """Prometheus: one count and one duration per finished attempt (the one place that times jobs)."""
    JOBS_TOTAL.labels(job.type, job.status).inc()
    if job.started_at is not None and job.finished_at is not None:
        JOB_DURATION.labels(job.type, job.status).observe(max(0.0, (job.finished_at - job.started_at).total_seconds()))


def fail(job: Job, error: str, *, stage: str = "failed") -> None:
    """Mark a job failed with a reason a person can read."""
    job.status, job.stage, job.message, job.error = "failed", stage, error, error
    job.finished_at = now()
    job.rate, job.eta_seconds = None, None
    _add_log(job, "error", stage, error)
    db.session.commit()
    _count_finished(job)


def run_noop(job_id: str) -> None:
    """The trivial job: proves create → enqueue → worker → completed end to end."""
    job = db.session.get(Job, job_id)
    if job is None or job.status != "pending":
        return  # cancelled, or its row is gone (e.g. purged) before a worker picked it up
    start(job, message="Doing nothing, successfully")
    deadline = time.monotonic() + float((job.payload or {}).get("sleepSeconds", 0.0))
    while time.monotonic() < deadline:
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        db.session.refresh(job)
        if job.status != "running":
            return  # cancelled meanwhile
    complete(job, result={"ok": True}, message="Nothing to do")


def cancel_job(job_id: str, *, actor: str) -> Job:
    """Cancel a pending or running job; a running one is stopped on its worker (RQ stop-job)."""
    job = get_job(job_id)
    if job.status not in ("pending", "running"):
        raise Conflict(
            f"job is {job.status}, only pending or running jobs can be cancelled",
            code="job_not_cancellable",
            details={"status": job.status},
        )
    was_running = job.status == "running"
    job.status, job.stage, job.message, job.error = (
        "cancelled",
        "cancelled",
        f"Cancelled by {actor}",
        "cancelled",
    )
    job.cancelled_at = job.finished_at = now()
    job.rate, job.eta_seconds = None, None
    _add_log(job, "warn", "cancelled", f"Job cancelled by {actor}")
    db.session.commit()
    _count_finished(job)
    connection = redis_holder(current_app).connection
    try:
        if was_running:
            send_stop_job_command(connection, job.id)
        else:
            RQJob.fetch(job.id, connection=connection).cancel()
    except (NoSuchJobError, InvalidJobOperation):
        pass  # already gone from RQ: the row says cancelled and the worker checks the row.
    except redis.RedisError as exc:
        log.warning("could not reach Redis to stop job %s: %s", job.id, exc)
    return job


def retry_job(job_id: str, *, actor: str) -> Job:
    """Requeue a failed or cancelled job; the job resumes where its work allows."""
    job = get_job(job_id)
    if job.status not in ("failed", "cancelled"):
        raise Conflict(
            f"job is {job.status}, only failed or cancelled jobs can be retried",
            code="job_not_retryable",
            details={"status": job.status},
        )
    job.status, job.stage, job.message, job.error = "pending", "queued", "Retry requested", None
    job.cancelled_at = job.finished_at = None
    job.rate = job.eta_seconds = None
    if job.max_attempts and job.attempt >= job.max_attempts:
        job.max_attempts = job.attempt + 1  # an operator's retry is always allowed one more attempt
    _add_log(job, "info", "queued", f"Retry requested by {actor}")
    db.session.commit()
    enqueue(job, timeout=(job.payload or {}).get("timeoutSeconds"))
    return job


def purge_jobs(*, status: str | None, actor: str) -> int:
    """Delete finished jobs (all finished, or those with one status); running jobs are never deleted."""
    if status and status.lower() not in JOB_STATUSES:
        raise InvalidInput(f"unknown status {status!r}", code="invalid_status", details={"allowed": list(JOB_STATUSES)})
    statuses = [status.lower()] if status else list(FINISHED_STATUSES)
    if any(s not in FINISHED_STATUSES for s in statuses):
        raise Conflict("only finished jobs can be deleted", code="jobs_active")
    rows = db.session.scalars(select(Job).where(Job.status.in_(statuses))).all()
    for row in rows:
        db.session.delete(row)
    history.record("jobs_purged", actor=actor, metadata={"status": status or "", "count": len(rows)}, commit=False)
    db.session.commit()
    return len(rows)


def fail_if_active(job_id: str, reason: str) -> bool:
    """Mark a job failed when it is still pending/running (used when RQ or a reaper gives up on it)."""
    job = db.session.get(Job, job_id)
    if job is None or job.status not in ("pending", "running"):
        return False
    fail(job, reason)
    return True


SHUTDOWN_REASON = "stopped: the portal was shut down; retry resumes"


def stop_for_shutdown(job_id: str) -> bool:
    """Fail a running job because its worker is shutting down (the job's code sees it and stops)."""
    job = db.session.get(Job, job_id)
    if job is None or job.status not in ("pending", "running"):
        return False
    fail(job, SHUTDOWN_REASON, stage="stopped")
    _on_reaped(job)
    return True


def stale_after() -> float:
    """Seconds without a heartbeat after which a running job counts as dead (env JOB_STALE_AFTER)."""
    override = current_app.config.get("JOB_STALE_AFTER")
    if override is not None:
        return float(override)
    return float(current_settings().job_stale_after)


def reap_stale_jobs(*, bound: float | None = None, min_interval: float = 1.0) -> int:
    """Fail running heartbeat jobs whose worker stopped beating (killed worker); returns how many."""
    global _last_reap
    if not HEARTBEAT_TYPES:
        return 0
    clock = time.monotonic()
    if min_interval and clock - _last_reap < min_interval:
        return 0  # lazily called on every GET: one query per second per process is plenty
    _last_reap = clock
    seconds = bound if bound is not None else stale_after()
    cutoff = now() - timedelta(seconds=seconds)
    rows = db.session.scalars(
        select(Job).where(
            Job.status == "running",
            Job.type.in_(sorted(HEARTBEAT_TYPES)),
            Job.heartbeat_at < cutoff,
        )
    ).all()
    for row in rows:
        log.warning("job %s sent no heartbeat for %.0f s: marking it failed", row.id, seconds)
        fail(row, f"worker died: no heartbeat for {seconds:.0f} s (retry resumes the work)")
        _on_reaped(row)
    return len(rows)


def requeue_lost_jobs(*, min_age: float | None = None) -> int:
    """Put pending jobs back on the queue when Redis no longer has them (it restarted empty); returns how many.

    The row is the truth: a job the database says is pending but that RQ does not know would otherwise
    wait forever. Only rows untouched for `min_age` (default JOB_STALE_AFTER) count, so a job between its
    commit and its enqueue is never queued twice; a job queued twice anyway runs once, because every job
    function starts only from `pending`.
    """
    seconds = min_age if min_age is not None else stale_after()
    cutoff = now() - timedelta(seconds=seconds)
    rows = db.session.scalars(select(Job).where(Job.status == "pending", Job.updated_at <= cutoff)).all()
    if not rows:
        return 0
    connection = redis_holder(current_app).connection
    lost = [row for row in rows if not RQJob.exists(row.id, connection=connection)]
    for row in lost:
        log.warning("job %s is pending but unknown to Redis (restarted without its data): queueing it again", row.id)
        _add_log(row, "warn", "queued", "Queued again: the job queue (Redis) had lost it")
        row.message = "Queued again after the job queue restarted"
        db.session.commit()
        enqueue(row, timeout=(row.payload or {}).get("timeoutSeconds"))
    return len(lost)


# Area hooks run after a job is reaped (history records, metrics); type → callable(job).
REAP_HOOKS: dict[str, Any] = {}


def _on_reaped(job: Job) -> None:
    hook = REAP_HOOKS.get(job.type)
    if hook is None:
        return
    try:
        hook(job)
    except Exception:  # bookkeeping must not stop the reaper
        log.exception("reap hook failed for job %s", job.id)
        db.session.rollback()
