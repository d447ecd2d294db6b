"""The RQ worker class: app context inherited by each forked work horse, fresh DB pool per horse."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from rq import Worker
from rq.job import Job as RQJob
from rq.queue import Queue

from portal.extensions import db

log = logging.getLogger(__name__)


class PortalWorker(Worker):
    """RQ worker that keeps the Job rows truthful when a horse dies or times out."""

    app: Flask | None = None
    # Maintenance (registry cleaning + our stale-job reaper) runs when idle at most this often.
    reap_interval = 15

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", self.reap_interval)
        super().__init__(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleaning, then mark jobs of dead workers (stale heartbeat) failed."""
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        try:
            from portal.services import jobs as job_service
            from portal.services import periodic

            job_service.reap_stale_jobs(min_interval=0)
            periodic.run_due()  # catalog PR polling, volume alert, readiness watch (services/periodic.py)
        except Exception:  # the worker must survive bookkeeping errors
            log.exception("could not reap stale jobs")
            db.session.rollback()
        finally:
            db.session.remove()

    def main_work_horse(self, job: RQJob, queue: Queue) -> None:
        """In the forked child: never reuse the parent's database connections."""
        db.engine.dispose(close=False)
        super().main_work_horse(job, queue)

    def handle_job_failure(
        self, job: RQJob, queue: Queue, started_job_registry: Any = None, exc_string: str = ""
    ) -> None:
        """RQ gave up on a job (timeout, killed horse): mirror it on our row if it still says running."""
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)
        try:
            from portal.services import jobs as job_service

            job_service.fail_if_active(job.id, _failure_reason(exc_string))
        except Exception:  # the worker must survive bookkeeping errors
            log.exception("could not record failure of job %s", job.id)
            db.session.rollback()
        finally:
            db.session.remove()


def _failure_reason(exc_string: str) -> str:
    text = (exc_string or "").strip()
    if "JobTimeoutException" in text or "timeout" in text.lower():
        return "the job ran longer than its time limit (WEIGHTS_INSTALL_TIMEOUT) and was stopped"
    if "horse" in text.lower() or "killed" in text.lower() or not text:
        return "the worker process running this job died"
    last = text.splitlines()[-1] if text else "unknown error"
    return f"the job failed: {last[:500]}"
