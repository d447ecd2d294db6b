"""History service: records, filters, `since`, CSV export and clearing in one transaction."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import HistoryEvent
from portal.services import history


def test_record_query_filters_and_paginates(app: Flask) -> None:
    for i in range(5):
        history.record("model_activated", actor="alice", model_id=f"m{i}", metadata={"n": i})
    history.record("weights_deleted", actor="bob", model_id="M1")
    rows, total = history.query_events(limit=2)
    assert total == 6 and [r.event for r in rows] == ["weights_deleted", "model_activated"]  # newest first
    rows, total = history.query_events(event="MODEL_ACTIVATED", limit=10, offset=3)
    assert total == 5 and [r.model_id for r in rows] == ["m1", "m0"]
    rows, total = history.query_events(model_id="m1")  # ids compare without case, as the original did
    assert total == 2 and {r.actor for r in rows} == {"alice", "bob"}
    assert history.query_events(limit=10_000)[0] == history.query_events(limit=history.MAX_LIMIT)[0]


def test_since_accepts_durations_and_rfc3339_and_refuses_the_rest(app: Flask) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert history.parse_since("24h", now) == now - timedelta(hours=24)
    assert history.parse_since("1h30m", now) == now - timedelta(minutes=90)
    assert history.parse_since("2026-11-30T10:00:00+02:00", now) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert history.parse_since("", now) is None
    for bad in ("yesterday", "2026-11-30", " 24h", "2026-13-01T00:00:00Z"):
        with pytest.raises(InvalidInput) as info:
            history.parse_since(bad, now)
        assert info.value.code == "invalid_since"
    old = history.record("model_activated", actor="a", model_id="old")
    old.created_at = datetime.now(UTC) - timedelta(days=3)
    db.session.commit()
    history.record("model_activated", actor="a", model_id="new")
    rows, total = history.query_events(since=history.parse_since("24h"))
    assert total == 1 and rows[0].model_id == "new"


def test_csv_export_has_one_row_per_record_and_json_metadata(app: Flask) -> None:
    history.record("weights_deleted", actor="carol", model_id="acme/x", metadata={"path": "acme/x", "force": True})
    history.record("history_note", actor='quote "and" comma, too')
    rows, _ = history.query_events()
    parsed = list(csv.reader(io.StringIO(history.to_csv(rows))))
    assert parsed[0] == ["timestamp", "event", "modelId", "actor", "metadata"]
    assert [r[1] for r in parsed[1:]] == ["history_note", "weights_deleted"]
    assert parsed[1][3] == 'quote "and" comma, too' and parsed[1][2] == ""
    assert json.loads(parsed[2][4]) == {"force": True, "path": "acme/x"}


def test_clear_leaves_one_record_naming_the_actor(app: Flask) -> None:
    for i in range(3):
        history.record("model_activated", actor="alice", model_id=f"m{i}")
    assert history.clear(actor="dave") == 3
    rows = db.session.query(HistoryEvent).all()
    assert [(r.event, r.actor, r.meta) for r in rows] == [("history_cleared", "dave", {"deleted": 3})]
    assert history.last_event("history_cleared").actor == "dave"
    assert history.last_event("model_activated") is None
