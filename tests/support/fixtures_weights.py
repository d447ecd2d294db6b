"""Fixtures for weight installs: an app pointed at the local Hub, small repos, real RQ worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.support.fixtures_secrets import scan_text
from tests.support.hub import HubServer, make_model_repo

__all__ = ["WorkerProcess", "install_app", "isolated_queue", "small_repo", "worker_process"]

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """`flask --app wsgi worker` in a subprocess (its own process group so SIGKILL takes the horse too)."""

    def __init__(self, env: dict[str, str], *, burst: bool = True) -> None:
        args = [sys.executable, "-m", "flask", "--app", "wsgi", "worker"] + (["--burst"] if burst else [])
        self.proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait(self, timeout: float = 60) -> str:
        """Wait for a burst worker to exit; returns its output."""
        out, _ = self.proc.communicate(timeout=timeout)
        scan_text(out or "", "a worker process's output")
        return out or ""

    def children(self) -> list[int]:
        """Pids whose parent is the worker (RQ puts its work horse in a process group of its own)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(entry.name))
        return pids

    def kill(self) -> None:
        """SIGKILL the work horse and the worker, as an OOM kill or node loss would."""
        if self.proc.poll() is None:
            for pid in self.children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Ask politely, then kill."""
        if self.proc.poll() is None:
            try:
                for pid in self.children():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.kill()
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def worker_process(app_env: dict[str, str]) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker subprocesses with the test app's environment; stopped at teardown."""
    from tests.conftest import subprocess_env

    started: list[WorkerProcess] = []

    def start(*, burst: bool = True, **extra: str) -> WorkerProcess:
        env = subprocess_env(app_env)
        env.update(extra)
        env["HF_HUB_DISABLE_TELEMETRY"] = "1"
        worker = WorkerProcess(env, burst=burst)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def isolated_queue() -> dict[str, str]:
    """A queue of its own on a Redis database no fixture flushes: install tests take seconds, and a
    concurrent run's `flushdb` (or its worker) must not drop or steal the queued job meanwhile."""
    from tests.conftest import REDIS_BASE, worker_number

    return {"REDIS_URL": f"{REDIS_BASE}/{13 + worker_number() % 3}", "RQ_QUEUE": f"mm-weights-{uuid.uuid4().hex[:12]}"}


@pytest.fixture
def install_app(make_app: Callable[..., Flask], hub: HubServer) -> Iterator[Flask]:
    """The test app pointed at the local Hub, its context pushed (retry backoff short: tests wait for it)."""
    application = make_app(HF_ENDPOINT=hub.url, WEIGHTS_RETRY_BACKOFF="50ms", **isolated_queue())
    with application.app_context():
        yield application


@pytest.fixture
def small_repo(hub: HubServer) -> Any:
    """A realistic ~1.5 MB repo with two safetensors shards."""
    return make_model_repo(hub, "acme/tiny-llm", total_bytes=1_500_000, shards=2)
