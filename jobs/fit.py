"""Fit jobs: measure what vLLM reserved after an activation."""

from __future__ import annotations

from jobs import app_context
from portal.extensions import db


def measure_startup(job_id: str) -> None:
    """Read the predictor's start-up log and record predicted vs measured (portal.services.fit_measurement)."""
    with app_context():
        from portal.services import fit_measurement

        try:
            fit_measurement.run_measurement(job_id)
        finally:
            db.session.remove()
