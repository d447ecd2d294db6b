"""Weight install jobs."""

from __future__ import annotations

import os

from jobs import app_context
from portal.extensions import db


def install_weights(job_id: str) -> None:
    """Download, verify and publish one install (portal.services.weights.run_install)."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    with app_context():
        from portal.services import weights

        try:
            weights.run_install(job_id)
        finally:
            db.session.remove()


def sweep_staging() -> None:
    """Periodic: remove staging dirs of cancelled or superseded installs older than STAGING_MAX_AGE."""
    with app_context():
        from portal.services import weights

        try:
            weights.sweep_staging()
        finally:
            db.session.remove()
