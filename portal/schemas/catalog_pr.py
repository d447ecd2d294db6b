"""Schemas of the catalog pull request API."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, post_load, validate

from portal.schemas.catalog import MAX_ID_LENGTH

# Entries are validated by the catalog service (issues with field paths); the document shows their schema.
_ENTRY_REF = {"$ref": "#/components/schemas/CatalogEntry"}


class CatalogPrBody(Schema):
    """Body of POST /catalog/pr: `entry` (a full entry) or `model` (an id in the catalog)."""

    class Meta:
        unknown = RAISE

    entry = fields.Dict(metadata={"description": "A full catalog entry", "allOf": [_ENTRY_REF]})
    model = fields.Raw(
        metadata={
            "description": "The id of an entry already in the catalog (a full entry object is accepted too, "
            "as the service this replaces took it)",
            "oneOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH}, _ENTRY_REF],
        }
    )
    branch = fields.String(validate=validate.Length(min=1, max=200), metadata={"description": "Default model/<id>"})
    base = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Default CATALOG_BASE_BRANCH, else the repo's default branch"},
    )
    title = fields.String(validate=validate.Length(max=256))
    body = fields.String(
        validate=validate.Length(max=20000), metadata={"description": "Text put above the generated evidence"}
    )
    draft = fields.Boolean(load_default=False)
    run_validation = fields.Boolean(
        data_key="validate", load_default=True, metadata={"description": "Refuse (400) an entry that fails a check"}
    )
    force = fields.Boolean(
        load_default=False, metadata={"description": "Replace an existing branch this portal created"}
    )

    @post_load
    def _rename(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        # `validate` is a Schema method, so the field has another attribute name.
        data["validate"] = data.pop("run_validation", True)
        return data


class CatalogEntryBody(Schema):
    """Body of POST /catalog/entries (a direct write into a local, not git-synced, catalog)."""

    class Meta:
        unknown = RAISE

    entry = fields.Dict(required=True, metadata={"allOf": [_ENTRY_REF]})


class CatalogPrListArgs(Schema):
    """Query of GET /catalog/prs."""

    pending = fields.Boolean(load_default=False, metadata={"description": "Only open or merged-but-not-synced"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class CatalogPrListSchema(Schema):
    """Answer of GET /catalog/prs."""

    pullRequests = fields.List(
        fields.Dict(),
        metadata={"description": "id, modelId, number, url, htmlUrl, branch, base, file, state, pending, actor, …"},
    )
    count = fields.Integer()
