"""SQLite under concurrent writes from web requests and a worker process: slow at worst, never a 500."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from flask import Flask

from portal.extensions import db
from portal.models import Job
from tests.conftest import ROOT, database_backend, subprocess_env


@pytest.mark.slow
def test_concurrent_writes_from_web_and_worker_never_fail(
    make_app: Callable[..., Flask], app_env: dict[str, str]
) -> None:
    if database_backend() != "sqlite":
        pytest.skip("SQLite's single-writer lock is what this test provokes")
    app = make_app()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    # Jobs that write their row several times while running, so the worker writes while the web does.
    with app.test_client() as client:
        for _ in range(10):
            assert client.post("/jobs/noop", json={"sleepSeconds": 0.3}).status_code == 202
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=subprocess_env(app_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def hammer() -> None:
        client = app.test_client()
        for i in range(15):
            responses = [
                client.post("/jobs/noop", json={}),
                client.get("/jobs?limit=5"),
                client.delete("/jobs?status=completed") if i % 5 == 0 else client.get("/history?limit=5"),
            ]
            with lock:
                statuses.update(r.status_code for r in responses)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _, stderr = worker.communicate(timeout=180)
    assert worker.returncode == 0, stderr[-2000:]
    assert "database is locked" not in stderr, stderr[-2000:]
    assert set(statuses) <= {200, 202}, statuses
    assert statuses[202] == 60
    with app.app_context():
        db.session.expire_all()
        assert db.session.query(Job).filter(Job.status.in_(("failed",))).count() == 0
