"""Portal pages of the deployments: cards with live status, new deployment with placements, capacity."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from portal import auth
from portal.errors import PortalError
from portal.services import deployments, placement
from portal.services.catalog import get_catalog
from portal.web import bp
from portal.web.htmx import STOP_POLLING, is_htmx, partial_response

# One colour class per deployment on the capacity bars (cycled); free GPUs have their own.
PALETTE_SIZE = 6
BAR_WIDTH = 400


def _listing() -> tuple[dict[str, Any] | None, str | None]:
    try:
        return deployments.list_deployments(), None
    except PortalError as exc:
        return None, exc.message


def _capacity(add: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
    try:
        return placement.capacity(add), None
    except PortalError as exc:
        return None, exc.message


def _colours(listing: dict[str, Any] | None) -> dict[str, str]:
    names = [d["name"] for d in (listing or {}).get("deployments", [])]
    return {name: f"dep-{i % PALETTE_SIZE}" for i, name in enumerate(names)}


def _segments(node: dict[str, Any], colours: dict[str, str]) -> list[dict[str, Any]]:
    """SVG rectangles of one node's bar: one per holder, then the free GPUs."""
    total = max(1, int(node["allocatable"]))
    x = 0.0
    out = []
    for holder in node["holders"]:
        width = BAR_WIDTH * int(holder["gpus"]) / total
        name = holder.get("deployment") or holder.get("holder") or "other"
        out.append(
            {"x": x, "width": width, "cls": colours.get(name, "dep-other"), "label": f"{name}: {holder['gpus']}"}
        )
        x += width
    if node["free"]:
        out.append({"x": x, "width": BAR_WIDTH - x, "cls": "dep-free", "label": f"free: {node['free']}"})
    return out


def _pending(listing: dict[str, Any] | None) -> bool:
    return bool(listing) and any(d["phase"] == "pending" for d in listing["deployments"])  # type: ignore[index]


def _list_html(error: str | None = None, notice: str | None = None) -> tuple[str, bool]:
    listing, problem = _listing()
    models = get_catalog().list_entries("")
    html = render_template(
        "deployments/_deployment_list.html",
        listing=listing,
        problem=problem,
        models=models,
        polling=_pending(listing),
        error=error,
        notice=notice,
    )
    return html, _pending(listing)


@bp.get("/deployments", endpoint="deployments")
def deployments_page() -> str:
    """Every deployment as a card, and the GPU capacity per node."""
    html, _ = _list_html()
    return render_template("deployments/deployments.html", list_html=html, **_capacity_context(_add()))


@bp.get("/deployments/list", endpoint="deployment_list")
def deployment_list() -> Response:
    """The deployment cards alone; 286 (stop polling) once none is pending."""
    html, pending = _list_html()
    return partial_response(html, 200 if pending else STOP_POLLING)


def _add() -> str | None:
    return (request.args.get("add") or "").strip() or None


def _capacity_context(add: str | None = None) -> dict[str, Any]:
    data, problem = _capacity(add)
    colours = _colours(_listing()[0])
    nodes = [{**n, "segments": _segments(n, colours)} for n in (data or {}).get("nodes", [])]
    return {
        "capacity": data,
        "capacity_problem": problem,
        "nodes": nodes,
        "bar_width": BAR_WIDTH,
        "add": add or "",
        "if_added": (data or {}).get("ifAdded"),
        "models": get_catalog().list_entries(""),
    }


@bp.get("/deployments/capacity", endpoint="capacity")
def capacity_partial() -> str:
    """The capacity bars alone (refreshed when deployments change; `?add=` shows what a new model would cost)."""
    return render_template("deployments/_capacity.html", **_capacity_context(_add()))


@bp.get("/deployments/header", endpoint="deployments_header")
def deployments_header() -> str:
    """The header's Ready / not Ready deployment counts."""
    listing, problem = _listing()
    return render_template("deployments/_header_deployments.html", listing=listing, problem=problem, loaded=True)


@bp.get("/deployments/new", endpoint="deployment_new")
def deployment_new() -> str:
    """Pick a catalog model, see where it fits, deploy."""
    model = request.args.get("model") or ""
    return _new_page(model=model, name=request.args.get("name") or "")


def _new_page(*, model: str, name: str, error: str | None = None) -> str:
    models = get_catalog().list_entries("")
    return render_template(
        "deployments/new.html",
        models=models,
        model=model,
        name=name,
        error=error,
        placements_html=_placements_html(model) if model else "",
    )


def _placements_html(model: str) -> str:
    try:
        plan, problem = placement.placements_for(model=model), None
    except PortalError as exc:
        plan, problem = None, exc.message
    return render_template("deployments/_placements.html", plan=plan, problem=problem, model=model)


@bp.get("/deployments/placements", endpoint="deployment_placements")
def deployment_placements() -> str:
    """The placements of the chosen model alone."""
    return _placements_html(request.args.get("model") or "")


@bp.post("/deployments", endpoint="deployment_create")
def deployment_create() -> Response | tuple[str, int]:
    """Create a deployment from the form; the form comes back with the reason when it cannot."""
    form = request.form
    name, model = (form.get("name") or "").strip(), (form.get("model") or "").strip()
    node, gpus = _chosen(form.get("placement") or "")
    try:
        deployments.create_deployment(name, model, actor=auth.current_actor(), gpus=gpus, node=node)
    except PortalError as exc:
        return _new_page(model=model, name=name, error=exc.message), 422
    flash(f"Deployment {name} created with {model}; it turns Ready when its pod is up.", "success")
    return redirect(url_for("web.deployments"))  # type: ignore[return-value]


def _chosen(value: str) -> tuple[str | None, int | None]:
    """`node:gpus` from a placement radio; empty means the best placement."""
    node, _, count = value.partition(":")
    return (node or None), (int(count) if count.isdigit() else None)


def _action(name: str, operation: str) -> Response | tuple[str, int]:
    actor = auth.current_actor()
    try:
        if operation == "switch":
            result = deployments.switch_model(name, (request.form.get("model") or "").strip(), actor=actor)
        elif operation == "rollback":
            result = deployments.rollback_deployment(name, actor=actor)
        else:
            result = deployments.delete_deployment(name, actor=actor)
        error, notice = None, str(result.get("message") or "")
    except PortalError as exc:
        error, notice = exc.message, None
    if not is_htmx():
        flash(error or notice or "", "error" if error else "success")
        return redirect(url_for("web.deployments"))  # type: ignore[return-value]
    html, _ = _list_html(error=error, notice=notice)
    return partial_response(html, 422 if error else 200, trigger="deployments-changed")


@bp.post("/deployments/<string:name>/switch", endpoint="deployment_switch")
def deployment_switch(name: str) -> Response | tuple[str, int]:
    """Serve another model in this deployment."""
    return _action(name, "switch")


@bp.post("/deployments/<string:name>/rollback", endpoint="deployment_rollback")
def deployment_rollback(name: str) -> Response | tuple[str, int]:
    """Go back to this deployment's previous model."""
    return _action(name, "rollback")


@bp.post("/deployments/<string:name>/delete", endpoint="deployment_delete")
def deployment_delete(name: str) -> Response | tuple[str, int]:
    """Delete this deployment."""
    return _action(name, "delete")
