"""Secrets never appear in a response or a log line: a session-wide scan, reported at the end of the session.

- Every secret a test configures is registered: `make_app` and `subprocess_env` (tests/conftest.py) pass the
  settings/environment they build to `register_secrets` (API token, HF token, GitHub token, webhook URL,
  SECRET_KEY), whatever values the test chose.
- A root logging handler at INFO sees every log record of the test process (the app, its threads, the dev
  cluster, the local Hub); `add_app_scan` makes each test app scan its responses (body and headers);
  `scan_text` takes subprocess output the tests capture (worker processes, the gunicorn log).
- A secret seen anywhere is a leak: each xdist worker writes its leaks into a directory the controller made,
  and the controller fails the session (exit status 1) with a report that names where, never the secret.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response

__all__ = ["add_app_scan", "register_secrets", "scan_text"]

# Environment variables (and the Settings fields they fill) whose values must never be shown.
SECRET_VARIABLES = {
    "MODEL_MANAGER_API_TOKEN": "model_manager_api_token",
    "HUGGINGFACE_API_TOKEN": "huggingface_api_token",
    "GITHUB_TOKEN": "github_token",
    "SLACK_WEBHOOK_URL": "slack_webhook_url",
    "SECRET_KEY": "secret_key",
}
# Shorter values would match ordinary text by chance; tests use longer, distinctive ones.
MIN_LENGTH = 6

_lock = threading.Lock()
_secrets: dict[str, str] = {}  # value -> variable name
_leaks: list[str] = []
_scan_dir: Path | None = None


def register_secrets(values: Mapping[str, Any] | Any) -> None:
    """Remember the secret values of an environment mapping or a Settings object."""
    for variable, field in SECRET_VARIABLES.items():
        value = values.get(variable) if isinstance(values, Mapping) else getattr(values, field, None)
        if isinstance(value, str) and len(value) >= MIN_LENGTH:
            with _lock:
                _secrets[value] = variable


def scan_text(text: str, source: str) -> None:
    """Record a leak for every registered secret that occurs in `text` (from `source`)."""
    if not text:
        return
    with _lock:
        found = [(value, name) for value, name in _secrets.items() if value in text]
    for value, name in found:
        start = text.index(value)
        context = text[max(0, start - 80) : start + len(value) + 80].replace(value, f"<{name}>")
        with _lock:
            _leaks.append(f"{name} in {source}: …{context!r}…")


class _SecretScanHandler(logging.Handler):
    """Scans every log record (message, arguments and traceback) for registered secrets."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is not ours to report here
            text = str(record.msg)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        scan_text(f"{text}\n{record.exc_text or ''}", f"log record of {record.name}")


def _scan_response(response: Response) -> Response:
    if not response.is_streamed and not response.direct_passthrough:
        scan_text(response.get_data(as_text=True), f"response body ({response.status})")
    scan_text("\n".join(f"{k}: {v}" for k, v in response.headers.items()), f"response headers ({response.status})")
    return response


def add_app_scan(app: Flask) -> None:
    """Scan every response of `app` for registered secrets."""
    app.after_request(_scan_response)


def _leaks_in(directory: Path) -> Iterable[str]:
    for path in sorted(directory.glob("leaks-*.txt")):
        yield from path.read_text(encoding="utf-8").splitlines()


_handler = _SecretScanHandler(level=logging.INFO)


def _install_handler() -> None:
    root = logging.getLogger()
    if _handler not in root.handlers:
        root.addHandler(_handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)  # INFO lines (access log with actors, job messages) are scanned too


def pytest_configure(config: pytest.Config) -> None:
    """Install the log handler and find (worker) or make (controller) the directory for the leak reports."""
    global _scan_dir
    workerinput = getattr(config, "workerinput", None)
    _scan_dir = Path(workerinput["secret_scan_dir"] if workerinput else tempfile.mkdtemp(prefix="secret-scan-"))
    _install_handler()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Put the handler back before each test: Alembic's fileConfig (migrations) replaces the root handlers."""
    _install_handler()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: tell each worker where to write its leaks."""
    node.workerinput["secret_scan_dir"] = str(_scan_dir)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Workers write their leaks; the controller (or a plain run) fails the session when there are any."""
    assert _scan_dir is not None
    if _leaks:
        (_scan_dir / f"leaks-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.txt").write_text(
            "\n".join(_leaks) + "\n", encoding="utf-8"
        )
    if getattr(session.config, "workerinput", None) is not None:
        return
    leaks = list(_leaks_in(_scan_dir))
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["", f"SECRETS LEAKED: {len(leaks)} occurrence(s) in responses or log lines:", *leaks[:50]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(_scan_dir, ignore_errors=True)
