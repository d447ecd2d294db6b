"""Deleting an install, guarded against removing the weights the active model serves."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from portal.errors import (
    Conflict,
    NotFound,
    PortalError,
)
from portal.services import history, notify
from portal.services.activation import active_status
from portal.services.weights.listing import read_marker
from portal.services.weights.paths import resolve_inside, safe_relative, storage_root, uri_uses

log = logging.getLogger(__name__)


# -- active model guard ----------------------------------------------------------------------------
def active_storage_uri() -> tuple[str | None, str | None, str | None]:
    """(storageUri, modelId, note) of the active InferenceService; tolerant of a missing or down cluster."""
    try:
        active = active_status()
    except Exception as exc:  # the guard must not make deletes depend on the cluster being up
        reason = exc.message if isinstance(exc, PortalError) else type(exc).__name__
        return None, None, f"which install the active model uses is unknown ({reason})"
    if active.get("status") != "active":
        return None, None, None
    spec = (active.get("inferenceservice") or {}).get("spec") or {}
    uri = ((spec.get("predictor") or {}).get("model") or {}).get("storageUri")
    return uri, active.get("modelId"), None


def _deployment_using(relative: str) -> dict[str, Any] | None:
    """The first portal deployment whose storageUri uses these weights: every deployment's weights are guarded."""
    from portal.services.deployments import deployed_models

    try:
        models = deployed_models()
    except PortalError:  # like the active check: a down cluster view must not block deletes
        return None
    return next((m for m in models if uri_uses(m.get("storageUri"), relative)), None)


def delete_weights(
    raw_name: str,
    *,
    actor: str,
    force: bool = False,
    active: tuple[str | None, str | None] | None = None,
) -> dict[str, Any]:
    """Remove one install (never outside the root, never reserved); 409 without force when the active model uses it."""
    relative = safe_relative(raw_name)
    root = storage_root().resolve()
    path = resolve_inside(relative, root)
    if not path.is_dir():
        raise NotFound(f"model weights not found: {relative}", code="weights_not_found", details={"name": relative})
    note = None
    if active is None:
        uri, model_id, note = active_storage_uri()
    else:
        uri, model_id = active
    if uri_uses(uri, relative) and not force:
        raise Conflict(
            f"the active model {model_id or '(unknown)'} uses these weights ({uri}); "
            "deactivate it first or pass force=true",
            code="weights_in_use",
            details={"name": relative, "modelId": model_id, "storageUri": uri},
        )
    other = _deployment_using(relative) if active is None and not force else None
    if other is not None:
        raise Conflict(
            f"deployment {other['deployment']} serves {other['modelId'] or '(unknown)'} from these weights "
            f"({other['storageUri']}); delete or switch that deployment first, or pass force=true",
            code="weights_in_use",
            details={"name": relative, **other},
        )
    marker = read_marker(path)
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)
    parent = path.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()  # only empty parents go; a sibling install keeps its org dir
        except OSError:
            break
        parent = parent.parent
    history.record(
        "weight_deleted",
        actor=actor,
        model_id=relative,
        metadata={"hfModelId": (marker or {}).get("modelId"), "forced": bool(force and uri)},
    )
    notify.volume_changed()
    result: dict[str, Any] = {"status": "success", "message": f"Deleted weights for {relative}", "name": relative}
    if note:
        result["warning"] = note
    return result
