"""Schemas of the notifications API."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class NotificationTestBody(Schema):
    """Body of POST /notifications/test."""

    class Meta:
        unknown = RAISE

    message = fields.String(validate=validate.Length(max=2000), metadata={"description": "Text to send"})


class NotificationTestResult(Schema):
    """Outcome per channel (channel names only, never a URL)."""

    status = fields.String()
    channels = fields.List(fields.Dict())
