"""Schemas of the discovery API: query arguments and request bodies."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from portal.services.huggingface import MAX_SEARCH_LIMIT, SORT_FIELDS


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class HubSearchArgs(_Lenient):
    """Query of `GET /huggingface/search`."""

    q = fields.String(load_default="")
    author = fields.String(load_default="")
    pipelineTag = fields.String(load_default="")
    library = fields.String(load_default="")
    license = fields.String(load_default="")
    tags = fields.String(load_default="", metadata={"description": "Comma list of tags"})
    tag = fields.List(fields.String(), load_default=list, metadata={"description": "Repeatable tag"})
    sort = fields.String(load_default="downloads", validate=validate.OneOf(list(SORT_FIELDS)))
    direction = fields.String(load_default="desc", validate=validate.OneOf(["asc", "desc", "1", "-1"]))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_SEARCH_LIMIT))


class HubModelBody(_Lenient):
    """`{"hfModelId": "org/name"}`."""

    hfModelId = fields.String(required=True, validate=validate.Length(min=1, max=200))


class GenerateBody(_Lenient):
    """`POST /catalog/generate` and `/vllm/discover`: the Hub id plus optional overrides."""

    hfModelId = fields.String(required=True, validate=validate.Length(min=1, max=200))
    displayName = fields.String()
    gpuType = fields.String()
    storageUri = fields.String()
    resources = fields.Dict()
    nodeSelector = fields.Dict()
    tolerations = fields.List(fields.Dict())
    env = fields.List(fields.Dict())


class SupportedModelsArgs(_Lenient):
    """Query of `GET /vllm/supported-models`."""

    category = fields.String(load_default="")
    search = fields.String(load_default="")
    refresh = fields.Boolean(load_default=False, metadata={"description": "Fetch the list from GitHub"})
    ref = fields.String(
        load_default="", metadata={"description": "vLLM tag for the refresh (default: bundled version)"}
    )


class CompatibilityArgs(_Lenient):
    """Query of `GET /models/{id}/compatibility`."""

    gpuType = fields.String(load_default="")


class RecommendationArgs(_Lenient):
    """Query of `GET /recommendations/{gpuType}`."""

    model = fields.String(load_default="")
    hfModelId = fields.String(load_default="")
