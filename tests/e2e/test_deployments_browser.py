"""Browser: new deployment → placements → deploy → Pending → Ready → switch model → roll back → delete."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from portal.devcluster.cluster import DevCluster
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.browser


def ready_again(page: Any, devcluster: DevCluster) -> None:
    """Let the new rollout finish (the cards stop polling), as a person would before the next action."""
    page.locator("#deployment-chat .badge-pending").wait_for(timeout=10000)
    devcluster.advance(601)
    page.locator("#deployment-chat .badge-ready").wait_for(timeout=10000)
    page.wait_for_load_state("networkidle")


def test_deployment_journey(deploy_app: Flask, page: Any, devcluster: DevCluster) -> None:
    devcluster.ready_delay = 600  # Pending until the test moves the cluster's clock
    server = LiveServer(deploy_app)
    dialogs: list[str] = []

    def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    try:
        page.goto(f"{server.url}/ui/deployments")
        page.locator("#header_deployments", has_text="0 Ready").wait_for(timeout=5000)
        page.get_by_role("link", name="New deployment").click()
        page.wait_for_url("**/ui/deployments/new")
        page.get_by_label("Name").fill("chat")
        page.get_by_label("Model").select_option("small-a")
        # The placements come in for the chosen model, best first.
        best = page.locator("#placements input[type=radio]").first
        best.wait_for(timeout=5000)
        assert best.get_attribute("value") == "gpu-l4-1:1" and best.is_checked()
        assert "venus" in page.locator("#placements").inner_text()
        page.get_by_role("button", name="Deploy").click()
        page.wait_for_url("**/ui/deployments")
        card = page.locator("#deployment-chat")
        card.locator(".badge-pending").wait_for(timeout=10000)
        devcluster.advance(601)
        card.locator(".badge-ready").wait_for(timeout=10000)
        assert "http://chat.ai" in card.locator("#url-chat").inner_text()
        assert "on gpu-l4-1" in card.inner_text()
        page.locator("#header_deployments", has_text="1 Ready").wait_for(timeout=10000)
        page.locator("#capacity rect.dep-0").wait_for(timeout=5000)

        card.get_by_label("Switch to").select_option("small-b")
        card.get_by_role("button", name="Switch model").click()
        page.locator("#deployment-chat", has_text="small-b").wait_for(timeout=10000)
        assert any("Switch chat" in d for d in dialogs)
        ready_again(page, devcluster)

        page.locator("#deployment-chat").get_by_role("button", name="Roll back").click()
        page.locator("#deployment-chat", has_text="small-a").wait_for(timeout=10000)
        ready_again(page, devcluster)

        page.locator("#deployment-chat").get_by_role("button", name="Delete").click()
        page.locator("#deployment_list", has_text="No deployments yet").wait_for(timeout=10000)
        assert any("Delete the deployment chat" in d for d in dialogs)
        page.wait_for_load_state("networkidle")
        assert page.problems == [], page.problems
    finally:
        server.stop()
