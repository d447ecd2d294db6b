"""SQLAlchemy models only: no commits, no queries."""

from portal.models.calibration import FitCalibration
from portal.models.catalog_pr import CatalogPullRequest
from portal.models.history import HistoryEvent
from portal.models.job import Job, JobLog

__all__ = ["CatalogPullRequest", "FitCalibration", "HistoryEvent", "Job", "JobLog"]
