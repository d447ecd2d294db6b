"""Weights benchmarks: install throughput vs curl, usage vs du, time to first progress update."""

from __future__ import annotations

import multiprocessing
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
INSTALL_RUNS = 3  # curl and ours alternate; the best of each counts
REPO_ID = "bench/large-model"


def _serve_hub(conn: Any) -> None:
    """Child process: the local Hub with the benchmark repo, until the parent says stop.

    The Hub runs in its own process (as the real Hub does) for both clients: in the benchmark's process
    it would share the GIL with the install job's threads but not with curl, which is not a fair race.
    """
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from tests.support.hub import HubServer

    with HubServer() as hub:
        hub.add_repo(REPO_ID, {"config.json": '{"model_type": "llama"}'})
        names = []
        for i in range(LARGE_FILES):
            name = f"model-{i + 1:05d}-of-{LARGE_FILES:05d}.safetensors"
            hub.add_large_file(REPO_ID, name, size=LARGE_FILE_SIZE, seed=i)
            names.append(name)
        conn.send((hub.url, hub.commit_sha(REPO_ID), names))
        conn.recv()


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


def _curl(hub_url: str, repo_id: str, sha: str, names: list[str], dest: Path, parallel: int) -> float:
    args = ["curl", "--parallel", "--parallel-max", str(parallel), "--no-progress-meter", "-L", "--fail"]
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


def _install_section(tmp: Path, hub_url: str, sha: str, names: list[str]) -> list[str]:
    """Alternate curl and the install job on the same server and files; the best run of each counts."""
    from portal.services import weights

    app = _app(tmp, hub_url)
    parallel = min(weights.DOWNLOAD_THREADS, len(names) + 1)  # the job's download threads for this repo
    curls: list[float] = []
    ours: list[tuple[float, float, float, int]] = []
    for _ in range(INSTALL_RUNS):
        os.sync()  # both start with no dirty pages of the previous run still being written back
        curls.append(_curl(hub_url, REPO_ID, sha, [*names, "config.json"], tmp / "curl", parallel))
        shutil.rmtree(tmp / "curl")
        os.sync()
        ours.append(_install_job(app, REPO_ID))
        with app.app_context():
            shutil.rmtree(weights.storage_root())
            weights.storage_root().mkdir()
    curl_s = min(curls)
    ours_s, _first, rate, total = min(ours)
    first_s = max(run[1] for run in ours)  # the target is a bound: report the worst run
    curl_rate = total / curl_s
    ratio = rate / curl_rate
    return [
        f"Install of a {total / 2**30:.2f} GiB repo ({LARGE_FILES} LFS files + config) from the local Hub server "
        "(its own process), sha256 of every LFS file verified while streaming, published atomically; "
        f"{parallel} parallel downloads for both, best of {INSTALL_RUNS} alternating runs after `sync`:",
        "",
        "| | seconds | MiB/s | all runs (s) |",
        "|---|---:|---:|---|",
        f"| `curl --parallel --parallel-max {parallel}` (no verification) | {curl_s:.2f} | {curl_rate / 2**20:.0f} "
        f"| {', '.join(f'{t:.2f}' for t in curls)} |",
        f"| Model Manager install job | {ours_s:.2f} | {rate / 2**20:.0f} "
        f"| {', '.join(f'{run[0]:.2f}' for run in ours)} |",
        "",
        f"Throughput ratio: **{ratio:.2f}x curl** (target ≥ 0.8x) — {'met' if ratio >= 0.8 else 'MISSED'}.",
        "",
        f"Time from job start to the first visible progress update: **{first_s:.2f} s** (worst run; target ≤ 2 s) — "
        f"{'met' if first_s <= 2 else 'MISSED'}.",
        "",
    ]


def run() -> str:
    """Run the weights benchmarks and return a Markdown section."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from portal.services import weights

    lines = ["## Weights", ""]
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=_serve_hub, args=(child,), daemon=True)
    server.start()
    try:
        hub_url, sha, names = parent.recv()
        with tempfile.TemporaryDirectory(prefix="bench-weights-") as tmpdir:
            lines += _install_section(Path(tmpdir), hub_url, sha, names)
    finally:
        parent.send("stop")
        server.join(timeout=10)
    with tempfile.TemporaryDirectory(prefix="bench-weights-") as tmpdir:
        tmp = Path(tmpdir)
        app = _app(tmp, "http://127.0.0.1:9")  # the usage benchmark talks to no Hub
        with app.app_context():
            root = weights.storage_root()
            shutil.rmtree(root)
            root.mkdir()
            _make_tree(root)
            os.sync()  # the new tree's inodes are written back before either side is timed
            ours = _best(weights.usage, runs=5)
            usage = weights.usage()
        du = _best(lambda: subprocess.run(["du", "-sb", str(root)], check=True, capture_output=True), runs=5)
        factor = ours / du
        lines += [
            f"`GET /weights/usage` (service function) on a tree of {usage['models'][0]['fileCount']:,} files "
            f"vs `du -sb` (best of 5 each, warm cache): {ours * 1000:.0f} ms vs {du * 1000:.0f} ms = "
            f"**{factor:.2f}x** (target ≤ 1.5x) — {'met' if factor <= 1.5 else 'MISSED'}.",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
