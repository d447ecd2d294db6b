"""Catalog pull request jobs: open one, and the periodic poll of open ones."""

from __future__ import annotations

from jobs import app_context
from portal.extensions import db


def open_pull_request(job_id: str) -> None:
    """Commit, push and open the PR (portal.services.catalog_pr.run_pull_request)."""
    with app_context():
        from portal.services import catalog_pr

        try:
            catalog_pr.run_pull_request(job_id)
        finally:
            db.session.remove()


def poll() -> None:
    """Periodic: record merged/closed PRs and close pending rows the synced catalog now serves."""
    with app_context():
        from portal.services import catalog_pr

        try:
            catalog_pr.poll_open()
        finally:
            db.session.remove()
