"""Shared fixtures: real Redis (own db number, flushed), SQLite or PostgreSQL (TEST_DATABASE=postgres)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from portal import create_app
from portal.config import Settings
from portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent
# Each area's fixtures live in tests/support/fixtures_<area>.py; all are loaded here.
pytest_plugins = sorted(f"tests.support.{p.stem}" for p in (ROOT / "tests" / "support").glob("fixtures_*.py"))
SHARED = ROOT.parent / "shared"
PG_BASE = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def worker_id() -> str:
    """The xdist worker name (`gw0`, …) or `main`."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def worker_number() -> int:
    wid = worker_id()
    return int(wid[2:]) if wid.startswith("gw") else 0


def database_backend() -> str:
    """`sqlite` (default) or `postgres`."""
    return os.environ.get("TEST_DATABASE", "sqlite").lower()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis database number of our own (9 for a plain run, 10+ per xdist worker)."""
    number = 9 if worker_id() == "main" else 10 + worker_number()
    return f"{REDIS_BASE}/{number}"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on the test's Redis database, flushed before the test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


def _run_migrations(settings: Settings) -> None:
    from flask_migrate import upgrade

    app = create_app({"settings": settings})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Migrate once per session: a template SQLite file, or a PostgreSQL schema per xdist worker."""
    base = base_env(tmp_path_factory.mktemp("migrate"))
    if database_backend() == "postgres":
        schema = f"mm_{worker_id()}"
        engine = create_engine(PG_BASE)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        dsn = f"{PG_BASE}?options=-csearch_path%3D{schema}"
        _run_migrations(Settings.from_env({**base, "DATASTORE_DRIVER": "postgres", "DATASTORE_DSN": dsn}))
        return {"DATASTORE_DRIVER": "postgres", "DATASTORE_DSN": dsn}
    template = tmp_path_factory.mktemp("dbtemplate") / "template.db"
    _run_migrations(Settings.from_env({**base, "DATASTORE_DSN": str(template)}))
    return {"DATASTORE_DRIVER": "sqlite", "TEMPLATE": str(template)}


def base_env(tmp: Path) -> dict[str, str]:
    """Environment for a test app: everything local to tmp, test mode, no real outside services."""
    (tmp / "catalog" / "models").mkdir(parents=True, exist_ok=True)
    (tmp / "weights").mkdir(parents=True, exist_ok=True)
    return {
        "MODEL_MANAGER_ENV": "test",
        "SECRET_KEY": "test-secret-key",
        "STATE_PATH": str(tmp / "state"),
        "MODEL_CATALOG_ROOT": str(tmp / "catalog"),
        "WEIGHTS_STORAGE_PATH": str(tmp / "weights"),
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens there: tests that need a Hub start one
        "GITHUB_API_URL": "http://127.0.0.1:9",
        "KUBECONFIG": str(tmp / "no-kubeconfig"),
        "RQ_QUEUE": f"mm-test-{worker_id()}",
    }


@pytest.fixture
def app_env(
    tmp_path: Path, migrated_database: dict[str, str], redis_url: str, redis_client: redis.Redis
) -> dict[str, str]:
    """The environment of this test's app (also what a worker subprocess needs)."""
    env = base_env(tmp_path)
    env["REDIS_URL"] = redis_url
    if migrated_database["DATASTORE_DRIVER"] == "postgres":
        env.update(DATASTORE_DRIVER="postgres", DATASTORE_DSN=migrated_database["DATASTORE_DSN"])
        engine = create_engine(migrated_database["DATASTORE_DSN"])
        with engine.begin() as conn:
            tables = [
                row[0]
                for row in conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ]
            if tables:
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        target = tmp_path / "state" / "model-manager.db"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated_database["TEMPLATE"], target)
        env["DATASTORE_DSN"] = str(target)
    return env


@pytest.fixture
def make_app(app_env: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Build apps for this test: `make_app(MODEL_MANAGER_API_TOKEN="x", ...)` (env names) or settings fields."""
    from tests.support import fixtures_secrets  # imported by pytest as a plugin first (pytest_plugins)

    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        env = dict(app_env)
        fields = {k: v for k, v in overrides.items() if k.islower()}
        env.update({k: str(v) for k, v in overrides.items() if k.isupper()})
        app_env.update({k: str(v) for k, v in overrides.items() if k.isupper()})
        settings = Settings.from_env(env)
        fixtures_secrets.register_secrets(settings)
        app = create_app({"settings": settings, **fields})
        app.config.update(TESTING=True)
        fixtures_secrets.add_app_scan(app)
        apps.append(app)
        return app

    yield factory
    from portal.services.cluster_watch import stop_watcher

    for app in apps:
        stop_watcher(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Iterator[Flask]:
    """A test app with auth off, pushed as the current app context."""
    application = make_app()
    with application.app_context():
        yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of `app`."""
    return app.test_client()


def subprocess_env(app_env: dict[str, str]) -> dict[str, str]:
    """os.environ plus the test app's settings, for worker / gunicorn subprocesses (their secrets are registered)."""
    from tests.support import fixtures_secrets

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PROMETHEUS_"))}
    env.update(app_env)
    env.pop("TEMPLATE", None)
    fixtures_secrets.register_secrets(env)
    return env
