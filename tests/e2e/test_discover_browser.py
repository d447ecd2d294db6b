"""Discover in a real browser: type a query, see results and fit badges, open a model, generate an entry."""

from __future__ import annotations

from typing import Any

import pytest

from portal.services import vllm_registry
from tests.support.fixtures_discovery import llama_like
from tests.support.hub import HubServer, make_model_repo

pytestmark = pytest.mark.browser


def test_search_open_model_generate_and_validate(live_server: Any, page: Any, hub: HubServer, devcluster: Any) -> None:
    vllm_registry.reset_memo()
    llama_like(hub, "acme/llama-8b")
    make_model_repo(hub, "acme/tiny-chat", downloads=50)
    server = live_server(HF_ENDPOINT=hub.url, KUBECONFIG=str(devcluster.kubeconfig), KUBE_TIMEOUT="3")
    page.goto(f"{server.url}/ui/discover")
    page.wait_for_selector('#results [data-model="acme/tiny-chat"]')  # first load lists the most downloaded
    page.get_by_label("Search").press_sequentially("llama")
    page.wait_for_selector('#results [data-model="acme/tiny-chat"]', state="detached")
    assert page.locator("#results .result-card").count() == 1
    card = page.locator('[data-model="acme/llama-8b"]')
    assert card.locator(".badge-supported").count() == 1
    assert card.locator(".badge-reduced").count() == 1  # nvidia-l4
    assert card.locator(".badge-fits").count() == 1  # amd-mi210

    page.get_by_label("Search").fill("")
    page.get_by_label("Search").press_sequentially("tiny")
    page.wait_for_selector('#results [data-model="acme/llama-8b"]', state="detached")
    page.get_by_role("link", name="acme/tiny-chat").click()
    page.wait_for_url("**/ui/discover/acme/tiny-chat")
    assert page.locator('.fit-matrix tr[data-profile="nvidia-l4"] .badge-fits').count() == 1
    page.locator("#create-entry").click()
    page.wait_for_url("**/ui/discover/new?**")
    page.wait_for_selector("#validation-status")
    assert page.inner_text("#validation-status") == "valid"
    page.get_by_label("Max model length").fill("")
    page.get_by_label("Max model length").press_sequentially("999999")
    page.wait_for_selector('#validation-status:text("invalid")')
    page.get_by_label("Max model length").fill("")
    page.get_by_label("Max model length").press_sequentially("2048")
    page.wait_for_selector('#validation-status:text-is("valid")')
    page.locator("#save-entry").click()
    page.wait_for_selector("#save_result .banner-info")
    page.wait_for_load_state("networkidle")
    assert page.problems == []
