"""URL converters of the API: a path parameter never swallows a fixed route, and its pattern is documented.

werkzeug tries every rule whose path matches before it answers 405, and builds `Allow` from all of them:
`DELETE /weights/<path:name>` used to match `/weights/usage` and `/weights/install/status/<id>`, and
`GET /models/<id>` matched `/models/deactivate`. Each converter below excludes the fixed paths next to it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.routing import BaseConverter, PathConverter

from portal.schemas.common import HF_REPO_ID_PATTERN
from portal.schemas.weights import WEIGHT_NAME_PATTERN
from portal.services.jobs import JOB_ID_PATTERN

# The action routes under /models/ (runtime API); a catalog entry cannot be reached as GET /models/<one of them>.
MODEL_ACTIONS = ("activate", "deactivate", "rollback", "test")


class ModelIdConverter(BaseConverter):
    """A catalog entry id: one path segment other than the action routes under /models/."""

    regex = rf"(?!(?:{'|'.join(MODEL_ACTIONS)})$)[^/]+"


class JobIdConverter(BaseConverter):
    """A job id (`/jobs/noop` is the no-op job's route, not a job)."""

    regex = rf"(?!noop$){JOB_ID_PATTERN}"


class DocumentedPathConverter(PathConverter):
    """A path (may hold `/`) routed as werkzeug's `path`, documented with the pattern of the values that exist.

    Routing stays permissive so that the service answers other values with its own 400/404.
    """

    documented = r"[^/].*"

    def schema(self) -> dict[str, Any]:
        """The OpenAPI schema of the parameter."""
        return {"type": "string", "pattern": f"^{self.documented}$"}


class WeightNameConverter(DocumentedPathConverter):
    """An install name such as `org/model`."""

    documented = WEIGHT_NAME_PATTERN.removeprefix("^").removesuffix("$")


# Install names that would shadow the fixed routes next to `DELETE /weights/<name>`.
_NOT_A_WEIGHTS_ROUTE = r"(?!(?:usage|info|install)$)(?!install/status/)(?!.*/info$)"


class WeightItemConverter(WeightNameConverter):
    """`DELETE /weights/<name>`: an install name, except the fixed routes under /weights/ and names ending in `/info`.

    Such names stay reachable through the body (`DELETE /weights`) and query (`GET /weights/info?name=`) forms.
    """

    regex = _NOT_A_WEIGHTS_ROUTE + PathConverter.regex
    documented = _NOT_A_WEIGHTS_ROUTE + WeightNameConverter.documented


class HubRepoIdConverter(DocumentedPathConverter):
    """A Hugging Face repo id, `org/name` or `name`."""

    documented = HF_REPO_ID_PATTERN.removeprefix("^").removesuffix("$")


CONVERTERS: dict[str, type[BaseConverter]] = {
    "model_id": ModelIdConverter,
    "job_id": JobIdConverter,
    "weight_name": WeightNameConverter,
    "weight_item": WeightItemConverter,
    "hf_repo_id": HubRepoIdConverter,
}


def _document(converter: BaseConverter) -> dict[str, Any]:
    if isinstance(converter, DocumentedPathConverter):
        return converter.schema()
    return {"type": "string", "pattern": f"^{converter.regex}$"}


def register_converters(app: Flask, api: Api) -> None:
    """Make the converters usable in routes and document each path parameter with its pattern."""
    for name, converter in CONVERTERS.items():
        app.url_map.converters[name] = converter
        api.register_converter(converter, _document)
