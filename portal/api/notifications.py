"""Notifications API: send a test message to every configured channel."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from portal import auth
from portal.schemas.notifications import NotificationTestBody, NotificationTestResult
from portal.services import notify

blp = Blueprint("notifications", __name__, description="Slack and webhook notifications")


@blp.route("/notifications/test")
class NotificationTest(MethodView):
    """Check the channels end to end."""

    @blp.arguments(NotificationTestBody, required=False)
    @blp.response(200, NotificationTestResult)
    @blp.alt_response(502, description="A channel did not accept the message (details.channels)")
    @blp.alt_response(503, description="No channel is configured")
    def post(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send `message` (or a default text) to Slack and every webhook now."""
        return notify.send_test((body or {}).get("message"), actor=auth.current_actor())
