"""Browser journey of an operator: Catalog → model → Dry run → Activate → Pending → Ready → History with the
actor → Roll back → Deactivate, and Back after filtering History restores a whole page.

Runs signed in through a trusted proxy header (the API token is set), screenshots each key step under the
test's tmp directory, and fails on any console error, failed request or error answer from our own server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from portal.devcluster.cluster import DevCluster

pytestmark = pytest.mark.browser

OPERATOR = "olivia.operator"


def test_operator_activates_rolls_back_and_deactivates(
    live_server: Any, page: Any, devcluster: DevCluster, cluster_catalog: Path, tmp_path: Path
) -> None:
    devcluster.ready_delay = 1.5  # long enough to see Pending in the header
    second = json.loads((cluster_catalog / "tiny-gpt2-test.json").read_text())
    second.update(id="tiny-gpt2-second", displayName="Tiny GPT-2 Second")
    (cluster_catalog / "tiny-gpt2-second.json").write_text(json.dumps(second))
    server = live_server(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        MODEL_MANAGER_DEVCLUSTER="true",
        MODEL_MANAGER_API_TOKEN="journey-token-0123456789",
        AUTH_PROXY_USER_HEADER="X-Forwarded-User",
    )
    page.set_extra_http_headers({"X-Forwarded-User": OPERATOR})
    page.on(
        "response",
        lambda r: (
            page.problems.append(f"{r.status} {r.url}") if r.url.startswith(server.url) and r.status >= 400 else None
        ),
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    shots = tmp_path / "screenshots"

    def shot(name: str) -> None:
        page.problems.extend(f"{name}: {v}" for v in page.evaluate("window.__cspViolations || []"))
        page.evaluate("window.__cspViolations = []")
        # caret="initial": hiding the caret leaves style="" on inputs, which htmx would copy on a swap (a CSP hit).
        path = shots / f"{len(list(shots.glob('*.png'))) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True, caret="initial")

    shots.mkdir()
    header = page.locator("#header_active")
    panel = page.locator("#active_model")

    # Catalog → the model page.
    page.goto(f"{server.url}/ui/catalog")
    header.get_by_text("none").wait_for()
    shot("catalog")
    page.get_by_role("link", name="Tiny GPT-2 Test").click()
    page.wait_for_url("**/ui/models/tiny-gpt2-test")

    # Dry run, then Activate: the header goes Pending, then Ready.
    page.get_by_role("button", name="Dry run").click()
    page.locator("#dry_run", has_text="Dry run passed").wait_for()
    shot("dry-run")
    page.get_by_role("button", name="Activate", exact=True).click()
    header.locator(".badge-pending").wait_for()
    shot("pending")
    header.locator(".badge-ready").wait_for(timeout=15000)
    panel.locator(".badge-ready").wait_for()
    shot("ready")
    assert dialogs == ["Activate tiny-gpt2-test? It replaces the model that is running now."]

    # A second model, so that there is something to roll back to.
    page.goto(f"{server.url}/ui/models/tiny-gpt2-second")
    page.get_by_role("button", name="Activate", exact=True).click()
    header.get_by_role("link", name="tiny-gpt2-second").wait_for()
    header.locator(".badge-ready").wait_for(timeout=15000)

    # History shows both activations by the operator; filtering pushes the page URL; Back restores a whole page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="History").click()
    page.wait_for_url("**/ui/history")
    timeline = page.locator("#timeline")
    first = timeline.locator("li", has_text=re.compile(r"model_activated · tiny-gpt2-test by"))
    assert f"by {OPERATOR}" in first.inner_text()
    page.get_by_label("Model").press_sequentially("tiny-gpt2-second")
    page.wait_for_url("**/ui/history?modelId=tiny-gpt2-second")
    page.locator("#timeline", has_not_text=re.compile(r"· tiny-gpt2-test by")).wait_for()
    shot("history-filtered")
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")  # make htmx ask the server
    page.go_back()
    page.wait_for_url("**/ui/history")
    page.locator("#timeline", has_text=re.compile(r"· tiny-gpt2-test by")).wait_for()
    assert page.get_by_role("heading", name="History", exact=True).is_visible()
    assert page.locator("#timeline").count() == 1 and page.locator("#header_active").count() == 1
    shot("history-back")

    # Roll back to the first model, then deactivate.
    page.goto(f"{server.url}/ui/models/tiny-gpt2-test")
    page.get_by_role("button", name="Roll back").click()
    header.get_by_role("link", name="tiny-gpt2-test").wait_for()
    panel.locator(".badge-ready").wait_for(timeout=15000)
    shot("rolled-back")
    page.get_by_role("button", name="Deactivate").click()
    panel.get_by_text("No model is active").wait_for()
    header.get_by_text("none").wait_for()
    shot("deactivated")

    page.goto(f"{server.url}/ui/history")
    events = page.locator("#timeline li")
    texts = [events.nth(i).text_content() or "" for i in range(events.count())]  # details included
    assert "model_deactivated" in texts[0] and OPERATOR in texts[0], texts
    assert "model_activated · tiny-gpt2-test" in texts[1] and '"rollbackFrom": "tiny-gpt2-second"' in texts[1], texts
    page.wait_for_load_state("networkidle")
    assert len(list(shots.glob("*.png"))) == 8
    assert page.problems == [], "\n".join(page.problems)
