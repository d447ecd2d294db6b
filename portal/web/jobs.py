"""Jobs pages and the job card: list with filters, one job with its logs, live progress, cancel, retry."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect, render_template, request, url_for

from portal import auth
from portal.errors import PortalError
from portal.models import Job
from portal.services import jobs as job_service
from portal.web import bp, page_number, page_url
from portal.web.htmx import STOP_POLLING, is_htmx, partial_response

PAGE_SIZE = 25
JOB_STATUSES = ["pending", "running", "completed", "failed", "cancelled"]


def catalog_link(job: Job) -> str | None:
    """ "Create catalog entry from this": the Discover editor, which points storageUri at the installed weights."""
    result = job.result or {}
    hf_id = result.get("hfModelId") or job.model_id
    if not result.get("storageUri") or not hf_id:
        return None
    return url_for("web.discover_new_entry", hfModelId=hf_id)


def render_card(job: Job) -> Response:
    """The job card alone; STOP_POLLING once the job is finished, so its polling stops."""
    html = render_template("jobs/_job_card.html", job=job, catalog_link=catalog_link(job))
    # The installs list and the usage bar on the Weights page reload themselves on this event.
    trigger = "weights-changed" if job.status == "completed" and job.type == "weight_install" else None
    return partial_response(html, STOP_POLLING if job.finished else 200, trigger=trigger)


def _jobs_context() -> dict[str, Any]:
    status = request.args.get("status") or None
    job_type = request.args.get("type") or None
    page = page_number()
    error = None
    try:
        rows, total = job_service.list_jobs(
            limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, status=status, job_type=job_type
        )
    except PortalError as exc:
        error, rows, total = exc.message, [], 0
    return {
        "jobs": rows,
        "total": total,
        "page": page,
        "page_size": PAGE_SIZE,
        "page_endpoint": "web.jobs",
        "status": status,
        "job_type": job_type,
        "statuses": JOB_STATUSES,
        "error": error,
    }


@bp.get("/jobs")
def jobs() -> str:
    """Recent jobs with filters."""
    return render_template("jobs/jobs.html", **_jobs_context())


@bp.get("/jobs/table")
def job_table() -> Response:
    """The jobs table alone (filters, and polling while a job runs); the address bar follows the filters."""
    html = render_template("jobs/_job_table.html", **_jobs_context())
    # Replaced, not pushed: the table polls itself, and each poll must not add a history entry.
    return partial_response(html, replace_url=page_url("web.jobs"))


@bp.get("/jobs/<string:job_id>")
def job_detail(job_id: str) -> str:
    """One job with its logs."""
    job = job_service.get_job(job_id)
    return render_template("jobs/job.html", job=job, logs=job_service.job_logs(job_id), catalog_link=catalog_link(job))


@bp.get("/jobs/<string:job_id>/card")
def job_card(job_id: str) -> Response:
    """The job card (polled every second while the job runs)."""
    return render_card(job_service.get_job(job_id))


@bp.post("/jobs/<string:job_id>/cancel")
def job_cancel(job_id: str) -> Response:
    """Cancel from the card."""
    try:
        job = job_service.cancel_job(job_id, actor=auth.current_actor())
    except PortalError:
        job = job_service.get_job(job_id)
    if not is_htmx():
        return redirect(url_for("web.job_detail", job_id=job_id))  # type: ignore[return-value]
    return render_card(job)


@bp.post("/jobs/<string:job_id>/retry")
def job_retry(job_id: str) -> Response:
    """Retry from the card; the card starts polling again."""
    try:
        job = job_service.retry_job(job_id, actor=auth.current_actor())
    except PortalError:
        job = job_service.get_job(job_id)
    if not is_htmx():
        return redirect(url_for("web.job_detail", job_id=job_id))  # type: ignore[return-value]
    return render_card(job)
