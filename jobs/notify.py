"""Notification jobs: one delivery, and the periodic volume and readiness checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jobs import app_context
from portal.extensions import db


def deliver(channel_name: str, message: Mapping[str, Any]) -> bool:
    """Deliver one message to one channel with retries (portal.services.notify.deliver)."""
    with app_context():
        from portal.services import notify

        try:
            return notify.deliver(channel_name, message)
        finally:
            db.session.remove()


def check_volume() -> None:
    """Periodic: weights volume gauges and the PVC_ALERT_THRESHOLD alert."""
    with app_context():
        from portal.services import notify

        try:
            notify.check_volume()
        finally:
            db.session.remove()


def check_readiness() -> None:
    """Periodic: report an activated model that is not Ready by ACTIVATION_READY_TIMEOUT."""
    with app_context():
        from portal.services import notify

        try:
            notify.check_readiness()
        finally:
            db.session.remove()
