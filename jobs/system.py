"""System jobs."""

from __future__ import annotations

from jobs import app_context
from portal.extensions import db
from portal.services import jobs as job_service


def noop(job_id: str) -> None:
    """Run the no-op job (end-to-end proof of the queue)."""
    with app_context():
        try:
            job_service.run_noop(job_id)
        finally:
            db.session.remove()
