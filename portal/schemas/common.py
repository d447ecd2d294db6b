"""Schemas shared by several API areas (documentation of responses and query arguments)."""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from portal.config import DURATION_PATTERN

# A Hugging Face repo id as huggingface_hub accepts it (validate_repo_id), in ASCII: `[org/]name`, each part
# 1-96 of letters, digits, `_ . -`, starting with a letter or digit, ending with one or `_`; no `--`, `..`, `.git` end.
_HF_PART = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HF_RULES = r"(?!.*(?:--|\.\.))(?!.*\.git$)"
HF_REPO_ID_PATTERN = rf"^{_HF_RULES}(?:{_HF_PART}/)?{_HF_PART}$"
HF_ORG_REPO_ID_PATTERN = rf"^{_HF_RULES}{_HF_PART}/{_HF_PART}$"


class ErrorSchema(Schema):
    """The error body of every failing request (a few add context next to these three, e.g. validation results)."""

    class Meta:
        unknown = INCLUDE

    error = fields.String(required=True, metadata={"description": "A message a person can act on"})
    code = fields.String(required=True, metadata={"description": "snake_case machine code"})
    details = fields.Dict(metadata={"description": "Field errors or context"})


class HealthSchema(Schema):
    """Health report."""

    status = fields.String(metadata={"description": "ok or degraded"})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
    failed = fields.List(fields.String(), metadata={"description": "The dependencies that failed"})
    message = fields.String(metadata={"description": "Which dependency is unavailable"})


class JobSchema(Schema):
    """A background job (see the Job row)."""

    class Meta:
        unknown = "include"

    id = fields.String()
    type = fields.String()
    status = fields.String()
    stage = fields.String()
    progress = fields.Integer()
    message = fields.String()
    error = fields.String()
    actor = fields.String()
    bytesDone = fields.Integer()
    bytesTotal = fields.Integer()
    createdAt = fields.String()
    updatedAt = fields.String()


class JobEnvelopeSchema(Schema):
    """A queued job with its URL."""

    class Meta:
        unknown = "include"

    status = fields.String()
    job = fields.Dict()
    jobUrl = fields.String()


class JobListArgs(Schema):
    """Query arguments of GET /jobs."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    status = fields.String(validate=validate.OneOf(["pending", "running", "completed", "failed", "cancelled"]))
    type = fields.String(validate=validate.Length(max=64))
    modelId = fields.String(validate=validate.Length(max=256))


class JobPurgeArgs(Schema):
    """Query arguments of DELETE /jobs."""

    status = fields.String(validate=validate.OneOf(["completed", "failed", "cancelled"]))


class HistoryArgs(Schema):
    """Query arguments of GET /history."""

    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    event = fields.String(validate=validate.Length(max=64))
    modelId = fields.String(validate=validate.Length(max=256))
    since = fields.String(
        validate=validate.Length(max=64),
        metadata={
            "description": "Events newer than this: a duration before now (`24h`, `1h30m`, `90` seconds) "
            "or an RFC 3339 time (`2026-01-31T12:00:00Z`); empty for no filter",
            "anyOf": [{"pattern": DURATION_PATTERN}, {"format": "date-time"}, {"maxLength": 0}],
        },
    )
    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json")


class NoopJobSchema(Schema):
    """Body of POST /jobs/noop."""

    sleepSeconds = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0, max=30),
        metadata={"description": "How long the job waits before finishing"},
    )
