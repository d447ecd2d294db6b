"""Discovery API: Hub search and details, vLLM support, fit, recommendations, catalog authoring and validation."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest import Blueprint

from portal.errors import InvalidInput
from portal.schemas.discovery import (
    CompatibilityArgs,
    GenerateBody,
    HubModelBody,
    HubSearchArgs,
    RecommendationArgs,
    SupportedModelsArgs,
)
from portal.services import discovery, validation, vllm_registry
from portal.services.catalog import get_catalog

blp = Blueprint("discovery", __name__, description="Hugging Face discovery, vLLM support, GPU fit and validation")


# The JSON these views read themselves (documented so clients and the contract tests send it).
_ENTRY_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CatalogEntry"}}},
}
_ANY_BODY = {"required": False, "content": {"application/json": {"schema": {}}}}


def _json_body() -> Any:
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("invalid model payload: the body must be JSON", code="invalid_json")
    return data


@blp.route("/huggingface/search")
class HubSearch(MethodView):
    """Search the Hub."""

    @blp.arguments(HubSearchArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Insights (vLLM support, weights size, fit per GPU profile) for the Hub's matches."""
        return discovery.search(discovery.search_query(args))


@blp.route("/huggingface/models/<hf_repo_id:hf_id>")
class HubModel(MethodView):
    """One Hub model."""

    @blp.response(200)
    def get(self, hf_id: str) -> dict[str, Any]:
        """Insight, config summary, files with sizes and a fit report per GPU profile."""
        return discovery.model_detail(hf_id)


@blp.route("/vllm/model-info")
class VllmModelInfo(MethodView):
    """Model details as POST (the seed's path)."""

    @blp.arguments(HubModelBody)
    @blp.response(200)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Same as `GET /huggingface/models/{id}`, plus the suggested catalog entry."""
        detail = discovery.model_detail(body["hfModelId"])
        detail["suggestedCatalog"] = discovery.generate_entry(body["hfModelId"])["entry"]
        return detail


@blp.route("/vllm/discover")
class VllmDiscover(MethodView):
    """Suggested catalog entry (bare)."""

    @blp.arguments(GenerateBody)
    @blp.response(200)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """The generated entry for a Hub model, sized for the best GPU profile."""
        generated = discovery.generate_entry(
            body["hfModelId"], display_name=body.get("displayName"), gpu_type=body.get("gpuType")
        )
        entry: dict[str, Any] = generated["entry"]
        return entry


@blp.route("/catalog/generate")
class CatalogGenerate(MethodView):
    """Generate and validate an entry."""

    @blp.arguments(GenerateBody)
    @blp.response(200)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Generated entry with overrides applied, its validation and the fit it was sized with."""
        overrides: dict[str, Any] = {
            k: body[k] for k in ("storageUri", "resources", "nodeSelector", "tolerations", "env") if k in body
        }
        return validation.generate_and_validate(
            body["hfModelId"], display_name=body.get("displayName"), gpu_type=body.get("gpuType"), overrides=overrides
        )


@blp.route("/vllm/supported-models")
class SupportedModels(MethodView):
    """Architectures vLLM serves."""

    @blp.arguments(SupportedModelsArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Filtered list; `refresh=true` fetches the registry from GitHub (bundled list when unreachable)."""
        warning = None
        if args["refresh"]:
            registry, warning = vllm_registry.refresh(args["ref"] or None)
        else:
            registry = vllm_registry.active_registry()
        archs = registry.list_architectures(category=args["category"] or None, search=args["search"] or None)
        out: dict[str, Any] = {
            "architectures": [a.to_dict() for a in archs],
            "count": len(archs),
            "categories": registry.categories(),
            "source": registry.source.to_dict(),
        }
        if warning:
            out["warning"] = f"{warning}; answered from the bundled list"
        return out


@blp.route("/vllm/model/<string:architecture>")
class VllmArchitecture(MethodView):
    """One architecture."""

    @blp.response(200)
    def get(self, architecture: str) -> dict[str, Any]:
        """Module, class, categories, and catalog entries whose model uses it."""
        return discovery.architecture_detail(architecture)


@blp.route("/models/<string:model_id>/compatibility")
class Compatibility(MethodView):
    """Fit of a catalog entry."""

    @blp.arguments(CompatibilityArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any], model_id: str) -> dict[str, Any]:
        """One report for `gpuType`, else one per profile with `compatible` (any fits) and `best`."""
        entry = get_catalog().get_entry(model_id)
        return discovery.compatibility(entry, args["gpuType"] or None)


@blp.route("/recommendations/profiles")
class Profiles(MethodView):
    """GPU profiles."""

    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """Every profile with how many such GPUs the cluster has and how many are free."""
        return discovery.profile_listing()


@blp.route("/recommendations/<string:gpu_type>")
class Recommendations(MethodView):
    """vLLM flags for a GPU."""

    @blp.arguments(RecommendationArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any], gpu_type: str) -> dict[str, Any]:
        """Flags with a reason each; `?model=<catalog id>` or `?hfModelId=` size them for a model."""
        entry = get_catalog().get_entry(args["model"]) if args["model"] else None
        return discovery.recommendations(gpu_type, entry=entry, hf_id=args["hfModelId"] or None)


@blp.route("/catalog/validate")
class CatalogValidate(MethodView):
    """Validate an entry."""

    @blp.doc(requestBody=_ENTRY_BODY)
    @blp.response(200)
    @blp.alt_response(400, description="Invalid: the same result body")
    def post(self) -> Response:
        """Checks with pass/warn/fail; 400 with the same body when invalid."""
        result = validation.validate_entry(_json_body())
        if not result["valid"]:
            # Same body as the original service, plus the error shape every other 4xx has.
            failed = [c["name"] for c in result.get("checks", []) if c.get("status") == "fail"]
            result = {
                **result,
                "error": "the catalog entry is not valid: " + (", ".join(failed) or "schema errors"),
                "code": "entry_invalid",
                "details": {"failedChecks": failed, "errors": result.get("errors", [])},
            }
        response = jsonify(result)
        response.status_code = 200 if result["valid"] else 400
        return response


@blp.route("/catalog/preview")
class CatalogPreview(MethodView):
    """Preview an entry."""

    @blp.doc(requestBody=_ANY_BODY)
    @blp.response(200)
    def post(self) -> dict[str, Any]:
        """Always 200: validation (with `status: warning` when invalid) and the rendered manifest."""
        data = request.get_json(silent=True)
        return validation.preview_entry(data if data is not None else {})
