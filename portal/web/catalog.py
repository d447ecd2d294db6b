"""Portal pages of the catalog and the active model: catalog table, model page, activation panel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from portal import auth
from portal.errors import InvalidInput, NotConfigured, PortalError
from portal.services import activation, catalog_pr, discovery
from portal.services.catalog import get_catalog
from portal.services.cluster import get_cluster
from portal.services.manifests import DEFAULT_RUNTIME, effective_storage_uri, manifest_to_yaml
from portal.web import bp, page_url
from portal.web.htmx import STOP_POLLING, is_htmx, partial_response

log = logging.getLogger(__name__)


def gpu_request(entry: Mapping[str, Any]) -> str:
    """GPU limits (else requests) such as "1 amd.com/gpu", or "" when the entry needs none."""
    requests = discovery.gpu_requests(entry)
    first_side = requests[0][0] if requests else None
    return ", ".join(f"{count} {name}" for side, name, count in requests if side == first_side)


def _active_or_error() -> tuple[dict[str, Any] | None, str | None]:
    """The active status, or (None, a message a person can act on) when the cluster cannot say."""
    try:
        return activation.active_status(), None
    except NotConfigured:
        return None, "no cluster configured"
    except PortalError as exc:
        log.info("active model unavailable: %s", exc.message)
        return None, f"cluster unreachable: {exc.message}" if exc.status in (503, 504) else exc.message


def _panel(
    active: dict[str, Any] | None, problem: str | None, *, error: str | None = None, notice: str | None = None
) -> str:
    polling = active is not None and active.get("status") == "active" and active.get("phase") == "pending"
    return render_template(
        "models/_active_model.html", active=active, problem=problem, error=error, notice=notice, polling=polling
    )


def _panel_final(active: dict[str, Any] | None) -> bool:
    return not (active is not None and active.get("status") == "active" and active.get("phase") == "pending")


# --- catalog -------------------------------------------------------------------------------------


def _catalog_context() -> dict[str, Any]:
    q = (request.args.get("q") or "").strip()
    catalog = get_catalog()
    active, _problem = _active_or_error()
    return {
        "entries": catalog.list_entries(q),
        "q": q,
        "active": active,
        "active_id": active.get("modelId") if active and active.get("status") == "active" else None,
        "status": catalog.status(),
        "gpu_request": gpu_request,
        "storage_uri": effective_storage_uri,
        "default_runtime": DEFAULT_RUNTIME,
        "pending": catalog_pr.list_pull_requests(pending_only=True),
    }


@bp.get("/catalog", endpoint="catalog")
def catalog_page() -> str:
    """The catalog: filterable table of entries and the files that failed to load."""
    return render_template("catalog/catalog.html", **_catalog_context())


@bp.get("/catalog/table")
def catalog_table() -> Response:
    """The catalog table alone for a filter; the address bar keeps the filter (replaced, not pushed per key)."""
    html = render_template("catalog/_catalog_table.html", **_catalog_context())
    return partial_response(html, replace_url=page_url("web.catalog"))


@bp.get("/models/<string:model_id>", endpoint="model")
def model_page(model_id: str) -> str:
    """One entry: its fields, the manifest that would be applied, and the activation controls."""
    details = activation.manifest_for(model_id)
    active, problem = _active_or_error()
    return render_template(
        "models/model.html",
        entry=details["model"],
        manifest_yaml=manifest_to_yaml(details["manifest"]),
        dropped=details.get("droppedArgs") or [],
        active=active,
        problem=problem,
        polling=not _panel_final(active),
        gpu_request=gpu_request,
        storage_uri=effective_storage_uri,
        default_runtime=DEFAULT_RUNTIME,
    )


@bp.post("/models/<string:model_id>/dry-run", endpoint="model_dry_run")
def model_dry_run(model_id: str) -> tuple[str, int] | Response:
    """Dry-run the entry against the cluster; warnings and errors shown inline."""
    try:
        result = activation.dry_run_model(model_id)
    except PortalError as exc:
        causes = exc.details.get("causes") if isinstance(exc, InvalidInput) else None
        html = render_template("models/_dry_run.html", result=None, error=exc.message, causes=causes or [])
        return _answer(html, 422, model_id, error=exc.message)
    html = render_template("models/_dry_run.html", result=result, error=None, causes=[])
    return _answer(html, 200, model_id, notice=f"Dry run: {result['dryRun']['action']} would succeed.")


def _answer(
    html: str, status: int, model_id: str | None, *, error: str | None = None, notice: str | None = None
) -> tuple[str, int] | Response:
    """htmx gets the partial; a plain form post (no JavaScript) is redirected back with a message."""
    if is_htmx():
        return html, status
    if error:
        flash(error, "error")
    elif notice:
        flash(notice, "success")
    target = url_for("web.model", model_id=model_id) if model_id else url_for("web.catalog")
    return redirect(target)  # type: ignore[return-value]


def _runtime_action(operation: str, model_id: str | None) -> tuple[str, int] | Response:
    actor = auth.current_actor()
    try:
        if operation == "activate":
            assert model_id is not None
            result = activation.activate(model_id, actor=actor)
        elif operation == "deactivate":
            result = activation.deactivate(actor=actor)
        else:
            result = activation.rollback(actor=actor)
    except PortalError as exc:
        active, problem = _active_or_error()
        html = _panel(active, problem, error=exc.message)
        return _answer(html, 422, model_id, error=exc.message)
    active, problem = _active_or_error()
    html = _panel(active, problem, notice=str(result.get("message") or ""))
    response = _answer(html, 200, model_id or (active or {}).get("modelId"), notice=str(result.get("message")))
    if isinstance(response, tuple):
        # Lets the header panel on the same page refresh itself.
        return partial_response(*response, trigger="active-changed")
    return response


@bp.post("/models/<string:model_id>/activate", endpoint="model_activate")
def model_activate(model_id: str) -> tuple[str, int] | Response:
    """Activate the entry; answers the active-model panel, which then polls until Ready or failed."""
    return _runtime_action("activate", model_id)


@bp.post("/active/deactivate", endpoint="deactivate")
def deactivate() -> tuple[str, int] | Response:
    """Deactivate the active model."""
    return _runtime_action("deactivate", request.form.get("model_id") or None)


@bp.post("/active/rollback", endpoint="rollback")
def rollback() -> tuple[str, int] | Response:
    """Re-activate the model that was active before the current one."""
    return _runtime_action("rollback", request.form.get("model_id") or None)


@bp.get("/active", endpoint="active_panel")
def active_panel() -> Response:
    """The active-model panel alone; 286 (stop polling) once Ready or failed."""
    active, problem = _active_or_error()
    if _panel_final(active):
        return partial_response(_panel(active, problem), STOP_POLLING, trigger="active-changed")
    return partial_response(_panel(active, problem))


@bp.get("/active/header", endpoint="active_header")
def active_header() -> str:
    """The header's active-model line alone (never fails: says what is wrong instead)."""
    active, problem = _active_or_error()
    return render_template("models/_header_active.html", active=active, problem=problem, loaded=True)


# --- banners -------------------------------------------------------------------------------------


def demo_banner() -> tuple[str, str] | None:
    """ "Demo cluster" on every page when the portal talks to the built-in dev cluster."""
    if not get_cluster().demo:
        return None
    return (
        "info",
        "Demo cluster: this portal talks to the built-in dev cluster (a simulated Kubernetes API with KServe); "
        "activations do not start real model servers.",
    )


def catalog_banner() -> tuple[str, str] | None:
    """Catalog files with errors or a missing catalog directory, on every page."""
    snap = get_catalog().snapshot()
    problems: list[str] = []
    failing = len({issue.file for issue in snap.issues if issue.severity == "error"})
    if failing:
        problems.append(f"{failing} file(s) have errors")
    if snap.status == "missing":
        problems.append("the catalog directory is missing")
    if not problems:
        return None
    return ("warning", f"Catalog: {' and '.join(problems)}; see the Catalog page.")
