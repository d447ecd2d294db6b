"""Journey 3: the failures a person meets, each shown in words they can act on (screenshots per step)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.devcluster.cluster import DevCluster
from tests.support.fixtures_cluster import write_entry_file
from tests.support.hub import HubServer, make_model_repo

pytestmark = pytest.mark.browser


class Screenshots:
    """Numbered screenshots of a journey's key steps, kept in the test's output directory."""

    def __init__(self, page: Any, directory: Path) -> None:
        self.page, self.directory, self.count = page, directory, 0
        directory.mkdir(parents=True, exist_ok=True)

    def take(self, step: str) -> Path:
        """Save the whole page as `NN-step.png`."""
        self.count += 1
        path = self.directory / f"{self.count:02d}-{step}.png"
        # caret="initial": the default adds style="" to inputs, which htmx may copy and the CSP refuses.
        self.page.screenshot(path=str(path), full_page=True, caret="initial")
        return path


def test_unschedulable_entry_says_why(
    live_server: Any, page: Any, devcluster: DevCluster, cluster_catalog: Path, tmp_path: Path
) -> None:
    write_entry_file(
        cluster_catalog,
        {
            "id": "too-big",
            "displayName": "Too Big",
            "hfModelId": "Org/Huge",
            "resources": {"limits": {"nvidia.com/gpu": "64"}, "requests": {"nvidia.com/gpu": "64"}},
        },
    )
    server = live_server(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        MODEL_MANAGER_DEVCLUSTER="true",
    )
    shots = Screenshots(page, tmp_path / "screenshots")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{server.url}/ui/catalog")
    page.get_by_role("link", name="Too Big").click()
    page.wait_for_url("**/ui/models/too-big")
    shots.take("model-page")
    page.get_by_role("button", name="Activate", exact=True).click()
    panel = page.locator("#active_model", has_text="Unschedulable")
    panel.wait_for(timeout=15000)
    assert "nvidia.com/gpu" in panel.inner_text()  # what is missing, not just that it failed
    shots.take("unschedulable")
    page.wait_for_load_state("networkidle")
    assert page.problems == []


def test_gated_repo_install_asks_for_a_token(live_server: Any, page: Any, hub: HubServer, tmp_path: Path) -> None:
    make_model_repo(hub, "gated-org/secret-llm", total_bytes=200_000, gated=True)
    server = live_server(HF_ENDPOINT=hub.url)
    shots = Screenshots(page, tmp_path / "screenshots")
    page.goto(f"{server.url}/ui/weights")
    page.get_by_label("Hugging Face model id").fill("gated-org/secret-llm")
    page.get_by_role("button", name="Install").click()
    message = page.locator("#install_form [role=alert], #install_form .field-error").first
    message.wait_for(timeout=10000)
    text = message.inner_text()
    assert "gated" in text and "HUGGINGFACE_API_TOKEN" in text, text
    shots.take("gated-install")
    # Nothing was queued for a repo we may not download.
    assert page.locator("#install_result .job-card").count() == 0
    # The form's re-render answers 422 by design (Chromium logs every 4xx); nothing else may go wrong.
    assert [p for p in page.problems if "status of 422" not in p] == []


def test_hub_down_shows_the_banner(live_server: Any, page: Any, tmp_path: Path) -> None:
    server = live_server(HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens there
    shots = Screenshots(page, tmp_path / "screenshots")
    page.goto(f"{server.url}/ui/discover?q=llama")
    page.get_by_text("Hugging Face is unreachable").first.wait_for(timeout=15000)
    shots.take("hub-down")
    assert page.locator("[role=status], [role=alert]").filter(has_text="Hugging Face").count() >= 1
