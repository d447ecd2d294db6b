"""Request and response schemas of the catalog and runtime (activation) API."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from portal.schemas.catalog import MAX_ID_LENGTH


class _Loose(Schema):
    class Meta:
        unknown = EXCLUDE


class ModelsQuery(_Loose):
    """Query arguments of GET /models."""

    q = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "Keep entries whose id, displayName or hfModelId contains this text"},
    )


class ModelIdBody(_Loose):
    """A body naming one catalog entry."""

    id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_ID_LENGTH),
        metadata={"example": "qwen2.5-1.5b-instruct"},
    )


# An http(s) URL with a DNS name or IPv4 host (what the readiness probe can GET).
READINESS_URL_PATTERN = r"^https?://[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d{1,5})?(?:[/?#]\S*)?$"


class ModelTestBody(ModelIdBody):
    """Body of POST /models/test (dry run and optional readiness probe)."""

    readinessUrl = fields.String(
        allow_none=True,
        validate=validate.Length(max=2048),
        # Enforced by services.activation.check_probe_url (error code invalid_readiness_url).
        metadata={
            "description": "http(s) URL probed with one GET after the dry run (empty: no probe)",
            "pattern": "^$|" + READINESS_URL_PATTERN,
        },
    )
    timeoutSeconds = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(min=1, max=30),
        metadata={"description": "Probe timeout, 1-30 s (default 10)"},
    )


class StatusMessageSchema(Schema):
    """A success answer with a message."""

    class Meta:
        unknown = "include"

    status = fields.String(metadata={"example": "success"})
    message = fields.String()


class ActivationSchema(StatusMessageSchema):
    """Answer of POST /models/activate and /models/rollback."""

    model = fields.Dict(metadata={"description": "The catalog entry"})
    inferenceservice = fields.Dict(
        metadata={"description": "action (created|updated), name, namespace, previousModelId, manifestHash"}
    )
    rollback = fields.Dict(metadata={"description": "from/to model ids (rollback only)"})


class DeactivationSchema(StatusMessageSchema):
    """Answer of POST /models/deactivate."""

    result = fields.Dict(metadata={"description": "action (deleted|already_deleted), name, namespace, modelId"})


class ActiveSchema(Schema):
    """Answer of GET /active."""

    status = fields.String(metadata={"description": "none or active"})
    message = fields.String()
    modelId = fields.String(allow_none=True)
    model = fields.Dict(allow_none=True, metadata={"description": "Catalog entry (null when it left the catalog)"})
    ready = fields.String(metadata={"description": "True, False or Unknown"})
    reason = fields.String()
    phase = fields.String(metadata={"description": "pending, ready or failed"})
    url = fields.String(allow_none=True)
    manifestHash = fields.String(allow_none=True)
    inferenceservice = fields.Dict(metadata={"description": "The live object"})


class DryRunSchema(Schema):
    """Answer of POST /models/test."""

    status = fields.String(metadata={"description": "success, or warning (API warnings or failed probe)"})
    dryRun = fields.Dict(metadata={"description": "action (create|update), manifest, warnings, droppedArgs"})
    readiness = fields.Dict(metadata={"description": "status ok|fail|error, code, durationMs, url, preview"})


class ManifestSchema(Schema):
    """Answer of GET /models/{id}/manifest."""

    manifest = fields.Dict()
    model = fields.Dict()
    yaml = fields.String()
    droppedArgs = fields.List(fields.String())


class RefreshSchema(StatusMessageSchema):
    """Answer of POST /refresh."""

    models = fields.List(fields.Dict())
    count = fields.Integer()
    errors = fields.Integer()
    warnings = fields.Integer()
    issues = fields.List(fields.Dict())


class CatalogStatusSchema(Schema):
    """Answer of GET /catalog/status."""

    class Meta:
        unknown = "include"

    status = fields.String(metadata={"description": "live, empty or missing"})
    message = fields.String()
    count = fields.Integer()
    files = fields.Integer()
    errors = fields.Integer()
    warnings = fields.Integer()
    issues = fields.List(fields.Dict(), metadata={"description": "file, line, field, message, severity"})
    generation = fields.Integer()
    sharedGeneration = fields.Integer()
    loadedAt = fields.String()
    modelsDir = fields.String()
    sourceDir = fields.String()
    fingerprint = fields.String()
