"""Jobs API (reference §6.4): list, inspect, logs, cancel, retry, purge."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.schemas.common import JobEnvelopeSchema, JobListArgs, JobPurgeArgs
from portal.services import jobs as job_service

blp = Blueprint("jobs", __name__, description="Background jobs (weight installs and others)")


@blp.route("/jobs")
class JobList(MethodView):
    """All jobs."""

    @blp.arguments(JobListArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Newest-first jobs; filters apply before the limit."""
        rows, total = job_service.list_jobs(
            limit=args["limit"],
            offset=args["offset"],
            status=args.get("status"),
            job_type=args.get("type"),
            model_id=args.get("modelId"),
        )
        return {
            "jobs": [row.to_dict() for row in rows],
            "total": total,
            "limit": args["limit"],
            "offset": args["offset"],
        }

    @blp.arguments(JobPurgeArgs, location="query")
    @blp.response(200)
    def delete(self, args: dict[str, Any]) -> dict[str, Any]:
        """Delete finished jobs (all finished ones, or one status); running jobs are kept."""
        count = job_service.purge_jobs(status=args.get("status"), actor=auth.current_actor())
        return {"status": "deleted", "filteredStatus": args.get("status", ""), "deleted": count}


@blp.route("/jobs/<job_id:job_id>")
class JobItem(MethodView):
    """One job."""

    @blp.response(200)
    def get(self, job_id: str) -> dict[str, Any]:
        """The job with its progress."""
        return job_service.get_job(job_id).to_dict()


@blp.route("/weights/install/status/<job_id:job_id>")
class InstallStatus(MethodView):
    """Alias of GET /jobs/{id} kept for existing automation."""

    @blp.response(200)
    def get(self, job_id: str) -> dict[str, Any]:
        """The install job with its progress."""
        return job_service.get_job(job_id).to_dict()


@blp.route("/jobs/<job_id:job_id>/logs")
class JobLogs(MethodView):
    """A job's log lines."""

    @blp.response(200)
    def get(self, job_id: str) -> dict[str, Any]:
        """Log lines, oldest first."""
        return {"logs": [line.to_dict() for line in job_service.job_logs(job_id)]}


@blp.route("/jobs/<job_id:job_id>/cancel")
class JobCancel(MethodView):
    """Stop a job."""

    @blp.response(200, JobEnvelopeSchema)
    def post(self, job_id: str) -> dict[str, Any]:
        """Cancel a pending or running job (a running download stops within seconds)."""
        return job_service.job_envelope(job_service.cancel_job(job_id, actor=auth.current_actor()), "cancelled")


@blp.route("/jobs/<job_id:job_id>/retry")
class JobRetry(MethodView):
    """Run a failed or cancelled job again."""

    @blp.response(202, JobEnvelopeSchema)
    def post(self, job_id: str) -> tuple[dict[str, Any], int]:
        """Requeue; an install resumes what it already downloaded."""
        return job_service.job_envelope(job_service.retry_job(job_id, actor=auth.current_actor())), 202
