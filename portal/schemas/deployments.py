"""Request and response schemas of the deployments and placement API."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from portal.schemas.catalog import MAX_ID_LENGTH


class _Loose(Schema):
    class Meta:
        unknown = EXCLUDE


class _Open(Schema):
    class Meta:
        unknown = "include"


class NamespaceQuery(_Loose):
    """`?namespace=` (default ACTIVE_NAMESPACE; must be ACTIVE_NAMESPACE or one of MANAGED_NAMESPACES)."""

    namespace = fields.String(validate=validate.Length(min=1, max=63))


class CreateDeploymentBody(_Loose):
    """Body of POST /deployments."""

    name = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=63),
            validate.Regexp(
                r"^[a-z]([-a-z0-9]*[a-z0-9])?$",
                error="must be a DNS-1035 label: lowercase letters, digits and '-', starting with a letter",
            ),
        ],
        metadata={"description": "DNS-1035 label", "example": "chat"},
    )
    model = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_ID_LENGTH), metadata={"example": "tiny-gpt2-test"}
    )
    gpus = fields.Integer(
        strict=True, allow_none=True, validate=validate.Range(min=1, max=64), metadata={"description": "GPU count"}
    )
    node = fields.String(allow_none=True, validate=validate.Length(min=1, max=253))
    namespace = fields.String(allow_none=True, validate=validate.Length(min=1, max=63))


class SwitchModelBody(_Loose):
    """Body of PUT /deployments/{name}."""

    model = fields.String(required=True, validate=validate.Length(min=1, max=MAX_ID_LENGTH))


class PlacementQuery(_Loose):
    """Query of GET /placements: exactly one of model (catalog id) or hfModelId."""

    model = fields.String(validate=validate.Length(min=1, max=MAX_ID_LENGTH))
    hfModelId = fields.String(validate=validate.Length(min=1, max=200))


class DeploymentSchema(_Open):
    """One deployment."""

    name = fields.String()
    namespace = fields.String()
    default = fields.Boolean(metadata={"description": "True for the seed's single slot (ACTIVE_INFERENCESERVICE_NAME)"})
    modelId = fields.String(allow_none=True)
    ready = fields.String()
    phase = fields.String(metadata={"description": "pending, ready or failed"})
    reason = fields.String()
    message = fields.String()
    url = fields.String(allow_none=True)
    conditions = fields.List(fields.Dict())
    gpus = fields.Dict(allow_none=True, metadata={"description": "resource and count"})
    node = fields.String(allow_none=True)
    predicted = fields.Dict(allow_none=True, metadata={"description": "gpuType, kvTokens, maxConcurrency, maxModelLen"})


class DeploymentListSchema(_Open):
    """Answer of GET /deployments."""

    deployments = fields.List(fields.Nested(DeploymentSchema))
    counts = fields.Dict(metadata={"description": "ready / notReady"})
    view = fields.Dict(metadata={"description": "present when the watched view is stale: stale, since, reason"})


class DeploymentActionSchema(_Open):
    """Answer of the mutating deployment calls."""

    status = fields.String()
    message = fields.String()
    deployment = fields.Nested(DeploymentSchema)


class PlacementsSchema(_Open):
    """Answer of GET /placements."""

    placements = fields.List(fields.Dict(), metadata={"description": "best first: node, gpus, maxModelLen, kvTokens"})
    refused = fields.List(fields.Dict(), metadata={"description": "node, code, message"})
    fits = fields.Boolean()


class CapacityQuery(_Loose):
    """Query of GET /capacity."""

    add = fields.String(
        validate=validate.Length(min=1, max=MAX_ID_LENGTH),
        metadata={"description": "A catalog model: where it would go, and what would then no longer fit"},
    )


class CapacitySchema(_Open):
    """Answer of GET /capacity."""

    nodes = fields.List(fields.Dict(), metadata={"description": "allocatable, inUse, free, holders per node"})
    ifAdded = fields.Dict(metadata={"description": "with ?add=: placement, noLongerFits, notEstimated"})
