"""Schemas shared by several API areas (documentation of responses and query arguments)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorSchema(Schema):
    """The error body of every failing request."""

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
        metadata={"description": "A duration (24h, 30m) or an RFC 3339 time"},
    )
    format = fields.String(validate=validate.OneOf(["json", "csv"]), load_default="json")


class NoopJobSchema(Schema):
    """Body of POST /jobs/noop."""

    sleepSeconds = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0, max=30),
        metadata={"description": "How long the job waits before finishing"},
    )
