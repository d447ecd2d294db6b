"""/metrics under gunicorn with several workers: counts from every worker are added up."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import ROOT, subprocess_env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_aggregate_over_gunicorn_workers(app_env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    env = subprocess_env(app_env)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    (tmp_path / "prom").mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "3",
            "--threads",
            "1",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                requests.get(f"{base}/healthz", timeout=30)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        for i in range(30):
            # Fresh connections spread the requests over the workers.
            response = requests.get(f"{base}/jobs/does-not-exist-{i}", headers={"Connection": "close"}, timeout=5)
            assert response.status_code == 404
        text = requests.get(f"{base}/metrics", timeout=5).text
        line = next(
            line
            for line in text.splitlines()
            if line.startswith(
                'model_manager_http_requests_total{method="GET",path="/jobs/<job_id:job_id>",status="404"}'
            )
        )
        assert float(line.rsplit(" ", 1)[1]) == 30.0
        assert "does-not-exist" not in text
    finally:
        proc.terminate()
        proc.wait(timeout=20)
