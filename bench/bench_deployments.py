"""Deployments benchmark: Kubernetes API requests per portal page view, and mixed-load saturation throughput.

A dev cluster runs in this process (it counts every request it receives); the portal runs under
`gunicorn -w 2 wsgi:app` against it with two deployments. Page views: the Deployments page, its
cards and capacity partials, the header partials, `/active` and `/deployments`. Throughput: 8
client threads for a fixed time over that mix, next to a bare Flask app under the same gunicorn
settings serving a static page.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench._server import ROOT, portal_server
from portal.devcluster.cluster import DevCluster

PAGES = [
    "/ui/deployments",
    "/ui/deployments/list",
    "/ui/deployments/capacity",
    "/ui/deployments/header",
    "/ui/active/header",
    "/active",
    "/deployments",
]
CLIENTS = 8
SECONDS = 10.0
VIEWS = 200


def _saturate(base: str, paths: list[str]) -> float:
    """Requests per second answered by `CLIENTS` threads hammering `paths` for `SECONDS`."""
    done = [0] * CLIENTS
    stop = time.monotonic() + SECONDS

    def worker(n: int) -> None:
        session = requests.Session()
        i = n
        while time.monotonic() < stop:
            response = session.get(base + paths[i % len(paths)], timeout=30)
            if response.status_code < 500:
                done[n] += 1
            i += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


# A small Llama-shaped config.json stands in for the installed weights (placement estimates from it).
CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_hidden_layers": 8,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
    "max_position_embeddings": 131072,
    "torch_dtype": "bfloat16",
}


def _install_configs(weights: Path) -> None:
    for path in ("meta-llama/Llama-3.1-8B-Instruct", "sshleifer/tiny-gpt2"):
        target = weights / path
        target.mkdir(parents=True)
        (target / "config.json").write_text(json.dumps(CONFIG))


def _env(work: Path, kubeconfig: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    catalog = ROOT / "examples" / "catalog"
    env.update(
        MODEL_MANAGER_ENV="development",
        MODEL_CATALOG_ROOT=str(catalog),
        DATASTORE_DSN=str(work / "bench.db"),
        STATE_PATH=str(work / "state"),
        WEIGHTS_STORAGE_PATH=str(work / "weights"),
        KUBECONFIG=str(kubeconfig),
        REDIS_URL=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        PYTHONPATH=str(ROOT),
    )
    return env


def measure() -> dict[str, float]:
    """Requests per page view and the two throughputs."""
    import redis

    with tempfile.TemporaryDirectory() as tmp, DevCluster(ready_delay=0.2) as cluster:
        work = Path(tmp)
        _install_configs(work / "weights")
        kubeconfig = cluster.write_kubeconfig(work / "kubeconfig", namespace="ai")
        env = _env(work, kubeconfig)
        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
        with portal_server(env) as base:
            session = requests.Session()
            # Two deployments side by side (the example entries pin one node each).
            for name, model in (("chat", "llama-3.1-8b-instruct"), ("small", "tiny-gpt2-test")):
                answer = session.post(f"{base}/deployments", json={"name": name, "model": model}, timeout=60)
                if answer.status_code != 201:
                    raise RuntimeError(f"could not create deployment {name}: {answer.text}")
            for path in PAGES:  # both workers warm: view synced, templates compiled
                for _ in range(4):
                    session.get(base + path, timeout=30)
            time.sleep(1.0)  # let watch events of the start-up settle before counting
            before = len(cluster.requests)
            for i in range(VIEWS):
                session.get(base + PAGES[i % len(PAGES)], timeout=30)
            per_view = (len(cluster.requests) - before) / VIEWS
            portal_rps = _saturate(base, PAGES)
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models.json"
        entries = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "catalog" / "models").glob("*.json"))]
        models.write_text(json.dumps(entries))
        bare_env = {**os.environ, "PYTHONPATH": str(ROOT), "BARE_MODELS_JSON": str(models)}
        with portal_server(bare_env, target="bench.bare_app:app") as base:
            bare_rps = _saturate(base, ["/ui/catalog", "/models"])
    return {"per_view": per_view, "portal_rps": portal_rps, "bare_rps": bare_rps}


def run() -> str:
    """The Markdown section."""
    figures = measure()
    ratio = figures["portal_rps"] / figures["bare_rps"] if figures["bare_rps"] else 0.0
    return "\n".join(
        [
            "## Deployments: watched cluster view",
            "",
            "Portal under `gunicorn -w 2 wsgi:app` (gunicorn.conf.py threads) against the dev cluster, which counts",
            f"every request it receives. Page views: {', '.join(f'`{p}`' for p in PAGES)} in turn.",
            "",
            "| | figure |",
            "|---|---:|",
            f"| Kubernetes API requests per page view ({VIEWS} views) | {figures['per_view']:.2f} |",
            f"| portal, mixed page load ({CLIENTS} clients, {SECONDS:g} s) | {figures['portal_rps']:.0f} req/s |",
            f"| bare Flask app (`bench/bare_app.py`: catalog page and JSON), same gunicorn settings | "
            f"{figures['bare_rps']:.0f} req/s |",
            f"| ratio portal / bare | {ratio:.2f}x |",
            "",
            "Before the watched view, `/active` and the header each made one API call per request (50 users polling",
            "once a second meant 50 calls a second); now pages read the view from Redis and the one watcher keeps",
            "a list+watch per source open, so the figure above is the target 0.",
            "",
        ]
    )
