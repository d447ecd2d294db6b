"""Browser: open a model, activate it (accepting the confirmation), watch the panel go Pending → Ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.devcluster.cluster import DevCluster

pytestmark = pytest.mark.browser


def test_activate_from_the_model_page(
    live_server: Any, page: Any, devcluster: DevCluster, cluster_catalog: Path
) -> None:
    devcluster.ready_delay = 1.5  # long enough to see Pending in the panel
    server = live_server(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        MODEL_MANAGER_DEVCLUSTER="true",
    )
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(f"{server.url}/ui/catalog")
    page.get_by_role("link", name="Tiny GPT-2 Test").click()
    page.wait_for_url("**/ui/models/tiny-gpt2-test")
    panel = page.locator("#active_model")
    assert "No model is active" in panel.inner_text()
    # The header line loads after the page (hx-trigger="load"), so wait for it rather than read it at once.
    page.locator("#header_active", has_text="Active model: none").wait_for(timeout=5000)

    page.get_by_role("button", name="Activate", exact=True).click()
    page.locator("#active_model .badge-pending").wait_for(timeout=5000)
    assert dialogs and "Activate tiny-gpt2-test" in dialogs[0]
    page.locator("#active_model .badge-ready").wait_for(timeout=10000)
    assert "http://active-llm.ai.svc.cluster.local" in page.locator("#active_url").inner_text()
    # The header panel followed along (HX-Trigger: active-changed).
    page.locator("#header_active .badge-ready").wait_for(timeout=5000)
    page.wait_for_load_state("networkidle")
    assert page.problems == []
