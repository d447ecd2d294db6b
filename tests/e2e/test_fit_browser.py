"""Fit calculator in a real browser: change inputs, watch the verdict and the memory picture change."""

from __future__ import annotations

from typing import Any

import pytest

from portal.services import vllm_registry
from tests.support.fixtures_discovery import llama_like
from tests.support.hub import HubServer

pytestmark = pytest.mark.browser


def kv_tokens(page: Any) -> int:
    return int(page.locator("#fit_result [data-kv-tokens]").first.get_attribute("data-kv-tokens"))


def test_changing_inputs_changes_the_verdict(live_server: Any, page: Any, hub: HubServer, devcluster: Any) -> None:
    vllm_registry.reset_memo()
    llama_like(hub)
    server = live_server(HF_ENDPOINT=hub.url, KUBECONFIG=str(devcluster.kubeconfig), KUBE_TIMEOUT="3")
    page.goto(f"{server.url}/ui/fit?hfModelId=acme/llama-8b&gpuType=nvidia-l4&vllmVersion=0.19.0&maxModelLen=8192")
    page.wait_for_selector('#fit_result [data-verdict="fits"]')
    assert page.locator("#fit_result svg.memory-bar rect.seg-kv").count() == 1
    fits_tokens = kv_tokens(page)

    length = page.get_by_label("Context length (max-model-len)")
    length.fill("")
    length.press_sequentially("65536")
    page.wait_for_selector('#fit_result [data-verdict="does_not_start"]')
    assert "What would make it fit" in page.inner_text("#fit_result")

    page.get_by_label("KV cache dtype").select_option("fp8")
    page.wait_for_selector('#fit_result [data-verdict="fits"]')
    assert kv_tokens(page) > 1.9 * fits_tokens  # one byte per value instead of two

    page.get_by_label("GPU", exact=True).select_option("nvidia-t4")
    page.wait_for_selector('#fit_result [data-gpu="nvidia-t4"][data-verdict="does_not_start"]')
    assert page.locator("#fit_result rect.seg-short").count() == 1  # weights alone overflow a T4
    page.wait_for_load_state("networkidle")
    assert page.problems == []
