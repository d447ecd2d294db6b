"""System endpoints: health, info, metrics, and a no-op job to check the queue."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth, metrics
from portal.schemas.common import HealthSchema, JobEnvelopeSchema, NoopJobSchema
from portal.services import jobs as job_service
from portal.services import system as system_service

blp = Blueprint("system", __name__, description="Health, system information and metrics")


@blp.route("/healthz")
class Health(MethodView):
    """Liveness and dependencies."""

    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="A dependency failed")
    def get(self) -> tuple[dict[str, Any], int]:
        """Check the database and Redis (each with a short timeout)."""
        report = system_service.health()
        return report, 200 if report["status"] == "ok" else 503


@blp.route("/system/info")
class SystemInfo(MethodView):
    """What this deployment is and how it is configured (never a secret)."""

    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """Version, catalog, weights, persistence, auth, caches, recent jobs and history."""
        return system_service.system_info()


@blp.route("/metrics")
class Metrics(MethodView):
    """Prometheus metrics."""

    @blp.response(200, content_type="text/plain")
    def get(self) -> Response:
        """Prometheus text exposition."""
        return metrics.render_metrics()


@blp.route("/jobs/noop")
class NoopJob(MethodView):
    """A job that does nothing: checks that the queue and a worker are alive."""

    @blp.arguments(NoopJobSchema, required=False)
    @blp.response(202, JobEnvelopeSchema)
    def post(self, body: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
        """Queue a no-op job; watch it reach `completed` at `/jobs/{id}`."""
        seconds = (body or {}).get("sleepSeconds", 0.0)
        job = job_service.create_job(
            "noop", actor=auth.current_actor(), message="Queued (no-op)", payload={"sleepSeconds": seconds}
        )
        return job_service.job_envelope(job), 202
