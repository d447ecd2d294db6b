"""`make load`: 50 portal users (0.5 s think time, 60 s) while an install runs, and saturation throughput next to a
bare Flask app under the same gunicorn settings. Loopback only; every phase is bounded in users and time.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench._server import portal_server

ROOT = Path(__file__).resolve().parent.parent
USERS = 50
THINK_SECONDS = 0.5
DURATION = 60.0
SATURATION_USERS = 20
SATURATION_DURATION = 15.0
INSTALL_BYTES = 48 * 1024 * 1024
HUB_RATE = 512 * 1024  # bytes/s: the install is still running when the load phase ends
ENDPOINTS = ["/models", "/active", "/jobs", "/ui/catalog", "/ui/jobs/{id}/card"]


def _locust(base: str, user: str, users: int, seconds: float, env: dict[str, str]) -> dict[str, Any]:
    """Run a locust user class against `base` for `seconds` (bench/_locust_run.py); returns its stats."""
    done = subprocess.run(
        [sys.executable, "-m", "bench._locust_run", user, str(users), str(seconds), base],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rps(stats: dict[str, Any], name: str) -> float:
    return float(stats["rows"][name]["rps"])


def run() -> str:
    """Measure and return the Markdown section."""
    sys.path.insert(0, str(ROOT))
    from portal.devcluster.cluster import DevCluster
    from tests.support.hub import HubServer, make_model_repo

    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    with tempfile.TemporaryDirectory() as tmp, HubServer() as hub, DevCluster(ready_delay=1.0) as cluster:
        work = Path(tmp)
        make_model_repo(hub, "load/model-to-install", total_bytes=INSTALL_BYTES)
        hub.throttle(HUB_RATE)
        shutil.copytree(ROOT / "examples" / "catalog", work / "catalog")
        kubeconfig = cluster.write_kubeconfig(work / "kubeconfig", namespace="ai")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            MODEL_MANAGER_ENV="development",
            MODEL_CATALOG_ROOT=str(work / "catalog"),
            DATASTORE_DSN=str(work / "load.db"),
            STATE_PATH=str(work / "state"),
            WEIGHTS_STORAGE_PATH=str(work / "weights"),
            KUBECONFIG=str(kubeconfig),
            MODEL_MANAGER_DEVCLUSTER="true",
            HF_ENDPOINT=hub.url,
            HF_HOME=str(work / "hf"),
            REDIS_URL=redis_url,
            RQ_QUEUE="mm-load",
            PYTHONPATH=str(ROOT),
        )
        (work / "weights").mkdir()
        with portal_server(env) as base:
            worker_log = (work / "worker.log").open("wb")
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
                cwd=ROOT,
                env=env,
                stdout=worker_log,
                stderr=worker_log,
            )
            try:
                assert requests.post(f"{base}/models/activate", json={"id": "tiny-gpt2-test"}, timeout=30).ok
                queued = requests.post(
                    f"{base}/weights/install", json={"hfModelId": "load/model-to-install"}, timeout=30
                )
                assert queued.status_code == 202, queued.text
                job_id = queued.json()["job"]["id"]
                deadline = time.monotonic() + 120
                while (job := requests.get(f"{base}/jobs/{job_id}", timeout=10).json())["status"] != "running":
                    if time.monotonic() > deadline or job["status"] in ("failed", "completed"):
                        raise RuntimeError(
                            f"the install is {job['status']}: {job.get('error')}; worker log:\n"
                            + (work / "worker.log").read_text(errors="replace")[-3000:]
                        )
                    time.sleep(0.2)
                mix = _locust(
                    base,
                    "PortalUser",
                    USERS,
                    DURATION,
                    {"LOAD_JOB_ID": job_id, "LOAD_THINK_SECONDS": str(THINK_SECONDS)},
                )
                install = requests.get(f"{base}/jobs/{job_id}", timeout=10).json()
                requests.post(f"{base}/jobs/{job_id}/cancel", timeout=30)  # stops the download: the worker can exit
                saturation = {
                    path: _rps(
                        _locust(base, "SaturatingUser", SATURATION_USERS, SATURATION_DURATION, {"LOAD_PATH": path}),
                        path,
                    )
                    for path in ("/models", "/ui/catalog")
                }
                models_body = requests.get(f"{base}/models", timeout=10).content
            finally:
                worker.terminate()
                worker.wait(timeout=30)
                worker_log.close()
        (work / "models.json").write_bytes(models_body)
        bare_env = {**env, "BARE_MODELS_JSON": str(work / "models.json")}
        with portal_server(bare_env, target="bench.bare_app:app") as bare:
            bare_rps = {
                path: _rps(
                    _locust(bare, "SaturatingUser", SATURATION_USERS, SATURATION_DURATION, {"LOAD_PATH": path}),
                    path,
                )
                for path in ("/models", "/ui/catalog")
            }
    return _section(mix, install, saturation, bare_rps)


def _section(mix: dict[str, Any], install: dict[str, Any], ours: dict[str, float], bare: dict[str, float]) -> str:
    rows = mix["rows"]
    total = rows["all"]
    lines = [
        "## Load (`make load`)",
        "",
        f"{USERS} portal users (locust, {THINK_SECONDS} s think time, {DURATION:.0f} s measured after spawning)",
        "against `gunicorn -w 2 wsgi:app` (SQLite, Redis, the dev cluster with an active model, one RQ worker)",
        f"while a weights install from the local Hub runs (throttled to {HUB_RATE // 1024} KiB/s so it lasts the",
        f"whole phase; at the end it was `{install.get('status')}` at {install.get('progress', 0)} %). Loopback only;",
        "the load generator shares the machine's two cores with the servers.",
        "",
        "| endpoint | requests | failures | p50 | p99 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in [*ENDPOINTS, "all"]:
        row = rows.get(name)
        if row:
            lines.append(
                f"| `{name}` | {row['requests']} | {row['failures']} | {row['p50']:.0f} ms | {row['p99']:.0f} ms |"
            )
    lines += [
        "",
        f"Errors: **{total['failures']}** (target 0){': ' + '; '.join(mix['errors']) if mix['errors'] else ''}.",
        "",
        f"Saturation throughput ({SATURATION_USERS} users without think time, {SATURATION_DURATION:.0f} s each, same",
        "gunicorn settings; the bare app is plain Flask serving the same `/models` bytes and a Jinja table of the",
        "same entries, `bench/bare_app.py`), same run:",
        "",
        "| path | Model Manager | bare Flask | ratio |",
        "|---|---:|---:|---:|",
    ]
    for path in ("/models", "/ui/catalog"):
        ratio = ours[path] / bare[path] if bare[path] else float("nan")
        lines.append(f"| `{path}` | {ours[path]:.0f} req/s | {bare[path]:.0f} req/s | {ratio:.2f}x |")
    return "\n".join(lines) + "\n"
