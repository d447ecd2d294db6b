"""History: record what the portal did and query it (reference §6.5)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from portal.config import DURATION_PATTERN, parse_duration
from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import HistoryEvent

MAX_LIMIT = 200


def record(
    event: str,
    *,
    actor: str,
    model_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    commit: bool = True,
) -> HistoryEvent:
    """Append one history record; commits unless the caller's unit of work does."""
    row = HistoryEvent(event=event, model_id=model_id or None, meta=metadata or {}, actor=actor)
    db.session.add(row)
    if commit:
        db.session.commit()
    return row


# RFC 3339 `date-time` (the OpenAPI format of `since`); the calendar is checked by datetime.fromisoformat.
RFC3339_RE = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_DURATION_RE = re.compile(DURATION_PATTERN)
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`since` as a duration before now (`24h`, `1h30m`, `90`) or an RFC 3339 time, in UTC; InvalidInput otherwise.

    Empty means no filter. A duration reaching before year 1, or a time whose offset pushes it past year 1
    or 9999, is clamped to the earliest/latest time: a valid filter that matches everything/nothing.
    """
    if not value:
        return None
    now = now or datetime.now(UTC)
    if _DURATION_RE.fullmatch(value):
        try:
            return now - timedelta(seconds=parse_duration(value))
        except OverflowError:
            return _EARLIEST
    try:
        if not RFC3339_RE.fullmatch(value):
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            "since must be a duration such as 24h or an RFC 3339 time such as 2026-01-31T12:00:00Z",
            code="invalid_since",
            details={"since": value},
        ) from None
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return _EARLIEST if parsed.year == 1 else _LATEST


def query_events(
    *,
    limit: int = 100,
    offset: int = 0,
    event: str | None = None,
    model_id: str | None = None,
    since: datetime | None = None,
) -> tuple[list[HistoryEvent], int]:
    """Newest-first records matching the filters, and the total count for pagination."""
    limit = max(1, min(limit, MAX_LIMIT))
    stmt = select(HistoryEvent)
    if event:
        stmt = stmt.where(func.lower(HistoryEvent.event) == event.strip().lower())
    if model_id:
        stmt = stmt.where(func.lower(HistoryEvent.model_id) == model_id.strip().lower())
    if since is not None:
        stmt = stmt.where(HistoryEvent.created_at >= since)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(
        stmt.order_by(HistoryEvent.created_at.desc(), HistoryEvent.id.desc()).limit(limit).offset(max(0, offset))
    ).all()
    return list(rows), int(total)


def to_csv(rows: list[HistoryEvent]) -> str:
    """CSV export with header `timestamp,event,modelId,actor,metadata` (metadata as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["timestamp", "event", "modelId", "actor", "metadata"])
    for row in rows:
        data = row.to_dict()
        writer.writerow(
            [
                data.get("createdAt", ""),
                row.event,
                row.model_id or "",
                row.actor,
                json.dumps(row.meta or {}, sort_keys=True),
            ]
        )
    return out.getvalue()


def clear(*, actor: str) -> int:
    """Delete every record and leave one `history_cleared` naming the actor, in one transaction; returns how many."""
    count = int(db.session.query(HistoryEvent).delete())
    record("history_cleared", actor=actor, metadata={"deleted": count}, commit=False)
    db.session.commit()
    return count


def last_event(event: str, *, model_id: str | None = None) -> HistoryEvent | None:
    """The newest record of one kind."""
    stmt = select(HistoryEvent).where(HistoryEvent.event == event)
    if model_id:
        stmt = stmt.where(HistoryEvent.model_id == model_id)
    return db.session.scalars(stmt.order_by(HistoryEvent.id.desc()).limit(1)).first()
