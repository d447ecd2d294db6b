"""The Job row: the source of truth for background work (the RQ job id equals `id`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.models._types import UTCDateTime, compact, iso, utcnow

JOB_STATUSES = ("pending", "running", "completed", "failed", "cancelled")
FINISHED_STATUSES = ("completed", "failed", "cancelled")


def new_job_id() -> str:
    """A fresh UUIDv4 string."""
    return str(uuid.uuid4())


class Job(db.Model):  # type: ignore[name-defined,misc]
    """One unit of background work with its progress."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_type", "type"),
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_target", "target"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_job_id)
    type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    stage: Mapped[str | None] = mapped_column(String(32), default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str | None] = mapped_column(String(512))
    model_id: Mapped[str | None] = mapped_column(String(256))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    rate: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    current_file: Mapped[str | None] = mapped_column(String(1024))
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    files_total: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(256), default="anonymous")
    worker: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    logs: Mapped[list[JobLog]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="JobLog.id", lazy="select"
    )

    @property
    def finished(self) -> bool:
        """True once the job cannot change any more without a retry."""
        return self.status in FINISHED_STATUSES

    def to_dict(self) -> dict[str, Any]:
        """The job as the API shows it (reference §6.1 names plus progress detail)."""
        percent = self.progress
        return compact(
            {
                "id": self.id,
                "type": self.type,
                "status": self.status,
                "stage": self.stage,
                "progress": percent,
                "message": self.message,
                "payload": self.payload or {},
                "result": self.result,
                "error": self.error or None,
                "attempt": self.attempt,
                "maxAttempts": self.max_attempts,
                "actor": self.actor,
                "target": self.target,
                "modelId": self.model_id,
                "bytesDone": self.bytes_done,
                "bytesTotal": self.bytes_total,
                "rate": self.rate,
                "etaSeconds": self.eta_seconds,
                "currentFile": self.current_file,
                "filesDone": self.files_done,
                "filesTotal": self.files_total,
                "createdAt": iso(self.created_at),
                "updatedAt": iso(self.updated_at),
                "startedAt": iso(self.started_at),
                "finishedAt": iso(self.finished_at),
                "cancelledAt": iso(self.cancelled_at),
            }
        )


class JobLog(db.Model):  # type: ignore[name-defined,misc]
    """One log line of a job."""

    __tablename__ = "job_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), default="info")
    stage: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)

    job: Mapped[Job] = relationship(back_populates="logs")

    def to_dict(self) -> dict[str, Any]:
        """The log line as the API shows it."""
        return compact(
            {
                "timestamp": iso(self.timestamp),
                "level": self.level,
                "stage": self.stage,
                "message": self.message,
            }
        )
