"""Fit calculator pages: the page, its result partial, and the panels on model pages."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask

from tests.support.fixtures_discovery import llama_like
from tests.support.hub import HubServer

RESULT = "/ui/fit/result?hfModelId=acme/llama-8b&gpuType=nvidia-l4&vllmVersion=0.19.0"


def test_calculator_page_is_in_the_navigation_and_empty_at_first(discovery_app: Flask) -> None:
    page = discovery_app.test_client().get("/ui/fit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/ui/fit"' in html and "Fit calculator" in html
    assert 'id="fit_form"' in html and 'id="fit_result"' in html
    assert "Enter a Hugging Face model id" in html


def test_result_partial_shows_verdict_memory_bar_and_kv(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    fits = client.get(RESULT + "&maxModelLen=8192")
    html = fits.get_data(as_text=True)
    assert fits.status_code == 200
    assert html.lstrip().startswith('<section id="fit_result"')
    assert 'data-verdict="fits"' in html
    for key in ("weights", "activation", "non-torch", "kv", "unused"):
        assert f'class="seg seg-{key}"' in html, key
    assert "style=" not in html  # the CSP forbids inline styles: widths are SVG attributes
    widths = [float(w) for w in re.findall(r'<rect class="seg [^"]+" x="[^"]+" y="0" width="([^"]+)"', html)]
    assert abs(sum(widths) - 1000) < 1  # the segments fill the GPU exactly
    tokens = int(re.search(r'data-kv-tokens="(\d+)"', html).group(1))  # type: ignore[union-attr]
    assert tokens > 8192
    too_long = client.get(RESULT + "&maxModelLen=131072").get_data(as_text=True)
    assert 'data-verdict="does_not_start"' in too_long and "What would make it fit" in too_long
    assert "--kv-cache-dtype fp8" in too_long


def test_bad_input_re_renders_the_partial_with_a_message(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    response = discovery_app.test_client().get(RESULT + "&gpuMemoryUtilization=2")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="fit_result"' in html and "gpuMemoryUtilization" in html
    unknown = discovery_app.test_client().get("/ui/fit/result?hfModelId=acme/nothing")
    # a model that cannot be estimated is a message in the panel (it loads by itself on model pages)
    assert unknown.status_code == 200
    assert 'id="fit_result"' in unknown.get_data(as_text=True) and "No estimate:" in unknown.get_data(as_text=True)


def test_model_pages_carry_the_calculator_panel(
    make_discovery_app: Any, hub: HubServer, cluster_catalog: Any, devcluster: Any
) -> None:
    llama_like(hub, "meta-llama/Llama-3.1-8B-Instruct")
    app = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig), MODEL_CATALOG_ROOT=str(cluster_catalog.parent))
    client = app.test_client()
    hub_page = client.get("/ui/discover/meta-llama/Llama-3.1-8B-Instruct").get_data(as_text=True)
    assert 'name="hfModelId" value="meta-llama/Llama-3.1-8B-Instruct"' in hub_page
    assert 'hx-trigger="load, input delay:300ms, change, submit"' in hub_page
    entry_page = client.get("/ui/models/llama-3.1-8b-instruct").get_data(as_text=True)
    assert 'name="model" value="llama-3.1-8b-instruct"' in entry_page and 'id="fit_result"' in entry_page
