"""Schemas of the weights API and the Install form."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate


class InstallRequestSchema(Schema):
    """Body of POST /weights/install."""

    class Meta:
        unknown = EXCLUDE

    hfModelId = fields.String(
        required=True,
        validate=validate.Length(min=1, max=200),
        error_messages={"required": "Enter a Hugging Face model id such as Qwen/Qwen2.5-0.5B."},
    )
    revision = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    target = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=400))
    files = fields.List(fields.String(validate=validate.Length(max=400)), load_default=None, allow_none=True)
    overwrite = fields.Boolean(load_default=False)


class DeleteRequestSchema(Schema):
    """Body of DELETE /weights."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Length(min=1, max=400))
    force = fields.Boolean(load_default=False)


class NameArgs(Schema):
    """Query of GET /weights/info."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=400))


class ForceArgs(Schema):
    """Query of DELETE /weights/{name}."""

    force = fields.Boolean(load_default=False)
