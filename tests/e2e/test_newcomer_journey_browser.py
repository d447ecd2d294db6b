"""Journey 1, the newcomer: Discover → search → fit badges → model → install its weights (form prefilled) →
progress to 100 % → create a catalog entry from the install → it validates → save. Screenshots per step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.services import vllm_registry
from tests.e2e.test_failure_journeys import Screenshots
from tests.support.fixtures_weights import isolated_queue
from tests.support.hub import HubServer, make_model_repo

pytestmark = pytest.mark.browser


def test_newcomer_finds_installs_and_catalogs_a_model(
    live_server: Any, page: Any, hub: HubServer, worker_process: Any, devcluster: Any, tmp_path: Path
) -> None:
    vllm_registry.reset_memo()
    make_model_repo(hub, "acme/tiny-chat", total_bytes=1_500_000, shards=2, downloads=50)
    server = live_server(
        HF_ENDPOINT=hub.url, KUBECONFIG=str(devcluster.kubeconfig), KUBE_TIMEOUT="3", **isolated_queue()
    )
    worker_process(burst=False)
    hub.throttle(800_000)  # a couple of seconds: the bar is seen moving
    shots = Screenshots(page, tmp_path / "screenshots")

    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Discover").first.click()
    page.wait_for_url("**/ui/discover**")
    page.get_by_label("Search").press_sequentially("tiny")
    card = page.locator('#results [data-model="acme/tiny-chat"]')
    card.wait_for()
    assert card.locator(".badge-supported").count() == 1  # vLLM serves its architecture
    shots.take("search")

    page.get_by_role("link", name="acme/tiny-chat").click()
    page.wait_for_url("**/ui/discover/acme/tiny-chat")
    assert page.locator('.fit-matrix tr[data-profile="nvidia-l4"] .badge-fits').count() == 1
    shots.take("model")

    page.locator("#install-weights").click()
    page.wait_for_url("**/ui/weights?**")
    assert page.get_by_label("Hugging Face model id").input_value() == "acme/tiny-chat"  # prefilled
    page.get_by_role("button", name="Install").click()
    bar = page.locator("#job_card [role=progressbar]")
    bar.wait_for(timeout=10_000)
    shots.take("installing")
    page.locator("#job_card[data-status=completed]").wait_for(timeout=60_000)
    assert bar.get_attribute("aria-valuenow") == "100"
    shots.take("installed")

    page.get_by_role("link", name="Create catalog entry from this").click()
    page.wait_for_url("**/ui/discover/new?**")
    page.wait_for_selector('#validation-status:text-is("valid")')
    shots.take("entry")
    page.locator("#save-entry").click()
    page.wait_for_selector("#save_result .banner-info")
    shots.take("saved")
    page.goto(f"{server.url}/ui/catalog")
    assert page.locator("#catalog_table", has_text="acme/tiny-chat").count() == 1
    page.wait_for_load_state("networkidle")
    assert page.problems == []
