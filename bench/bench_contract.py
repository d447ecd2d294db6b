"""The API contract run's counts: schemathesis against gunicorn, as `make test` runs it (tests/api/test_openapi_contract.py)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/api/test_openapi_contract.py"


def run() -> str:
    """Run the contract tests once and return the Markdown section with their counts."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", TEST],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    elapsed = time.perf_counter() - started
    counts = [
        ast.literal_eval(line.split("schemathesis counts: ", 1)[1])
        for line in done.stdout.splitlines()
        if "schemathesis counts: " in line
    ]
    with_token, without = [*counts, {}, {}][:2]
    outcome = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output"
    return "\n".join(
        [
            "## API contract (schemathesis)",
            "",
            f"`{TEST}` (part of `make test`): schemathesis 4 with `--checks all` against `gunicorn -w 2 wsgi:app`",
            "(SQLite, Redis, the dev cluster, the local Hub, the example catalog), API token configured.",
            "",
            "| run | operations | test cases | stateful scenarios | failures |",
            "|---|---:|---:|---:|---:|",
            f"| with the token (examples, coverage, fuzzing, stateful; 20 examples) | {with_token.get('operations')} "
            f"| {with_token.get('generated')} | {with_token.get('scenarios')} | {with_token.get('failures')} |",
            f"| without the token, mutating operations only (every answer must be 401) | {without.get('operations')} "
            f"| {without.get('generated')} | n/a | {without.get('failures')} |",
            "",
            f"Both runs: {elapsed:.0f} s wall time; pytest: `{outcome}`.",
            "",
        ]
    )
