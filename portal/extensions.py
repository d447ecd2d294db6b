"""Extension singletons (no app here): database, migrations, API, CSRF, htmx, Redis/RQ holder."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from htmx_flask import Htmx
from rq import Queue
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from portal.config import Settings
from portal.schemas.common import ErrorSchema

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PortalApi(Api):  # type: ignore[misc]
    """flask-smorest's Api documenting our `{"error","code","details"}` body as every error response."""

    ERROR_SCHEMA = ErrorSchema


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
api = PortalApi()
csrf = CSRFProtect()
htmx = Htmx()


class RedisHolder:
    """Owns the Redis connection and the RQ queue of one app; created lazily, cheap to share."""

    def __init__(self, url: str, queue_name: str) -> None:
        self.url = url
        self.queue_name = queue_name
        self._connection: redis.Redis | None = None
        self._queue: Queue | None = None

    @property
    def connection(self) -> redis.Redis:
        """The shared Redis client (short timeouts so a dead Redis answers quickly)."""
        if self._connection is None:
            self._connection = redis.Redis.from_url(
                self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
            )
        return self._connection

    @property
    def queue(self) -> Queue:
        """The RQ queue jobs are enqueued on."""
        if self._queue is None:
            self._queue = Queue(self.queue_name, connection=self.connection)
        return self._queue

    def reset(self) -> None:
        """Drop connections (after fork, or when the URL changes in tests)."""
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._queue = None


def redis_holder(app: Flask) -> RedisHolder:
    """The app's RedisHolder."""
    holder: Any = app.extensions["redis_holder"]
    assert isinstance(holder, RedisHolder)
    return holder


def current_settings() -> Settings:
    """The Settings of the current app (one accessor instead of reading app.config everywhere)."""
    value = current_app.config["SETTINGS"]
    assert isinstance(value, Settings)
    return value
