"""Migrations run up (and down) on an empty database of the configured backend."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from portal import create_app
from portal.config import Settings
from portal.extensions import db
from tests.conftest import PG_BASE, ROOT, base_env, database_backend, worker_id


def _settings(tmp_path: Path) -> Settings:
    env = base_env(tmp_path)
    if database_backend() == "postgres":
        schema = f"mm_migr_{worker_id()}"
        engine = create_engine(PG_BASE)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        env.update(DATASTORE_DRIVER="postgres", DATASTORE_DSN=f"{PG_BASE}?options=-csearch_path%3D{schema}")
    else:
        env["DATASTORE_DSN"] = str(tmp_path / "fresh.db")
    return Settings.from_env(env)


def test_upgrade_creates_tables_on_an_empty_database_and_downgrade_removes_them(tmp_path: Path) -> None:
    app = create_app({"settings": _settings(tmp_path)})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        tables = set(inspect(db.engine).get_table_names())
        assert {"jobs", "job_logs", "history_events", "alembic_version"} <= tables
        columns = {c["name"] for c in inspect(db.engine).get_columns("jobs")}
        assert {"actor", "status", "progress", "bytes_done", "bytes_total", "payload", "result"} <= columns
        assert "actor" in {c["name"] for c in inspect(db.engine).get_columns("history_events")}
        downgrade(directory=str(ROOT / "migrations"), revision="base")
        assert "jobs" not in set(inspect(db.engine).get_table_names())
        db.engine.dispose()


def test_models_match_the_migrations(app: object) -> None:
    """Autogenerate finds nothing to add: the models and the migration history agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


@pytest.mark.skipif(database_backend() != "postgres", reason="several replicas share PostgreSQL only")
def test_replicas_starting_together_all_migrate(tmp_path: Path) -> None:
    """Every web/worker pod runs `flask db upgrade` at start; when they start at once, none fails.

    An uncommitted `alembic_version` table holds every replica at the same point; rolling it back
    releases them together, which is when unserialized migrations collide.
    """
    schema = f"mm_race_{worker_id()}"
    engine = create_engine(PG_BASE)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    env = {
        **os.environ,
        **base_env(tmp_path),
        "DATASTORE_DRIVER": "postgres",
        "DATASTORE_DSN": f"{PG_BASE}?options=-csearch_path%3D{schema}",
    }
    flask = str(Path(sys.executable).parent / "flask")
    gate = engine.connect()
    barrier = gate.begin()
    gate.execute(text(f'CREATE TABLE "{schema}".alembic_version (version_num varchar(32) PRIMARY KEY)'))
    replicas = [
        subprocess.Popen(
            [flask, "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(3)
    ]
    try:
        with engine.connect() as watcher:
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            deadline = time.monotonic() + 90
            while watcher.execute(waiting).scalar() < len(replicas) and time.monotonic() < deadline:
                time.sleep(0.1)
                watcher.rollback()
    finally:
        barrier.rollback()
        gate.close()
    outputs = [p.communicate(timeout=120)[0].decode() for p in replicas]
    assert [p.returncode for p in replicas] == [0] * len(replicas), outputs
    with engine.connect() as conn:
        versions = conn.execute(text(f'SELECT count(*) FROM "{schema}".alembic_version')).scalar()
        tables = set(inspect(conn).get_table_names(schema=schema))
    engine.dispose()
    assert versions == 1 and {"jobs", "history_events"} <= tables
