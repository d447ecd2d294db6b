"""Discovery benchmark: the Discover search page through gunicorn, warm and cold, against the local Hub server."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

from bench._server import portal_server

ROOT = Path(__file__).resolve().parent.parent
RESULTS = 20
WARM_CALLS = 100
COLD_ROUNDS = 5
TARGET_WARM_P50_MS = 50.0


def run() -> str:
    """Measure and return the Markdown section."""
    sys.path.insert(0, str(ROOT))
    from tests.support.hub import HubServer, make_model_repo

    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    with tempfile.TemporaryDirectory() as tmp, HubServer() as hub:
        work = Path(tmp)
        for i in range(RESULTS + 5):
            make_model_repo(hub, f"bench/model-{i:02d}", downloads=1000 - i, num_hidden_layers=4, seed=i)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(
            MODEL_MANAGER_ENV="development",
            MODEL_CATALOG_ROOT=str(work / "catalog"),
            DATASTORE_DSN=str(work / "bench.db"),
            STATE_PATH=str(work / "state"),
            WEIGHTS_STORAGE_PATH=str(work / "weights"),
            KUBECONFIG=str(work / "no-kubeconfig"),
            HF_ENDPOINT=hub.url,
            HF_HOME=str(work / "hf"),
            REDIS_URL=redis_url,
            PYTHONPATH=str(ROOT),
        )
        (work / "catalog" / "models").mkdir(parents=True)
        conn = redis.Redis.from_url(redis_url)
        with portal_server(env) as base:
            url = f"{base}/ui/discover?q=bench&sort=downloads"
            session = requests.Session()
            cold_ms: list[float] = []
            cold_requests: list[int] = []
            for _ in range(COLD_ROUNDS):
                conn.flushdb()
                hub.reset_requests()
                started = time.perf_counter()
                response = session.get(url, timeout=60)
                cold_ms.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200 and response.text.count("result-card") == RESULTS
                cold_requests.append(len(hub.requests))
            for _ in range(10):
                session.get(url, timeout=30)
            hub.reset_requests()
            warm: list[float] = []
            for _ in range(WARM_CALLS):
                started = time.perf_counter()
                session.get(url, timeout=30)
                warm.append((time.perf_counter() - started) * 1000)
            warm_hub_requests = len(hub.requests)
        conn.flushdb()
        conn.close()
    warm.sort()
    p50 = statistics.median(warm)
    p99 = warm[int(len(warm) * 0.99) - 1]
    verdict = "meets" if p50 <= TARGET_WARM_P50_MS else "misses"
    requests_ok = max(cold_requests) <= 1 + RESULTS
    return "\n".join(
        [
            "## Discovery: Hub search page",
            "",
            f"`GET /ui/discover?q=…` returning {RESULTS} result cards (insight + fit badges per GPU profile),",
            "through `gunicorn -w 2 wsgi:app`, against the local Hub server (`tests/support/hub.py`), no cluster",
            "(fit judged on all 11 profiles).",
            "",
            "| measure | figure | target |",
            "|---|---|---|",
            f"| warm cache p50 | {p50:.1f} ms | ≤ {TARGET_WARM_P50_MS:.0f} ms ({verdict}) |",
            f"| warm cache p99 | {p99:.1f} ms | |",
            f"| Hub requests during {WARM_CALLS} warm searches | {warm_hub_requests} | 0 |",
            f"| cold cache page time (median of {COLD_ROUNDS}) | {statistics.median(cold_ms):.0f} ms | |",
            f"| Hub requests per cold search | {max(cold_requests)} (1 listing + {max(cold_requests) - 1} config.json, "
            f"parallel) | ≤ 1 + {RESULTS} ({'meets' if requests_ok else 'misses'}) |",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())
