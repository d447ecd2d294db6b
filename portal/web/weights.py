"""Weights page (usage, installs, install form) and the job card partial (progress, cancel, retry)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, make_response, redirect, render_template, request, url_for

from portal import auth
from portal.errors import PortalError
from portal.models import Job
from portal.services import jobs as job_service
from portal.services import weights
from portal.web import bp

FORM_FIELDS = ("hfModelId", "revision", "target", "files", "overwrite")


@bp.app_template_filter("human_bytes")
def human_bytes(value: int | float | None) -> str:
    """Bytes as `4.5 MiB` (empty for None)."""
    return "" if value is None else weights.human_size(int(value))


@bp.app_template_filter("duration")
def duration(seconds: float | None) -> str:
    """Seconds as `1 h 02 min`, `3 min 05 s` or `12 s`."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def _htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _vary(response: Response) -> Response:
    response.headers["Vary"] = "HX-Request"
    return response


def catalog_link(job: Job) -> str | None:
    """ "Create catalog entry from this": the Discover editor, which points storageUri at the installed weights."""
    result = job.result or {}
    hf_id = result.get("hfModelId") or job.model_id
    if not result.get("storageUri") or not hf_id:
        return None
    return "/ui/discover/new?" + urlencode({"hfModelId": hf_id})


def render_card(job: Job, status: int = 200) -> Response:
    """The job card alone; 286 once the job is finished so htmx polling stops."""
    html = render_template("jobs/_job_card.html", job=job, catalog_link=catalog_link(job))
    code = 286 if job.finished and status == 200 else status
    response = make_response(html, code)
    if job.status == "completed" and job.type == "weight_install":
        # The installs list and the usage bar on the same page reload themselves on this event.
        response.headers["HX-Trigger"] = "weights-changed"
    return _vary(response)


def _installs_context() -> dict[str, Any]:
    uri, model_id, note = weights.active_storage_uri()
    stats = weights.usage()
    for item in stats["models"]:
        item["activeModel"] = model_id if weights.uri_uses(uri, item["name"]) else None
    return {"usage": stats, "installs": stats["models"], "active_note": note, "active_model": model_id}


@bp.get("/weights/panels/installs")
def installs_panel() -> str:
    """The installs table alone (reloaded by htmx after an install or a delete)."""
    return render_template("weights/_installs.html", delete_error=None, **_installs_context())


@bp.get("/weights/panels/usage")
def usage_panel() -> str:
    """The volume usage bar alone (reloaded by htmx after an install or a delete)."""
    return render_template("weights/_usage.html", **_installs_context())


@bp.get("/weights", endpoint="weights")
def weights_page() -> str:
    """Volume usage, installs, install form, recent installs."""
    jobs = list(weights.iter_install_jobs(limit=8))
    return render_template(
        "weights/weights.html", form={}, errors={}, job=None, recent=jobs, delete_error=None, **_installs_context()
    )


def _form_values() -> dict[str, Any]:
    return {
        "hfModelId": request.form.get("hfModelId", "").strip(),
        "revision": request.form.get("revision", "").strip(),
        "target": request.form.get("target", "").strip(),
        "files": request.form.get("files", "").strip(),
        "overwrite": request.form.get("overwrite") in ("on", "true", "1"),
    }


def _field_for(exc: PortalError) -> str:
    code = exc.code
    if code in ("invalid_model_id", "model_not_found", "gated_repo", "hub_unauthorized"):
        return "hfModelId"
    if code in ("invalid_revision", "revision_not_found"):
        return "revision"
    if code in ("invalid_path", "reserved_path", "path_traversal", "weights_exist", "install_in_progress"):
        return "target"
    if code in ("invalid_files", "no_files"):
        return "files"
    return "form"


@bp.post("/weights/install")
def weights_install() -> Response:
    """Validate and queue an install; answer the form plus the job card (htmx) or redirect to the job."""
    form = _form_values()
    errors: dict[str, str] = {}
    if not form["hfModelId"]:
        errors["hfModelId"] = "Enter a Hugging Face model id such as Qwen/Qwen2.5-0.5B."
    patterns = [p.strip() for p in form["files"].replace(",", "\n").splitlines() if p.strip()]
    job: Job | None = None
    if not errors:
        try:
            result = weights.request_install(
                hf_model_id=form["hfModelId"],
                revision=form["revision"] or None,
                target=form["target"] or None,
                files=patterns or None,
                overwrite=form["overwrite"],
                actor=auth.current_actor(),
            )
            job = job_service.get_job(result["job"]["id"])
        except PortalError as exc:
            errors[_field_for(exc)] = exc.message
    if job is not None and not _htmx():
        return redirect(url_for("web.job_detail", job_id=job.id))  # type: ignore[return-value]
    status = 422 if errors else 200
    if _htmx():
        html = render_template(
            "weights/_install_form.html",
            form={} if job else form,
            errors=errors,
            job=job,
            oob=True,
            catalog_link=catalog_link(job) if job else None,
        )
        return _vary(make_response(html, status))
    jobs = list(weights.iter_install_jobs(limit=8))
    html = render_template(
        "weights/weights.html",
        form=form,
        errors=errors,
        job=None,
        recent=jobs,
        delete_error=None,
        **_installs_context(),
    )
    return _vary(make_response(html, status))


@bp.post("/weights/delete")
def weights_delete() -> Response:
    """Delete one install after confirmation; answers the installs table (422 with the reason on refusal)."""
    name = request.form.get("name", "")
    force = request.form.get("force") in ("on", "true", "1")
    error = None
    try:
        weights.delete_weights(name, actor=auth.current_actor(), force=force)
    except PortalError as exc:
        error = exc.message
    if not _htmx():
        return redirect(url_for("web.weights"))  # type: ignore[return-value]
    html = render_template("weights/_installs.html", delete_error=error, **_installs_context())
    return _vary(make_response(html, 422 if error else 200))


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
    if not _htmx():
        return redirect(url_for("web.job_detail", job_id=job_id))  # type: ignore[return-value]
    return render_card(job)


@bp.post("/jobs/<string:job_id>/retry")
def job_retry(job_id: str) -> Response:
    """Retry from the card; the card starts polling again."""
    try:
        job = job_service.retry_job(job_id, actor=auth.current_actor())
    except PortalError:
        job = job_service.get_job(job_id)
    if not _htmx():
        return redirect(url_for("web.job_detail", job_id=job_id))  # type: ignore[return-value]
    return render_card(job)
