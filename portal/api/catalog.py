"""Catalog API (reference §3.4, §4.6): list, get, manifest, refresh, status."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from portal.schemas.catalog import CatalogEntrySchema
from portal.schemas.runtime import CatalogStatusSchema, ManifestSchema, ModelsQuery, RefreshSchema
from portal.services import activation
from portal.services.catalog import entries_json, get_catalog
from portal.services.manifests import manifest_to_yaml

blp = Blueprint("catalog", __name__, description="The model catalog and its rendered manifests")


@blp.route("/models")
class Models(MethodView):
    """The catalog entries."""

    @blp.arguments(ModelsQuery, location="query")
    @blp.response(200, CatalogEntrySchema(many=True))
    def get(self, args: dict[str, Any]) -> Response:
        """Every entry, sorted by id (`[]` when empty); `q` filters by id, displayName or hfModelId."""
        # Pre-serialised bytes: the unfiltered list is encoded once per catalog generation.
        return Response(entries_json(get_catalog(), args.get("q")), mimetype="application/json")


@blp.route("/models/<model_id:model_id>")
class Model(MethodView):
    """One catalog entry."""

    @blp.response(200, CatalogEntrySchema)
    @blp.alt_response(404, description="Unknown model id")
    def get(self, model_id: str) -> Response:
        """The full entry."""
        return jsonify(get_catalog().get_entry(model_id))


@blp.route("/models/<model_id:model_id>/manifest")
class Manifest(MethodView):
    """The InferenceService an activation would apply."""

    @blp.response(200, ManifestSchema)
    @blp.alt_response(404, description="Unknown model id")
    def get(self, model_id: str) -> Response:
        """`{"manifest", "model", "yaml", "droppedArgs"?}`."""
        result = activation.manifest_for(model_id)
        result["yaml"] = manifest_to_yaml(result["manifest"])
        return jsonify(result)


@blp.route("/refresh")
class Refresh(MethodView):
    """Reload the catalog now (every worker follows)."""

    @blp.response(200, RefreshSchema)
    def post(self) -> Response:
        """Reload from disk; answers the entries plus counts and issues."""
        catalog = get_catalog()
        snap = catalog.refresh()
        return jsonify(
            {
                "status": "success",
                "message": "Catalog refreshed",
                "catalogStatus": snap.status,
                "detail": snap.message,
                "models": catalog.list_entries(),
                "count": len(snap.entries),
                "errors": snap.errors,
                "warnings": snap.warnings,
                "issues": [issue.to_dict() for issue in snap.issues],
                "generation": snap.generation,
                "sharedGeneration": snap.shared_generation,
            }
        )


@blp.route("/catalog/status")
class CatalogStatus(MethodView):
    """How the catalog loaded: counts and every problem file."""

    @blp.response(200, CatalogStatusSchema)
    def get(self) -> Response:
        """Status, counts, issues (file, line, field, message, severity)."""
        return jsonify(get_catalog().status())
