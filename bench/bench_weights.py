"""Weights benchmarks: install throughput vs curl, usage vs du, time to first progress update."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LARGE_FILES = 4
LARGE_FILE_SIZE = 256 * 1024 * 1024  # 4 x 256 MiB = 1 GiB
USAGE_DIRS, USAGE_FILES_PER_DIR = 100, 1000  # 100,000 files


def _app(tmp: Path, hub_url: str) -> Any:
    from portal import create_app
    from portal.config import Settings
    from portal.extensions import db

    env = {
        "MODEL_MANAGER_ENV": "test",
        "SECRET_KEY": "bench-secret-key",
        "STATE_PATH": str(tmp / "state"),
        "DATASTORE_DSN": str(tmp / "state" / "bench.db"),
        "MODEL_CATALOG_ROOT": str(tmp / "catalog"),
        "WEIGHTS_STORAGE_PATH": str(tmp / "weights"),
        "HF_ENDPOINT": hub_url,
        "KUBECONFIG": str(tmp / "no-kubeconfig"),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
    }
    (tmp / "catalog" / "models").mkdir(parents=True, exist_ok=True)
    (tmp / "weights").mkdir(parents=True, exist_ok=True)
    app = create_app({"settings": Settings.from_env(env)})
    with app.app_context():
        db.create_all()
    return app


def _install_job(app: Any, repo_id: str) -> tuple[float, float, float, int]:
    """Run one install in-process (same code as the worker); returns (seconds, first progress s, bytes/s, bytes)."""
    from portal.extensions import db
    from portal.models import Job
    from portal.services import weights

    with app.app_context():
        sha, manifest = weights.resolve_files(repo_id, None, [])
        total = sum(f["size"] for f in manifest)
        job = Job(
            type=weights.JOB_TYPE,
            status="pending",
            payload={"hfModelId": repo_id, "resolvedRevision": sha, "target": repo_id, "manifest": manifest},
            target=repo_id,
            model_id=repo_id,
            actor="bench",
            bytes_total=total,
        )
        db.session.add(job)
        db.session.commit()
        job_id = job.id
        db.session.remove()
    first: list[float] = []
    started = time.perf_counter()

    def watch() -> None:
        with app.app_context():
            while not first:
                row = db.session.execute(db.select(Job.bytes_done, Job.status).where(Job.id == job_id)).one()
                db.session.rollback()
                if row[0] and row[0] > 0:
                    first.append(time.perf_counter() - started)
                if row[1] in ("completed", "failed"):
                    break
                time.sleep(0.02)
            db.session.remove()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with app.app_context():
        weights.run_install(job_id)
        elapsed = time.perf_counter() - started
        row = db.session.get(Job, job_id)
        assert row is not None and row.status == "completed", (row.status if row else None, row.error if row else None)
        db.session.remove()
    watcher.join(timeout=5)
    return elapsed, (first[0] if first else float("nan")), total / elapsed, total


def _curl(hub_url: str, repo_id: str, sha: str, names: list[str], dest: Path) -> float:
    args = ["curl", "--parallel", "--parallel-max", "6", "--no-progress-meter", "-L", "--fail"]
    for name in names:
        args += ["-o", str(dest / name), f"{hub_url}/{repo_id}/resolve/{sha}/{name}"]
    dest.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    subprocess.run(args, check=True)
    return time.perf_counter() - started


def _make_tree(root: Path) -> None:
    for d in range(USAGE_DIRS):
        directory = root / "legacy-tree" / f"d{d:03d}"
        directory.mkdir(parents=True)
        for f in range(USAGE_FILES_PER_DIR):
            (directory / f"f{f:04d}").write_bytes(b"x" * (f % 7 + 1))


def _best(func: Any, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def run() -> str:
    """Run the weights benchmarks and return a Markdown section."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from portal.services import weights
    from tests.support.hub import HubServer

    lines = ["## Weights", ""]
    with tempfile.TemporaryDirectory(prefix="bench-weights-") as tmpdir, HubServer() as hub:
        tmp = Path(tmpdir)
        repo_id = "bench/large-model"
        hub.add_repo(repo_id, {"config.json": '{"model_type": "llama"}'})
        names = []
        for i in range(LARGE_FILES):
            name = f"model-{i + 1:05d}-of-{LARGE_FILES:05d}.safetensors"
            hub.add_large_file(repo_id, name, size=LARGE_FILE_SIZE, seed=i)
            names.append(name)
        sha = hub.commit_sha(repo_id)
        app = _app(tmp, hub.url)
        curl_s = _curl(hub.url, repo_id, sha, [*names, "config.json"], tmp / "curl")
        shutil.rmtree(tmp / "curl")
        ours_s, first_s, rate, total = _install_job(app, repo_id)
        curl_rate = total / curl_s
        ratio = rate / curl_rate
        lines += [
            f"Install of a {total / 2**30:.2f} GiB repo ({LARGE_FILES} LFS files + config) from the local Hub server, "
            "sha256 of every LFS file verified while streaming, published atomically:",
            "",
            "| | seconds | MiB/s |",
            "|---|---:|---:|",
            f"| `curl --parallel` (no verification) | {curl_s:.2f} | {curl_rate / 2**20:.0f} |",
            f"| Model Manager install job | {ours_s:.2f} | {rate / 2**20:.0f} |",
            "",
            f"Throughput ratio: **{ratio:.2f}x curl** (target ≥ 0.8x) — {'met' if ratio >= 0.8 else 'MISSED'}.",
            "",
            f"Time from job start to the first visible progress update: **{first_s:.2f} s** (target ≤ 2 s) — "
            f"{'met' if first_s <= 2 else 'MISSED'}.",
            "",
        ]
        with app.app_context():
            root = weights.storage_root()
            shutil.rmtree(root)
            root.mkdir()
            _make_tree(root)
            ours = _best(weights.usage)
            usage = weights.usage()
        du = _best(lambda: subprocess.run(["du", "-sb", str(root)], check=True, capture_output=True))
        factor = ours / du
        lines += [
            f"`GET /weights/usage` (service function) on a tree of {usage['models'][0]['fileCount']:,} files "
            f"vs `du -sb` (best of 3, warm cache): {ours * 1000:.0f} ms vs {du * 1000:.0f} ms = "
            f"**{factor:.2f}x** (target ≤ 1.5x) — {'met' if factor <= 1.5 else 'MISSED'}.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
