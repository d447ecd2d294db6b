"""gunicorn settings: several workers, Prometheus multiprocess bookkeeping."""

from __future__ import annotations

import os
from typing import Any

from portal.config import ConfigError, listen_address

try:
    bind = listen_address()  # GUNICORN_BIND, else 0.0.0.0:$PORT (SERVER_PORT overrides PORT)
except ConfigError as exc:
    raise SystemExit(f"model-manager: {exc}") from None  # one line naming the variable, not a traceback
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 60
graceful_timeout = 10
accesslog = None  # the app logs one line per request with its X-Request-ID


def child_exit(_server: Any, worker: Any) -> None:
    """Tell prometheus_client a worker is gone so its live gauges are dropped."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
