"""Migrations run up (and down) on an empty database of the configured backend."""

from __future__ import annotations

from pathlib import Path

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
