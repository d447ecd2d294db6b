"""The RQ worker class: app context inherited by each forked work horse, fresh DB pool per horse."""

from __future__ import annotations

import logging
import threading
from types import FrameType
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
    # After SIGTERM/SIGINT the running job is marked failed; its horse sees that within a second and
    # exits. One that has not after this many seconds is killed (its process group, as RQ does).
    shutdown_grace = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("maintenance_interval", self.reap_interval)
        super().__init__(*args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        """RQ's registry cleaning; fail jobs of dead workers, requeue jobs a restarted Redis lost, start due periodic tasks."""
        super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        try:
            from portal.services import jobs as job_service
            from portal.services import periodic

            job_service.reap_stale_jobs(min_interval=0)
            job_service.requeue_lost_jobs()
            periodic.run_due()  # staging sweep, catalog PR polling, volume alert, readiness watch (services/periodic.py)
        except Exception:  # the worker must survive bookkeeping errors
            log.exception("worker maintenance failed (reaper, lost-job requeue, periodic tasks)")
            db.session.rollback()
        finally:
            db.session.remove()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: fail the running job so its horse stops now (bounded), then RQ's warm shutdown."""
        job_id = self.get_current_job_id()
        if job_id and self.horse_pid:
            try:
                from portal.services import jobs as job_service

                job_service.stop_for_shutdown(job_id)
            except Exception:  # the shutdown must go on even when the database cannot be written
                log.exception("could not mark job %s stopped", job_id)
                db.session.rollback()
            finally:
                db.session.remove()
            timer = threading.Timer(self.shutdown_grace, self._kill_stuck_horse, args=(self.horse_pid,))
            timer.daemon = True
            timer.start()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]

    def _kill_stuck_horse(self, pid: int) -> None:
        if self.horse_pid == pid:
            log.warning("work horse %s did not stop within %.0f s; killing it", pid, self.shutdown_grace)
            self.kill_horse()

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
