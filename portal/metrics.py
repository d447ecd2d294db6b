"""Prometheus metrics, correct under gunicorn with several workers (multiprocess mode)."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

HTTP_REQUESTS = Counter(
    "model_manager_http_requests_total", "HTTP requests by route template", ["method", "path", "status"]
)
HTTP_DURATION = Histogram(
    "model_manager_http_request_duration_seconds",
    "HTTP request duration by route template",
    ["method", "path"],
)
JOB_STATUS = Counter("model_manager_job_status_total", "Jobs reaching a final status", ["type", "status"])
JOB_DURATION = Histogram(
    "model_manager_job_duration_seconds",
    "Job run time",
    ["type", "status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
DOWNLOAD_BYTES = Counter("model_manager_download_bytes_total", "Bytes downloaded from the Hub")
JOBS_TOTAL = Counter("model_manager_jobs_total", "Jobs finished, by type and final status", ["type", "status"])
NOTIFICATIONS = Counter(
    "model_manager_notifications_total", "Notification deliveries by channel and outcome", ["channel", "status"]
)
# Set by the volume check (after installs, deletes and periodically); the newest value of any process wins.
WEIGHTS_USED = Gauge(
    "model_manager_weights_used_bytes", "Bytes used on the weights volume", multiprocess_mode="mostrecent"
)
WEIGHTS_CAPACITY = Gauge(
    "model_manager_weights_capacity_bytes", "Capacity of the weights volume in bytes", multiprocess_mode="mostrecent"
)
# Set at each scrape; with several gunicorn workers the most recent scrape's value is the one reported.
QUEUE_DEPTH = Gauge("model_manager_job_queue_depth", "Jobs waiting in the RQ queue", multiprocess_mode="livemostrecent")


def route_label() -> str:
    """The route template (`/models/<id>`), never the raw path, to keep label cardinality bounded."""
    rule = request.url_rule
    return rule.rule if rule is not None else "<unmatched>"


def render_metrics() -> Response:
    """The Prometheus text exposition, aggregated over processes when multiprocess mode is on."""
    from portal.services.system import queue_depth

    depth = queue_depth()
    if depth is not None:  # Redis down: keep the last value rather than claim an empty queue
        QUEUE_DEPTH.set(depth)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    """Time and count every request."""

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.get("request_started")
        path = route_label()
        if path.startswith("/static") or path == "/metrics":
            return response
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        if started is not None:
            HTTP_DURATION.labels(request.method, path).observe(time.perf_counter() - started)
        return response
