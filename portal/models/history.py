"""History: an append-only record of everything the portal did, with the acting user."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models._types import UTCDateTime, compact, iso, utcnow


class HistoryEvent(db.Model):  # type: ignore[name-defined,misc]
    """One history record (reference §6.5) plus the actor."""

    __tablename__ = "history_events"
    __table_args__ = (
        Index("ix_history_events_created_at", "created_at"),
        Index("ix_history_events_event", "event"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str | None] = mapped_column(String(256))
    # "metadata" is reserved on declarative classes, so the attribute is `meta`.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(256), default="anonymous")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict[str, Any]:
        """The record as the API shows it."""
        return compact(
            {
                "id": str(self.id),
                "event": self.event,
                "modelId": self.model_id or None,
                "metadata": self.meta or None,
                "actor": self.actor,
                "createdAt": iso(self.created_at),
            }
        )
