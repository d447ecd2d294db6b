"""Model Manager: a Flask portal and JSON API for running LLMs on Kubernetes with KServe and vLLM."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, redirect, request, url_for
from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal.config import Settings

__version__ = "0.1.0"
ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("portal")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config → extensions → blueprints → errors → CLI.

    `overrides` may hold a ready `settings` object, Settings field names, or upper-case Flask config keys.
    """
    overrides = dict(overrides or {})
    settings = overrides.pop("settings", None) or Settings.from_env()
    field_changes = {k: overrides.pop(k) for k in list(overrides) if k.islower()}
    if field_changes:
        settings = settings.replace(**field_changes)

    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    _configure(app, settings)
    app.config.update(overrides)
    _configure_logging(app)
    _init_extensions(app, settings)
    from portal.services import discovery  # GPU profiles load at start-up: a bad file stops the app

    discovery.init_app(app)
    _register_job_types()
    _register_info_sections(app)
    _register_blueprints(app)
    _register_request_hooks(app)
    from portal.services import cluster_watch  # one watcher per cluster, elected among the web processes

    cluster_watch.init_app(app)

    from portal import cli, errors_http, security_headers

    errors_http.init_app(app)
    security_headers.init_app(app)
    cli.init_app(app)

    @app.get("/")
    def root() -> Response:
        """Send browsers to the portal."""
        return redirect(url_for("web.index"))  # type: ignore[return-value]

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """The icon browsers ask for on pages without a <link rel=icon> (JSON, /openapi.json)."""
        return app.send_static_file("favicon.svg")

    return app


def _configure(app: Flask, settings: Settings) -> None:
    if settings.datastore_driver == "sqlite" and not settings.datastore_dsn.startswith("sqlite:"):
        Path(settings.database_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if settings.datastore_driver == "sqlite":
        engine_options["connect_args"] = {"timeout": 15, "check_same_thread": False}
    else:
        engine_options["connect_args"] = {"connect_timeout": 5}
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_uri,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        SQLALCHEMY_TRACK_MODIFICATIONS=False,
        API_TITLE="Model Manager",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=None,  # /openapi and /docs are served by portal.api.docs from local assets
        API_SPEC_OPTIONS={
            "info": {"description": "Run large language models on Kubernetes with KServe and vLLM."},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
        },
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_HEADERS=["X-CSRFToken", "X-CSRF-Token"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        RQ_DASHBOARD_REDIS_URL=settings.redis_url,
        MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )


def _configure_logging(app: Flask) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Alembic lists every plugin it sets up at INFO on each start; keep its migration lines only.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # urllib3 logs every request line at DEBUG, path included: a webhook URL's path is its secret.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL and a busy timeout make SQLite usable by the web and worker processes at once."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _init_extensions(app: Flask, settings: Settings) -> None:
    from portal import auth, metrics, models  # noqa: F401  (models registers the tables)
    from portal.extensions import RedisHolder, api, csrf, db, htmx, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    api.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    app.extensions["redis_holder"] = RedisHolder(settings.redis_url, settings.queue_name)
    auth.init_app(app)
    metrics.init_app(app)


def _register_job_types() -> None:
    """The background job types: which RQ function runs each, and what happens when a worker dies under one."""
    from portal.services import catalog_pr, fit_measurement, jobs, periodic, weights

    jobs.register_job_type(
        weights.JOB_TYPE, "jobs.weights.install_weights", heartbeat=True, on_reaped=weights.record_failed
    )
    jobs.register_job_type(catalog_pr.JOB_TYPE, "jobs.catalog_pr.open_pull_request")
    jobs.register_job_type(fit_measurement.JOB_TYPE, "jobs.fit.measure_startup")
    # Periodic work, started by the workers' maintenance pass (services/periodic.py): one mechanism for all.
    periodic.register_periodic("weights-staging-sweep", weights.SWEEP_INTERVAL, "jobs.weights.sweep_staging")
    periodic.register_periodic("catalog-pr-poll", 60, "jobs.catalog_pr.poll")
    periodic.register_periodic("weights-volume-check", 60, "jobs.notify.check_volume")
    periodic.register_periodic("activation-readiness-check", 15, "jobs.notify.check_readiness")


def _register_info_sections(app: Flask) -> None:
    """The parts of /system/info each area contributes."""
    from portal.services import catalog, cluster, discovery, notify, system

    system.register_info_sections(
        app, [catalog.catalog_info, cluster.cluster_info, discovery.gpu_info, notify.notifications_info]
    )


def _register_blueprints(app: Flask) -> None:
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    from portal.api import register_api
    from portal.web import catalog, discover, pages, register_web

    register_api(app)
    # Banners shown on every portal page while their condition holds.
    register_web(app, banners=[pages.redis_banner, catalog.demo_banner, catalog.catalog_banner, discover.hub_banner])
    setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix="/rq")


def _register_request_hooks(app: Flask) -> None:
    access = logging.getLogger("portal.access")

    @app.before_request
    def _request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.fullmatch(incoming) else str(uuid.uuid4())
        g.request_start = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.vary.add("HX-Request")
        started = g.get("request_start")
        elapsed_ms = (time.perf_counter() - started) * 1000 if started else 0.0
        if not request.path.startswith("/static"):
            from portal.auth import current_actor

            access.info(
                "%s %s %s %.1fms request_id=%s actor=%s",
                request.method,
                request.path,
                response.status_code,
                elapsed_ms,
                g.get("request_id", ""),
                current_actor(),
            )
        return response
