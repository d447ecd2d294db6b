"""Weights API (reference §5): list, usage, info, delete, install (as a job)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.schemas.weights import DeleteRequestSchema, ForceArgs, InstallRequestSchema, NameArgs
from portal.services import weights

blp = Blueprint("weights", __name__, description="Model weights on the weights volume (PVC)")


@blp.route("/weights")
class WeightList(MethodView):
    """Installed weights."""

    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """Every install, largest first."""
        return {"weights": weights.list_weights()}

    @blp.arguments(DeleteRequestSchema)
    @blp.response(200)
    def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        """Delete one install by name (`force` when the active model uses it)."""
        return weights.delete_weights(body["name"], actor=auth.current_actor(), force=body["force"])


@blp.route("/weights/usage")
class WeightUsage(MethodView):
    """Volume usage."""

    @blp.response(200)
    def get(self) -> dict[str, Any]:
        """statfs total/available, bytes used by installs, per-install sizes."""
        return weights.usage()


@blp.route("/weights/info")
class WeightInfoQuery(MethodView):
    """One install by query name."""

    @blp.arguments(NameArgs, location="query")
    @blp.response(200)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """WeightInfo of `?name=<org/name>`."""
        return weights.get_info(args["name"])


@blp.route("/weights/<weight_name:name>/info")
class WeightInfoPath(MethodView):
    """One install by path name."""

    @blp.response(200)
    def get(self, name: str) -> dict[str, Any]:
        """WeightInfo of an install (names may contain `/`)."""
        return weights.get_info(name)


@blp.route("/weights/<weight_item:name>")
class WeightItem(MethodView):
    """Delete by path name."""

    @blp.arguments(ForceArgs, location="query")
    @blp.response(200)
    def delete(self, args: dict[str, Any], name: str) -> dict[str, Any]:
        """Delete one install (`?force=true` when the active model uses it)."""
        return weights.delete_weights(name, actor=auth.current_actor(), force=args["force"])


@blp.route("/weights/install")
class WeightInstall(MethodView):
    """Start an install."""

    @blp.arguments(InstallRequestSchema)
    @blp.response(202)
    def post(self, body: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Resolve the revision and files on the Hub, check room, queue the download job."""
        result = weights.request_install(
            hf_model_id=body["hfModelId"],
            revision=body.get("revision"),
            target=body.get("target"),
            files=body.get("files"),
            overwrite=body["overwrite"],
            actor=auth.current_actor(),
        )
        return result, 202
