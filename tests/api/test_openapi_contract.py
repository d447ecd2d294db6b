"""The OpenAPI document tells the truth: schemathesis (all checks, stateful phase) against a live gunicorn.

The portal runs under gunicorn with the API token set, talking to a dev cluster and the local Hub, serving a
copy of the example catalog. One run sends the token and must find no failure; a second run without it checks
that every mutating operation answers 401.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._server import portal_server
from portal.devcluster.cluster import DevCluster
from tests.conftest import ROOT, subprocess_env
from tests.support.fixtures_secrets import register_secrets, scan_text
from tests.support.hub import HubServer, make_model_repo
from tests.support.webhook import WebhookReceiver

# A few minutes on a busy machine (the suite's other workers share the two cores): above the default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

API_TOKEN = "mm-contract-api-token-7f3a91"
# Examples per operation and phase: bounded so both runs together stay well under three minutes on 2 cores.
MAX_EXAMPLES = 20
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def contract_portal(
    app_env: dict[str, str], devcluster: DevCluster, cluster_catalog: Path, hub: HubServer, tmp_path: Path
) -> Iterator[str]:
    """gunicorn serving the portal with the token set, the dev cluster, the example catalog and the local Hub."""
    make_model_repo(hub, "contract-org/tiny-model")
    receiver = WebhookReceiver().start()
    env = subprocess_env(app_env)
    env.update(
        MODEL_MANAGER_API_TOKEN=API_TOKEN,
        # Catalog PRs and notifications configured, so their operations answer as in production (queued
        # job, delivered test message) instead of their documented 501/503 for a portal without them.
        CATALOG_REPO="contract-org/catalog",
        GITHUB_TOKEN="mm-contract-github-token-52be",
        GITHUB_API_URL="http://127.0.0.1:9",
        NOTIFY_WEBHOOK_URLS=f"{receiver.url}/hook/mm-contract-webhook-secret-path",
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        MODEL_MANAGER_DEVCLUSTER="true",
        KUBE_TIMEOUT="5",
        HF_ENDPOINT=hub.url,
    )
    register_secrets(env)
    log = tmp_path / "gunicorn.log"
    try:
        with portal_server(env, workers=2, log=log) as base:
            yield base
    finally:
        receiver.stop()
        scan_text(log.read_text(errors="replace") if log.exists() else "", "the contract run's gunicorn log")


def run_schemathesis(base: str, out: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, dict]:
    """`st run` against `base` with our config and hooks; returns the exit code, the report and its counts."""
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(CONFIG),
        "run",
        f"{base}/openapi.json",
        "--url",
        base,
        "--seed",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(out),
        "--checks",
        "all",
        *args,
    ]
    if "--max-examples" not in args:
        command += ["--max-examples", str(MAX_EXAMPLES)]
    run_env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    run_env.update(env or {})
    run_env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=out, env=run_env)
    output = done.stdout + done.stderr
    counts = {
        "operations": _number(r"Tested: (\d+)", output),
        "generated": _number(r"(\d+) generated", output),
        "failures": _number(r"(\d+) unique failures", output),
        "scenarios": _number(r"Scenarios:\s+(\d+)", output),
    }
    (out / "counts.json").write_text(json.dumps(counts))
    print(f"schemathesis counts: {counts}")  # never the arguments: they hold the token
    return done.returncode, output, counts


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0


def test_schemathesis_all_checks_with_the_token(contract_portal: str, tmp_path: Path) -> None:
    code, output, counts = run_schemathesis(
        contract_portal,
        tmp_path,
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--header",
        f"Authorization: Bearer {API_TOKEN}",
    )
    assert code == 0, output[-20000:]
    assert counts["operations"] >= 40 and counts["generated"] > 1000, output[-5000:]
    assert "Stateful" in output and counts["scenarios"] > 0, output[-5000:]


def test_every_mutation_without_the_token_is_401(contract_portal: str, tmp_path: Path) -> None:
    methods = [arg for method in ("POST", "PUT", "PATCH", "DELETE") for arg in ("--include-method", method)]
    # Every answer is the same 401, so fewer examples per operation prove it.
    code, output, counts = run_schemathesis(
        contract_portal,
        tmp_path,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "5",
        *methods,
        env={"EXPECT_TOKEN_REFUSAL": "1"},
    )
    assert code == 0, output[-20000:]
    assert counts["operations"] >= 15 and counts["generated"] > 100, output[-5000:]
