"""A portal under gunicorn for benchmarks: migrate, start on a free port, wait until it answers, stop."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def portal_server(
    env: dict[str, str], *, workers: int = 2, log: Path | None = None, target: str = "wsgi:app"
) -> Iterator[str]:
    """Run `gunicorn -w <workers> wsgi:app` with `env` after `flask db upgrade`; yields the base URL.

    `log`, when given, receives gunicorn's and the app's log lines (otherwise they are discarded).
    Another `target` (a bare app to compare with) runs under the same settings, without the migration.
    """
    bindir = Path(sys.executable).parent
    if target == "wsgi:app":
        subprocess.run(
            [str(bindir / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    port = free_port()
    sink = log.open("ab") if log is not None else None
    server = subprocess.Popen(
        [str(bindir / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", target],
        cwd=ROOT,
        env=env,
        stdout=sink or subprocess.DEVNULL,
        stderr=sink or subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Generous: a loaded machine (several test workers on two cores) can take long to import the app.
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(base + "/healthz", timeout=10)  # any answer (200, 404, 503 naming a dependency) will do
                break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if sink is not None:
            sink.close()
