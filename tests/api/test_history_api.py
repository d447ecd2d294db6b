"""History API: filters, the CSV export and clearing (one transaction that leaves who cleared it)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import event

from portal.extensions import db
from portal.models import HistoryEvent
from portal.services import history

TOKEN = "mm-history-api-token-51c0de"


def _seed() -> None:
    history.record("model_activated", actor="alice", model_id="tiny-gpt2-test", metadata={"action": "created"})
    history.record(
        "weights_deleted",
        actor="bob",
        model_id="acme/x",
        metadata={"note": 'a "quoted", comma\nand a newline', "sizeBytes": 12},
    )
    old = history.record("model_deactivated", actor="carol", commit=False)
    old.created_at = datetime.now(UTC) - timedelta(days=3)
    db.session.commit()


def test_csv_export_is_a_parseable_download_with_the_filters_applied(app: Flask) -> None:
    _seed()
    client = app.test_client()
    response = client.get("/history?format=csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == "attachment; filename=history.csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0] == ["timestamp", "event", "modelId", "actor", "metadata"]
    assert [row[1] for row in rows[1:]] == ["weights_deleted", "model_activated", "model_deactivated"]  # newest first
    deleted = rows[1]
    assert deleted[2:4] == ["acme/x", "bob"]
    assert json.loads(deleted[4]) == {"note": 'a "quoted", comma\nand a newline', "sizeBytes": 12}
    assert datetime.fromisoformat(deleted[0].replace("Z", "+00:00")) <= datetime.now(UTC)

    recent = client.get("/history?format=csv&since=24h").get_data(as_text=True)
    assert [row[1] for row in csv.reader(io.StringIO(recent))][1:] == ["weights_deleted", "model_activated"]
    one = client.get("/history?format=csv&event=MODEL_ACTIVATED").get_data(as_text=True)
    assert [row[3] for row in csv.reader(io.StringIO(one))][1:] == ["alice"]


def test_since_takes_a_duration_or_an_rfc3339_time_and_refuses_anything_else(app: Flask) -> None:
    _seed()
    client = app.test_client()
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert client.get(f"/history?since={two_days_ago}").json["total"] == 2
    assert client.get("/history?since=1h30m").json["total"] == 2
    assert client.get("/history?since=").json["total"] == 3
    assert client.get("/history?since=0001-01-01T00:00:00%2B23:59").json["total"] == 3  # clamped, not a 500
    for bad in ("yesterday", "2024-02-30T00:00:00Z", "2024-01-01", " 24h"):
        response = client.get("/history", query_string={"since": bad})
        assert response.status_code == 400, bad
        assert response.json["code"] == "invalid_since" and response.json["details"] == {"since": bad}


def test_delete_clears_everything_and_records_who_did_it(make_app: Callable[..., Flask]) -> None:
    app = make_app(MODEL_MANAGER_API_TOKEN=TOKEN)
    with app.app_context():
        _seed()
    # Requests outside the test's app context: each gets its own, as under a server (the actor lives on `g`).
    client = app.test_client()
    refused = client.delete("/history")
    assert refused.status_code == 401 and refused.json["code"] == "unauthorized"
    assert client.get("/history").json["total"] == 3  # nothing lost

    response = client.delete("/history", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response.json == {"status": "cleared", "deleted": 3}
    events = client.get("/history").json["events"]
    assert [(e["event"], e["actor"], e["metadata"]) for e in events] == [
        ("history_cleared", "api-token", {"deleted": 3})
    ]


def test_clear_is_one_transaction(app: Flask) -> None:
    """The delete and the record that says so commit together (no moment with an empty, unexplained history)."""
    _seed()
    commits: list[int] = []
    listener = lambda session: commits.append(session.query(HistoryEvent).count())  # noqa: E731
    event.listen(db.session(), "before_commit", listener)
    try:
        assert history.clear(actor="tester") == 3
    finally:
        event.remove(db.session(), "before_commit", listener)
    assert commits == [1]  # one commit, and what it commits is the single history_cleared record
    assert [(e.event, e.actor) for e in history.query_events()[0]] == [("history_cleared", "tester")]
