"""History: record what the portal did and query it (reference §6.5)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from portal.config import parse_duration
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


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """`since` as a duration (`24h`) before now or an RFC 3339 time; InvalidInput otherwise."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    now = now or datetime.now(UTC)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            "since must be a duration such as 24h or an RFC 3339 time",
            code="invalid_since",
            details={"since": text},
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


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


def clear() -> int:
    """Delete every record; returns how many."""
    count = db.session.query(HistoryEvent).delete()
    db.session.commit()
    return int(count)


def last_event(event: str, *, model_id: str | None = None) -> HistoryEvent | None:
    """The newest record of one kind."""
    stmt = select(HistoryEvent).where(HistoryEvent.event == event)
    if model_id:
        stmt = stmt.where(HistoryEvent.model_id == model_id)
    return db.session.scalars(stmt.order_by(HistoryEvent.id.desc()).limit(1)).first()
