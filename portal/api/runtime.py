"""Runtime API (reference §4.3-§4.5): activate, deactivate, roll back, dry run, and the active model."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.schemas.runtime import (
    ActivationSchema,
    ActiveSchema,
    DeactivationSchema,
    DryRunSchema,
    ModelIdBody,
    ModelTestBody,
)
from portal.services import activation

blp = Blueprint("runtime", __name__, description="Activate models on KServe and watch them")

_CLUSTER_ERRORS = {
    502: "The Kubernetes API answered with an error",
    503: "The Kubernetes API (or Redis, for the lock) is unreachable",
    504: "The Kubernetes API did not answer in time",
}


def _cluster_errors(func: Any) -> Any:
    for status, description in _CLUSTER_ERRORS.items():
        func = blp.alt_response(status, description=description)(func)
    return func


@blp.route("/models/activate")
class Activate(MethodView):
    """Make a catalog entry the active model."""

    @blp.arguments(ModelIdBody)
    @blp.response(200, ActivationSchema)
    @blp.alt_response(404, description="Unknown model id")
    @blp.alt_response(409, description="Another activation kept the lock, or a conflict")
    @blp.alt_response(422, description="The cluster refused the manifest (details.causes)")
    @_cluster_errors
    def post(self, body: dict[str, Any]) -> Response:
        """Create or replace the InferenceService for `id`."""
        return jsonify(activation.activate(body["id"], actor=auth.current_actor()))


@blp.route("/models/deactivate")
class Deactivate(MethodView):
    """Remove the active model."""

    @blp.response(200, DeactivationSchema)
    @_cluster_errors
    def post(self) -> Response:
        """Delete the InferenceService (`already_deleted` when there is none)."""
        return jsonify(activation.deactivate(actor=auth.current_actor()))


@blp.route("/models/rollback")
class Rollback(MethodView):
    """Go back to the previous model."""

    @blp.response(200, ActivationSchema)
    @blp.alt_response(409, description="Nothing to roll back to")
    @_cluster_errors
    def post(self) -> Response:
        """Re-activate the model that was active before the current one."""
        return jsonify(activation.rollback(actor=auth.current_actor()))


@blp.route("/models/test")
class DryRun(MethodView):
    """Check an entry against the cluster without changing anything."""

    @blp.arguments(ModelTestBody)
    @blp.response(200, DryRunSchema)
    @blp.alt_response(404, description="Unknown model id")
    @blp.alt_response(422, description="The cluster refused the manifest (details.causes)")
    @_cluster_errors
    def post(self, body: dict[str, Any]) -> Response:
        """Server-side dry run (warnings surfaced) and an optional readiness probe."""
        return jsonify(
            activation.dry_run_model(
                body["id"], readiness_url=body.get("readinessUrl"), timeout_seconds=body.get("timeoutSeconds")
            )
        )


@blp.route("/active")
class Active(MethodView):
    """The active model."""

    @blp.response(200, ActiveSchema)
    @_cluster_errors
    def get(self) -> Response:
        """`{"status":"none"}` or the model id, entry, Ready, reason, message, URL and live object."""
        return jsonify(activation.active_status())
