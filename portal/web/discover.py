"""Discover pages: Hub search with fit badges, a Hub model's fit matrix, and the catalog entry editor."""

from __future__ import annotations

import json
from typing import Any

from flask import render_template, request
from werkzeug.datastructures import MultiDict

from portal.auth import current_actor
from portal.errors import Conflict, InvalidInput, PortalError
from portal.services import catalog_pr, discovery, validation
from portal.services.catalog import get_catalog
from portal.web import bp

TASKS = ["text-generation", "image-text-to-text", "feature-extraction", "text-classification", "sentence-similarity"]
LICENSES = ["apache-2.0", "mit", "llama3.1", "llama3.2", "gemma", "other"]
SEARCH_PAGE_SIZE = 20
SORTS = [("downloads", "Downloads"), ("likes", "Likes"), ("trending", "Trending"), ("lastModified", "Recently updated")]


def hub_banner() -> tuple[str, str] | None:
    """ "Hugging Face is unreachable" on every page while the Hub does not answer."""
    message = discovery.hub_client().unreachable_message()
    # The message already says "Hugging Face is unreachable (<endpoint>): …".
    return (
        ("error", f"{message}. Search, details and fit estimates need it; installed weights still work.")
        if message
        else None
    )


def _search(args: MultiDict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    try:
        query = discovery.search_query(
            {k: args.get(k) for k in ("q", "pipelineTag", "license", "sort")} | {"limit": SEARCH_PAGE_SIZE}
        )
        return discovery.search(query), None
    except PortalError as exc:
        return None, exc.message


@bp.get("/discover")
def discover() -> str:
    """Search the Hub: results as you type, with vLLM and fit badges."""
    result, error = _search(request.args)
    return render_template(
        "discover/discover.html",
        result=result,
        error=error,
        args=request.args,
        tasks=TASKS,
        licenses=LICENSES,
        sorts=SORTS,
    )


@bp.get("/discover/results")
def discover_results() -> str:
    """The results partial alone (htmx)."""
    result, error = _search(request.args)
    return render_template("discover/_results.html", result=result, error=error)


@bp.get("/discover/new")
def discover_new_entry() -> tuple[str, int] | str:
    """Editor for a catalog entry generated from a Hub model."""
    hf_id = request.args.get("hfModelId", "")
    gpu = request.args.get("gpuType") or None
    try:
        generated = discovery.generate_entry(hf_id, gpu_type=gpu)
    except PortalError as exc:
        return render_template("discover/editor.html", entry=None, error=exc.message, hf_id=hf_id), exc.status
    entry = generated["entry"]
    return render_template(
        "discover/editor.html",
        entry=entry,
        entry_json=json.dumps(entry, indent=2),
        error=None,
        hf_id=hf_id,
        gpu_type=generated["gpuType"],
        profiles=discovery.app_profiles(),
        result=validation.preview_entry(entry),
    )


def _editor_entry() -> Any:
    """The entry JSON from the editor, with the form fields written over it."""
    raw = request.form.get("entry_json", "")
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError as exc:
        raise InvalidInput(f"the JSON is not valid: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("the JSON must be an object")
    for key in ("id", "displayName"):
        value = request.form.get(key, "").strip()
        if value:
            data[key] = value
    length = request.form.get("maxModelLen", "").strip()
    if length:
        try:
            data.setdefault("vllm", {})["maxModelLen"] = int(length)
        except ValueError as exc:
            raise InvalidInput("max model length must be a whole number") from exc
    return data


@bp.post("/discover/validate")
def discover_validate() -> str:
    """Live validation of the editor: checks list and manifest preview (htmx partial)."""
    try:
        result = validation.preview_entry(_editor_entry())
        error = None
    except InvalidInput as exc:
        result, error = None, exc.message
    return render_template("discover/_validation.html", result=result, error=error)


@bp.post("/discover/save")
def discover_save() -> tuple[str, int]:
    """Write the entry into the catalog directory (409 when the id exists)."""
    try:
        entry = _editor_entry()
        path = catalog_pr.save_local_entry(entry, actor=current_actor())
    except Conflict as exc:
        return render_template("discover/_save_result.html", error=exc.message, path=None), 409
    except PortalError as exc:
        return render_template("discover/_save_result.html", error=exc.message, path=None), 422
    return render_template("discover/_save_result.html", error=None, path=path, entry_id=entry.get("id")), 200


@bp.get("/discover/<path:hf_id>")
def discover_model(hf_id: str) -> tuple[str, int] | str:
    """A Hub model: config summary, files, fit matrix across profiles, fixes, and next steps."""
    try:
        detail = discovery.model_detail(hf_id)
    except PortalError as exc:
        return render_template("discover/model.html", detail=None, error=exc.message, hf_id=hf_id), exc.status
    return render_template("discover/model.html", detail=detail, error=None, hf_id=hf_id)


@bp.get("/models/<string:model_id>/fit")
def entry_fit(model_id: str) -> str:
    """Fit of a catalog entry on the GPU it targets (partial, root id ``entry_fit``)."""
    gpu = request.args.get("gpuType") or None
    try:
        entry = get_catalog().get_entry(model_id)
        fit = discovery.entry_fit(entry, gpu)
        error = None
    except PortalError as exc:
        fit, error = None, exc.message
    return render_template("discover/_entry_fit.html", fit=fit, error=error, model_id=model_id)
