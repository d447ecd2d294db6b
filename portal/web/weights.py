"""Weights page: volume usage, installed weights (delete), and the install form (the job card shows progress)."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError

from portal import auth
from portal.errors import PortalError
from portal.models import Job
from portal.schemas.weights import InstallRequestSchema
from portal.services import jobs as job_service
from portal.services import weights
from portal.web import bp
from portal.web.htmx import is_htmx, partial_response
from portal.web.jobs import catalog_link

# Fields the install form shows; a link such as /ui/weights?hfModelId=org/name prefills them.
PREFILL_FIELDS = ("hfModelId", "revision", "target")


def _installs_context() -> dict[str, Any]:
    uri, model_id, note = weights.active_storage_uri()
    stats = weights.usage()
    for item in stats["models"]:
        item["activeModel"] = model_id if weights.uri_uses(uri, item["name"]) else None
    return {"usage": stats, "installs": stats["models"], "active_note": note, "active_model": model_id}


def _page(form: dict[str, Any], errors: dict[str, str], status: int = 200) -> Response:
    html = render_template(
        "weights/weights.html",
        form=form,
        errors=errors,
        job=None,
        recent=list(weights.iter_install_jobs(limit=8)),
        delete_error=None,
        **_installs_context(),
    )
    return partial_response(html, status)


@bp.get("/weights/panels/installs")
def installs_panel() -> str:
    """The installs table alone (reloaded by htmx after an install or a delete)."""
    return render_template("weights/_installs.html", delete_error=None, **_installs_context())


@bp.get("/weights/panels/usage")
def usage_panel() -> str:
    """The volume usage bar alone (reloaded by htmx after an install or a delete)."""
    return render_template("weights/_usage.html", **_installs_context())


@bp.get("/weights", endpoint="weights")
def weights_page() -> Response:
    """Volume usage, installs, the install form (prefilled from the query, e.g. from a Hub model page)."""
    return _page({name: request.args.get(name, "").strip() for name in PREFILL_FIELDS}, {})


def _flatten(messages: Any) -> str:
    if isinstance(messages, dict):
        return " ".join(_flatten(value) for value in messages.values())
    if isinstance(messages, list):
        return " ".join(_flatten(value) for value in messages)
    return str(messages)


def _load_install_form() -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, str]]:
    """(values to re-render, the request loaded by InstallRequestSchema or None, field errors)."""
    form: dict[str, Any] = {name: request.form.get(name, "").strip() for name in (*PREFILL_FIELDS, "files")}
    form["overwrite"] = request.form.get("overwrite") in ("on", "true", "1")
    patterns = [p.strip() for p in form["files"].replace(",", "\n").splitlines() if p.strip()]
    raw: dict[str, Any] = {
        "revision": form["revision"] or None,
        "target": form["target"] or None,
        "files": patterns or None,
        "overwrite": form["overwrite"],
    }
    if form["hfModelId"]:
        raw["hfModelId"] = form["hfModelId"]
    try:
        return form, InstallRequestSchema().load(raw), {}
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"form": exc.messages}
        return form, None, {field: _flatten(value) for field, value in messages.items()}


def _field_for(exc: PortalError) -> str:
    code = exc.code
    if code in ("invalid_model_id", "hf_not_found", "hf_gated", "hf_unauthorized", "hf_forbidden", "hf_disabled"):
        return "hfModelId"
    if code in ("invalid_revision", "hf_revision_not_found"):
        return "revision"
    if code in ("invalid_path", "reserved_path", "path_traversal", "weights_exist", "install_in_progress"):
        return "target"
    if code in ("invalid_files", "no_files"):
        return "files"
    return "form"


@bp.post("/weights/install")
def weights_install() -> Response:
    """Validate and queue an install; answer the form plus the job card (htmx) or redirect to the job."""
    form, loaded, errors = _load_install_form()
    job: Job | None = None
    if loaded is not None:
        try:
            result = weights.request_install(
                hf_model_id=loaded["hfModelId"],
                revision=loaded["revision"],
                target=loaded["target"],
                files=loaded["files"],
                overwrite=loaded["overwrite"],
                actor=auth.current_actor(),
            )
            job = job_service.get_job(result["job"]["id"])
        except PortalError as exc:
            errors[_field_for(exc)] = exc.message
    status = 422 if errors else 200
    if not is_htmx():
        if job is not None:
            return redirect(url_for("web.job_detail", job_id=job.id))  # type: ignore[return-value]
        return _page(form, errors, status)
    html = render_template(
        "weights/_install_form.html",
        form={} if job else form,
        errors=errors,
        job=job,
        oob=True,
        catalog_link=catalog_link(job) if job else None,
    )
    return partial_response(html, status)


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
    if not is_htmx():
        if error:
            flash(error, "error")
        return redirect(url_for("web.weights"))  # type: ignore[return-value]
    html = render_template("weights/_installs.html", delete_error=error, **_installs_context())
    return partial_response(html, 422 if error else 200)
