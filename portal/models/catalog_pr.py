"""A catalog change opened as a pull request, tracked until it is merged and synced (or closed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._types import UTCDateTime, compact, iso, utcnow

PR_STATES = ("open", "merged", "closed")


class CatalogPullRequest(db.Model):  # type: ignore[name-defined,misc]
    """One pull request the portal opened for a catalog entry."""

    __tablename__ = "catalog_pull_requests"
    __table_args__ = (
        Index("ix_catalog_pull_requests_state", "state"),
        Index("ix_catalog_pull_requests_model_id", "model_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(String(256))
    repo: Mapped[str] = mapped_column(String(256))
    number: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(String(1024))
    html_url: Mapped[str] = mapped_column(String(1024))
    branch: Mapped[str] = mapped_column(String(256))
    base: Mapped[str] = mapped_column(String(256))
    file: Mapped[str] = mapped_column(String(512))
    # sha256 of the file text: the merged change counts as synced once the live catalog serves it.
    content_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="open")
    title: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(256), default="anonymous")
    job_id: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    merged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def pending(self) -> bool:
        """Open, or merged but not yet served by the synced catalog."""
        return self.state == "open" or (self.state == "merged" and self.synced_at is None)

    def to_dict(self) -> dict[str, Any]:
        """The pull request as the API shows it."""
        return compact(
            {
                "id": self.id,
                "modelId": self.model_id,
                "repo": self.repo,
                "number": self.number,
                "url": self.url,
                "htmlUrl": self.html_url,
                "branch": self.branch,
                "base": self.base,
                "file": self.file,
                "state": self.state,
                "pending": self.pending,
                "title": self.title,
                "actor": self.actor,
                "jobId": self.job_id,
                "createdAt": iso(self.created_at),
                "updatedAt": iso(self.updated_at),
                "mergedAt": iso(self.merged_at),
                "closedAt": iso(self.closed_at),
                "syncedAt": iso(self.synced_at),
            }
        )
