"""Schemas of the weights API and the Install form."""

from __future__ import annotations

import re

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from portal.schemas.common import HF_ORG_REPO_ID_PATTERN

# An install name as the weights service keeps it (services.weights.safe_relative): `/`-separated segments of
# letters, digits and `_ . -`, not starting with `.` or `-`, none reserved (`modules`, `*.partial`, `*.old-*`).
_SEGMENT = r"(?!modules(?:/|$))(?![^/]*\.partial(?:/|$))(?![^/]*\.old-)[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}"
WEIGHT_NAME_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
REVISION_PATTERN = r"^(?:[A-Za-z0-9][A-Za-z0-9_./-]{0,199})?$"
# A file name or glob inside the repo; `..` segments are refused.
FILE_PATTERN = r"^(?!(?:.*/)?\.\.(?:/|$))[^\x00]*$"
_WEIGHT_NAME = re.compile(WEIGHT_NAME_PATTERN)


def _canonical_name(value: str | None) -> None:
    """An install name to create: the weights service's own refusals first (traversal, reserved), then its form."""
    if not value:
        return
    from portal.services.weights import safe_relative

    safe_relative(value)  # raises InvalidInput with its precise code (path_traversal, reserved_path, …)
    if not _WEIGHT_NAME.fullmatch(value):
        raise ValidationError("use letters, digits and _ . - in /-separated segments, e.g. org/model")


_NAME_DOC = {
    "description": "An install name such as `org/model`; other spellings are normalised (junk becomes `-`)",
    "pattern": WEIGHT_NAME_PATTERN,
}


class InstallRequestSchema(Schema):
    """Body of POST /weights/install."""

    class Meta:
        unknown = EXCLUDE

    hfModelId = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=200),
            validate.Regexp(
                HF_ORG_REPO_ID_PATTERN, error="invalid Hugging Face model id: use org/name, e.g. Qwen/Qwen2.5-0.5B"
            ),
        ],
        error_messages={"required": "Enter a Hugging Face model id such as Qwen/Qwen2.5-0.5B."},
        metadata={"description": "The Hugging Face repo, `org/name`"},
    )
    revision = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=200), validate.Regexp(REVISION_PATTERN)],
        metadata={"description": "Branch, tag or commit (default `main`)"},
    )
    target = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=400), _canonical_name],
        metadata={
            "description": "Install name on the weights volume (default: the repo id)",
            "pattern": r"^$|" + WEIGHT_NAME_PATTERN,
        },
    )
    files = fields.List(
        fields.String(validate=[validate.Length(max=400), validate.Regexp(FILE_PATTERN)]),
        load_default=None,
        allow_none=True,
        metadata={"description": "File names or glob patterns to download (default: all)"},
    )
    overwrite = fields.Boolean(load_default=False)


class DeleteRequestSchema(Schema):
    """Body of DELETE /weights."""

    class Meta:
        unknown = EXCLUDE

    name = fields.String(required=True, validate=validate.Length(min=1, max=400), metadata=_NAME_DOC)
    force = fields.Boolean(load_default=False)


class NameArgs(Schema):
    """Query of GET /weights/info."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=400), metadata=_NAME_DOC)


class ForceArgs(Schema):
    """Query of DELETE /weights/{name}."""

    force = fields.Boolean(load_default=False)
