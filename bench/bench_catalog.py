"""Catalog benchmark: cold load vs a bare json.load loop, warm GET /models through gunicorn, rendering."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from bench._server import portal_server

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000)
CALLS = {1_000: 300, 10_000: 60}
TARGET_COLD_S = 1.0
TARGET_RATIO = 2.0
TARGET_P50_MS = 10.0


def make_entry(i: int) -> dict[str, Any]:
    """A realistic entry (the shape of examples/catalog), varied by `i`."""
    org, name = f"org{i % 37}", f"model-{i:05d}-instruct"
    gpu = "amd.com/gpu" if i % 2 else "nvidia.com/gpu"
    return {
        "id": f"bench-{i:05d}",
        "displayName": f"Bench Model {i}",
        "hfModelId": f"{org}/{name}",
        "servedModelName": f"{org}/{name}",
        "storageUri": f"pvc://venus-model-storage/{org}/{name}",
        "runtime": "vllm-runtime",
        "env": [
            {"name": "HF_HOME", "value": "/mnt/models/.hf-cache"},
            {"name": "MODEL_ID", "value": f"{org}/{name}"},
            {
                "name": "HUGGING_FACE_HUB_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HUGGING_FACE_HUB_TOKEN"}},
            },
        ],
        "vllm": {
            "tensorParallelSize": 1 + i % 2,
            "dtype": "bfloat16",
            "gpuMemoryUtilization": 0.9,
            "maxModelLen": 4096 * (1 + i % 4),
            "extraArgs": ["--enforce-eager", "--swap-space", "8"],
        },
        "nodeSelector": {"kubernetes.io/hostname": "venus" if i % 2 else "gpu-l4-1"},
        "tolerations": [{"key": gpu, "operator": "Exists", "effect": "NoSchedule"}],
        "resources": {
            "requests": {"cpu": "4", "memory": "16Gi", gpu: "1"},
            "limits": {"cpu": "8", "memory": "24Gi", gpu: "1"},
        },
    }


def generate(root: Path, count: int) -> Path:
    """Write `count` entry files under root/models; returns the models directory."""
    models = root / "models"
    models.mkdir(parents=True)
    for i in range(count):
        (models / f"bench-{i:05d}.json").write_text(json.dumps(make_entry(i), indent=2), encoding="utf-8")
    return models


def _best(func: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def bare_loop(models: Path) -> None:
    """The floor: list the directory and json.load every file, nothing else."""
    for name in sorted(os.listdir(models)):
        if name.endswith(".json"):
            with open(models / name, "rb") as handle:
                json.load(handle)


def cold_load(models: Path) -> int:
    """A fresh Catalog's first snapshot (scan, read, validate, index)."""
    from portal.config import Settings
    from portal.services.catalog import Catalog

    settings = Settings.from_env({"MODEL_MANAGER_ENV": "test", "MODEL_CATALOG_ROOT": str(models.parent)})
    return len(Catalog(settings).snapshot().entries)


def render_time(models: Path) -> float:
    """Seconds per entry to render the InferenceService manifest."""
    from portal.config import Settings
    from portal.services.catalog import Catalog
    from portal.services.manifests import render_inference_service

    settings = Settings.from_env({"MODEL_MANAGER_ENV": "test", "MODEL_CATALOG_ROOT": str(models.parent)})
    entries = list(Catalog(settings).snapshot().entries.values())
    elapsed = _best(lambda: [render_inference_service(e, settings) for e in entries])
    return elapsed / len(entries)


def gunicorn_latency(models: Path, work: Path, calls: int) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, body bytes) of warm GET /models through `gunicorn -w 2 wsgi:app`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        MODEL_MANAGER_ENV="development",
        MODEL_CATALOG_ROOT=str(models.parent),
        DATASTORE_DSN=str(work / "bench.db"),
        STATE_PATH=str(work / "state"),
        KUBECONFIG=str(work / "no-kubeconfig"),
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        PYTHONPATH=str(ROOT),
    )
    with portal_server(env) as base:
        url = f"{base}/models"
        session = requests.Session()
        for _ in range(20):  # both workers load the catalog and fill their caches
            session.get(url, timeout=30)
        samples = []
        size = 0
        for _ in range(calls):
            started = time.perf_counter()
            response = session.get(url, timeout=30)
            size = len(response.content)
            samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99, size


def run() -> str:
    """Measure and return the Markdown section."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-catalog-") as tmp:
        for count in SIZES:
            work = Path(tmp) / f"n{count}"
            models = generate(work / "catalog", count)
            bare_loop(models)  # warm the page cache so both measurements read from memory
            bare = _best(lambda m=models: bare_loop(m))  # type: ignore[misc]
            cold = _best(lambda m=models: cold_load(m))  # type: ignore[misc]
            per_entry = render_time(models)
            p50, p99, size = gunicorn_latency(models, work, CALLS[count])
            rows.append((count, cold, bare, per_entry, p50, p99, size))
            shutil.rmtree(work, ignore_errors=True)
    lines = [
        "## Catalog",
        "",
        "Generated entries shaped like `examples/catalog` (≈1 KiB each). Cold load = a fresh `Catalog`'s first",
        "snapshot (scan, read, strict schema validation, index); bare loop = `os.listdir` + `json.load` of the",
        "same files (page cache warm for both, best of 3). `GET /models` = warm requests through",
        "`gunicorn -w 2 wsgi:app` with `requests` (keep-alive off in gunicorn's sync workers).",
        "",
        "| entries | cold load | bare json.load loop | ratio | render / entry | GET /models p50 | p99 | body |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for count, cold, bare, per_entry, p50, p99, size in rows:
        lines.append(
            f"| {count:,} | {cold * 1000:.0f} ms | {bare * 1000:.0f} ms | {cold / bare:.2f}x | "
            f"{per_entry * 1e6:.0f} µs | {p50:.1f} ms | {p99:.1f} ms | {size / 1e6:.1f} MB |"
        )
    big = next(r for r in rows if r[0] == 10_000)
    small = next(r for r in rows if r[0] == 1_000)
    verdict = [
        f"cold load of 10,000 files ≤ {TARGET_COLD_S:g} s: {'met' if big[1] <= TARGET_COLD_S else 'MISSED'}",
        f"cold ≤ {TARGET_RATIO:g}x bare loop: {'met' if all(r[1] <= TARGET_RATIO * r[2] for r in rows) else 'MISSED'}",
        f"p50 ≤ {TARGET_P50_MS:g} ms for 1,000 entries: {'met' if small[4] <= TARGET_P50_MS else 'MISSED'}",
    ]
    lines += ["", "Targets: " + "; ".join(verdict) + ".", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
