"""Weights benchmarks: install throughput vs curl, usage vs du, time to first progress update."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

LARGE_FILES = 4
LARGE_FILE_SIZE = 256 * 1024 * 1024  # 4 x 256 MiB = 1 GiB
# The usage volume: several installs, each with GB-size shards (sparse) and thousands of small files.
USAGE_INSTALLS, USAGE_SHARDS, USAGE_SHARD_SIZE = 5, 4, 4 * 2**30  # 5 x 4 x 4 GiB apparent size
USAGE_DIRS, USAGE_FILES_PER_DIR = 20, 1000  # per install: 20,000 small files (100,000 in all)
USAGE_CALLS = 9
INSTALL_RUNS = 3  # curl and ours alternate; the best of each counts
REPO_ID = "bench/large-model"
ROOT = Path(__file__).resolve().parent.parent


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


def _make_tree(root: Path) -> int:
    """Installs as the portal writes them (marker, shards, small files); returns the number of files."""
    count = 0
    for i in range(USAGE_INSTALLS):
        install = root / "bench" / f"model-{i}"
        install.mkdir(parents=True)
        (install / ".model-manager").write_text(f'{{"modelId": "bench/model-{i}", "revision": "{i:040d}"}}')
        for s in range(USAGE_SHARDS):
            with (install / f"model-{s + 1:05d}-of-{USAGE_SHARDS:05d}.safetensors").open("wb") as handle:
                handle.truncate(USAGE_SHARD_SIZE)  # sparse: the apparent size is what du -sb and we count
        for d in range(USAGE_DIRS):
            directory = install / "extra" / f"d{d:03d}"
            directory.mkdir(parents=True)
            for f in range(USAGE_FILES_PER_DIR):
                (directory / f"f{f:04d}").write_bytes(b"x" * (f % 7 + 1))
        count += USAGE_SHARDS + USAGE_DIRS * USAGE_FILES_PER_DIR
    return count


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


def _timed_get(session: Any, url: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = session.get(url, timeout=300)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def usage_section(tmp: Path) -> list[str]:
    """`GET /weights/usage` through gunicorn vs `du -sb` on the same volume: cold, after a change, warm."""
    import requests

    from bench._server import portal_server

    root = tmp / "weights"
    root.mkdir()
    files = _make_tree(root)
    os.sync()  # the new tree's inodes are written back before either side is timed
    du_runs = []
    for _ in range(USAGE_CALLS):
        started = time.perf_counter()
        subprocess.run(["du", "-sb", str(root)], check=True, capture_output=True)
        du_runs.append(time.perf_counter() - started)
    du = statistics.median(du_runs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        MODEL_MANAGER_ENV="development",
        MODEL_CATALOG_ROOT=str(tmp / "catalog"),
        WEIGHTS_STORAGE_PATH=str(root),
        DATASTORE_DSN=str(tmp / "bench.db"),
        STATE_PATH=str(tmp / "state"),
        KUBECONFIG=str(tmp / "no-kubeconfig"),
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        PYTHONPATH=str(ROOT),
    )
    (tmp / "catalog" / "models").mkdir(parents=True)
    with portal_server(env, workers=1) as base:
        url = f"{base}/weights/usage"
        session = requests.Session()
        cold, body = _timed_get(session, url)  # the first call walks the whole volume
        warm = statistics.median(_timed_get(session, url)[0] for _ in range(USAGE_CALLS))
        (root / "bench" / "model-0" / "extra" / "d000" / "new-file").write_bytes(b"y" * 100)
        changed, after = _timed_get(session, url)  # one directory changed: only it is read again
    assert after["usedBytes"] == body["usedBytes"] + 100, (after["usedBytes"], body["usedBytes"])
    warm_factor, cold_factor = warm / du, cold / du
    return [
        f"`GET /weights/usage` through gunicorn (one worker) on a volume of {USAGE_INSTALLS} installs "
        f"({USAGE_SHARDS} sparse {USAGE_SHARD_SIZE / 2**30:.0f} GiB shards and "
        f"{USAGE_DIRS * USAGE_FILES_PER_DIR:,} small files each: {files:,} files, "
        f"{body['usedBytes'] / 2**30:.0f} GiB) vs `du -sb` (median of {USAGE_CALLS}, warm page cache):",
        "",
        "| | ms | vs `du -sb` |",
        "|---|---:|---:|",
        f"| `du -sb` | {du * 1000:.0f} | 1.00x |",
        f"| first call after start (full walk) | {cold * 1000:.0f} | {cold_factor:.2f}x |",
        f"| call after one directory changed (it alone is re-read) | {changed * 1000:.0f} | {changed / du:.2f}x |",
        f"| later calls (cache validated by one lstat per directory) | {warm * 1000:.0f} | {warm_factor:.2f}x |",
        "",
        f"What a user calls: **{warm_factor:.2f}x** `du -sb` (target ≤ 1.5x) — "
        f"{'met' if warm_factor <= 1.5 else 'MISSED'}; the full walk behind a cold cache is {cold_factor:.2f}x.",
        "",
    ]


def run() -> str:
    """Run the weights benchmarks and return a Markdown section."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

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
        lines += usage_section(Path(tmpdir))
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
