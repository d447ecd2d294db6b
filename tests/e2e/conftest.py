"""Browser fixtures: a live portal server in a thread and Debian's Chromium through Playwright."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class LiveServer:
    """A threaded WSGI server for one app on a free loopback port."""

    def __init__(self, app: Flask) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(make_app: Callable[..., Flask]) -> Iterator[Callable[..., LiveServer]]:
    """Start the portal for a browser: `live_server(**settings)` returns the running server."""
    servers: list[LiveServer] = []

    def start(**overrides: Any) -> LiveServer:
        server = LiveServer(make_app(**overrides))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package) driven by Playwright."""
    if shutil.which("chromium") is None and not shutil.os.path.exists(CHROMIUM):  # type: ignore[attr-defined]
        pytest.fail("Chromium is required for browser tests: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


# Content-Security-Policy violations, with where they happened (the console message alone does not say).
REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations = (window.__cspViolations || []).concat(
    [e.violatedDirective + ' at ' + e.sourceFile + ':' + e.lineNumber + ' ' + (e.blockedURI || '') + ' ' + e.sample
     + ' on ' + (e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 160) : String(e.target))]);
});
"""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records console errors, failed requests and CSP violations in `page.problems`."""
    context = browser.new_context()
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A request the page aborts on purpose (htmx `hx-sync` dropping a stale search) is not a failure.
    pg.on(
        "requestfailed",
        lambda req: None if "ERR_ABORTED" in (req.failure or "") else problems.append(f"request failed: {req.url}"),
    )
    pg.problems = problems
    yield pg
    context.close()
