"""Periodic work: the RQ worker enqueues each registered task at most once per interval (all workers together).

The worker's maintenance pass (`PortalWorker.run_maintenance_tasks`, every 15 s while idle and between
jobs) calls `run_due()`. A Redis key per task (`SET NX EX interval`) makes one worker of the whole
deployment enqueue it, so the task runs once per interval however many workers there are. This is the
one mechanism for polling catalog pull requests, the weights-volume alert and the readiness watch; it
runs under `make run` (which starts a worker) and in production (the worker Deployment) alike.
"""

from __future__ import annotations

import logging

from flask import current_app

from portal.extensions import redis_holder

log = logging.getLogger(__name__)
KEY_PREFIX = "model-manager:periodic:"

# name → (interval in seconds, dotted path of the RQ function taking no argument)
TASKS: dict[str, tuple[float, str]] = {}


def register_periodic(name: str, interval: float, func_path: str) -> None:
    """Run `func_path` (an RQ job function without arguments) every `interval` seconds."""
    TASKS[name] = (interval, func_path)


def run_due() -> list[str]:
    """Enqueue every task whose interval has passed; returns the names enqueued by this call."""
    holder = redis_holder(current_app)
    enqueued = []
    for name, (interval, func_path) in TASKS.items():
        if not holder.connection.set(KEY_PREFIX + name, "1", nx=True, ex=max(1, int(interval))):
            continue  # another worker (or an earlier pass) enqueued it within the interval
        holder.queue.enqueue(
            func_path, job_timeout=max(60, int(interval) * 4), result_ttl=300, failure_ttl=86400, description=name
        )
        enqueued.append(name)
    return enqueued
