"""Browser: the two bugs of choosing partials by HX-Request (History Back, the prefilled install form)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from portal.services import history
from tests.support.hub import HubServer, make_model_repo

pytestmark = pytest.mark.browser


def test_back_after_filtering_history_restores_the_whole_page(live_server: Any, page: Any) -> None:
    server = live_server()
    with server.server.app.app_context():
        history.record("model_activated", actor="alice", model_id="tiny-a")
        history.record("weights_deleted", actor="bob", model_id="tiny-b")
    page.goto(f"{server.url}/ui/history")
    timeline = page.locator("#timeline")
    assert "weights_deleted" in timeline.inner_text() and "model_activated" in timeline.inner_text()

    page.get_by_label("Event").press_sequentially("model_activated")
    page.wait_for_url("**/ui/history?event=model_activated")  # the page's own URL, pushed by the server
    page.locator("#timeline", has_not_text="weights_deleted").wait_for()
    # htmx restores Back from its sessionStorage snapshot when it has one; without one (evicted, another tab,
    # a reload) it asks the server for the URL with HX-Request and HX-History-Restore-Request.
    page.evaluate("sessionStorage.removeItem('htmx-history-cache')")
    with page.expect_request(lambda r: r.headers.get("hx-history-restore-request") == "true") as restore:
        page.go_back()
    assert restore.value.url == f"{server.url}/ui/history"
    page.locator("#timeline", has_text="weights_deleted").wait_for()
    assert page.get_by_role("heading", name="History", exact=True).is_visible()
    assert page.get_by_role("navigation", name="Main").is_visible()
    assert page.locator("#timeline").count() == 1 and page.locator("form.filters").count() == 1
    assert page.title().startswith("History")
    page.wait_for_load_state("networkidle")
    assert page.problems == []


def test_install_weights_link_of_a_hub_model_prefills_the_install_form(
    live_server: Any, page: Any, hub: HubServer, devcluster: Any
) -> None:
    make_model_repo(hub, "acme/tiny-chat", downloads=50)
    server = live_server(HF_ENDPOINT=hub.url, KUBECONFIG=str(devcluster.kubeconfig), KUBE_TIMEOUT="3")
    page.goto(f"{server.url}/ui/discover/acme/tiny-chat")
    page.get_by_role("link", name="Install weights").click()
    page.wait_for_url(re.compile(r"/ui/weights\?hfModelId=acme(/|%2F)tiny-chat$"))
    assert page.get_by_label("Hugging Face model id").input_value() == "acme/tiny-chat"
    page.get_by_role("button", name="Install", exact=True).click()
    page.locator("#install_result #job_card").wait_for()
    assert "acme/tiny-chat" in page.locator("#job_card h2").inner_text()
    assert page.get_by_label("Hugging Face model id").input_value() == "", "a queued install clears the form"
    assert page.problems == []
