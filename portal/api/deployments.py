"""Deployments API: several named InferenceServices, where a model fits, and the GPU capacity."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.api.runtime import _cluster_errors  # the cluster error statuses, documented once
from portal.schemas.deployments import (
    CapacityQuery,
    CapacitySchema,
    CreateDeploymentBody,
    DeploymentActionSchema,
    DeploymentListSchema,
    DeploymentSchema,
    NamespaceQuery,
    PlacementQuery,
    PlacementsSchema,
    SwitchModelBody,
)
from portal.services import deployments, placement

blp = Blueprint("deployments", __name__, description="Several models at once: deployments, placement, capacity")


@blp.route("/deployments")
class Deployments(MethodView):
    """The portal's deployments."""

    @blp.response(200, DeploymentListSchema)
    @_cluster_errors
    def get(self) -> Response:
        """Every deployment with status, model, GPUs and node (from the watched view)."""
        return jsonify(deployments.list_deployments())

    @blp.arguments(CreateDeploymentBody)
    @blp.response(201, DeploymentActionSchema)
    @blp.alt_response(400, description="Bad name (not DNS-1035), body or namespace")
    @blp.alt_response(404, description="Unknown model or node")
    @blp.alt_response(409, description="The name exists, or the model cannot be scheduled (details.refused)")
    @blp.alt_response(422, description="The cluster refused the manifest (details.causes)")
    @_cluster_errors
    def post(self, body: dict[str, Any]) -> tuple[Response, int]:
        """Create a deployment on the best placement, or on the given node / GPU count."""
        result = deployments.create_deployment(
            body["name"],
            body["model"],
            actor=auth.current_actor(),
            gpus=body.get("gpus"),
            node=body.get("node"),
            namespace=body.get("namespace"),
        )
        return jsonify(result), 201


@blp.route("/deployments/<string:name>")
class Deployment(MethodView):
    """One deployment."""

    @blp.arguments(NamespaceQuery, location="query")
    @blp.response(200, DeploymentSchema)
    @blp.alt_response(404, description="No such deployment")
    @_cluster_errors
    def get(self, query: dict[str, Any], name: str) -> Response:
        """Status, conditions, URL, model, GPUs, node and predicted fit."""
        return jsonify(deployments.get_deployment(name, query.get("namespace")))

    @blp.arguments(SwitchModelBody)
    @blp.arguments(NamespaceQuery, location="query")
    @blp.response(200, DeploymentActionSchema)
    @blp.alt_response(404, description="No such deployment or model")
    @blp.alt_response(409, description="Another change holds the lock, or the model cannot be scheduled")
    @blp.alt_response(422, description="The cluster refused the manifest (details.causes)")
    @_cluster_errors
    def put(self, body: dict[str, Any], query: dict[str, Any], name: str) -> Response:
        """Switch the deployment to another catalog model (placed again, serialized per deployment, recorded)."""
        return jsonify(
            deployments.switch_model(name, body["model"], actor=auth.current_actor(), namespace=query.get("namespace"))
        )

    @blp.arguments(NamespaceQuery, location="query")
    @blp.response(200, DeploymentActionSchema)
    @blp.alt_response(404, description="No such deployment")
    @_cluster_errors
    def delete(self, query: dict[str, Any], name: str) -> Response:
        """Delete the deployment's InferenceService."""
        return jsonify(
            deployments.delete_deployment(name, actor=auth.current_actor(), namespace=query.get("namespace"))
        )


@blp.route("/deployments/<string:name>/rollback")
class DeploymentRollback(MethodView):
    """Go back to the deployment's previous model."""

    @blp.arguments(NamespaceQuery, location="query")
    @blp.response(200, DeploymentActionSchema)
    @blp.alt_response(404, description="No such deployment")
    @blp.alt_response(409, description="Nothing to roll back to, or it cannot be scheduled")
    @_cluster_errors
    def post(self, query: dict[str, Any], name: str) -> Response:
        """Re-deploy the model this deployment served before the current one."""
        return jsonify(
            deployments.rollback_deployment(name, actor=auth.current_actor(), namespace=query.get("namespace"))
        )


@blp.route("/placements")
class Placements(MethodView):
    """Where a model can run now."""

    @blp.arguments(PlacementQuery, location="query")
    @blp.response(200, PlacementsSchema)
    @blp.alt_response(400, description="Neither or both of model and hfModelId")
    @blp.alt_response(404, description="Unknown catalog model or Hub model")
    @_cluster_errors
    def get(self, query: dict[str, Any]) -> Response:
        """Every working placement (node, GPUs, max-model-len, KV tokens), best first, and why other nodes do not work."""
        return jsonify(placement.placements_for(query.get("model"), query.get("hfModelId")))


@blp.route("/capacity")
class Capacity(MethodView):
    """GPU capacity per node."""

    @blp.arguments(CapacityQuery, location="query")
    @blp.response(200, CapacitySchema)
    @blp.alt_response(404, description="Unknown catalog model in `add`")
    @_cluster_errors
    def get(self, query: dict[str, Any]) -> Response:
        """GPUs per node: allocatable, held by which deployment, free; `?add=<model>`: what would no longer fit."""
        return jsonify(placement.capacity(query.get("add")))
