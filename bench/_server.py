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
def portal_server(env: dict[str, str], *, workers: int = 2, app: str = "wsgi:app") -> Iterator[str]:
    """Run `gunicorn -w <workers> <app>` with `env` (after `flask db upgrade` for the portal); yields the base URL.

    Another `app` (a bare Flask app for comparison) runs under the same gunicorn settings (gunicorn.conf.py).
    """
    bindir = Path(sys.executable).parent
    if app == "wsgi:app":
        subprocess.run(
            [str(bindir / "flask"), "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
    port = free_port()
    server = subprocess.Popen(
        [str(bindir / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", app],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded machine boots workers slowly
        while True:
            try:
                requests.get(base + "/healthz", timeout=60)  # any answer (200, or 503 naming a dependency) will do
                break
            except requests.ConnectionError:
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
