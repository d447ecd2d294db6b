"""Discover pages: search results with badges, Hub down message and banner, model page, editor, entry fit."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from tests.support.fixtures_discovery import llama_like
from tests.support.hub import HubServer, make_model_repo
from tests.web.helpers import csrf_token


def test_discover_page_and_results_partial(discovery_app: Flask, hub: HubServer) -> None:
    llama_like(hub)
    client = discovery_app.test_client()
    page = client.get("/ui/discover?q=llama")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'hx-trigger="keyup changed delay:400ms, search"' in html and "hx-sync=" in html
    assert "acme/llama-8b" in html and "badge-supported" in html
    assert "badge-reduced" in html and "badge-fits" in html  # L4 reduced, MI210 fits
    partial = client.get("/ui/discover/results?q=llama", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert partial.startswith('<div id="results"')


def test_hub_unreachable_message_and_banner(discovery_app: Flask, hub: HubServer) -> None:
    hub.set_down(True)
    client = discovery_app.test_client()
    page = client.get("/ui/discover?q=x")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count("Hugging Face is unreachable") >= 2  # message in the results and the banner
    assert "Hugging Face is unreachable" in client.get("/ui/").get_data(as_text=True)
    model = client.get("/ui/discover/acme/x")
    assert model.status_code == 503 and "Hugging Face is unreachable" in model.get_data(as_text=True)


def test_model_page_and_editor_save(discovery_app: Flask, hub: HubServer) -> None:
    make_model_repo(hub, "acme/tiny-chat")
    client = discovery_app.test_client()
    html = client.get("/ui/discover/acme/tiny-chat").get_data(as_text=True)
    assert "fit-matrix" in html and "model.safetensors" in html and "Create catalog entry" in html
    editor = client.get("/ui/discover/new?hfModelId=acme/tiny-chat&gpuType=nvidia-l4").get_data(as_text=True)
    assert 'id="validation"' in editor and "acme-tiny-chat" in editor
    entry = {
        "id": "acme-tiny-chat",
        "hfModelId": "acme/tiny-chat",
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    headers = {"X-CSRFToken": csrf_token(client), "HX-Request": "true"}
    checks = client.post("/ui/discover/validate", data={"entry_json": json.dumps(entry)}, headers=headers).get_data(
        as_text=True
    )
    assert checks.startswith('<section id="validation"') and 'data-check="fit"' in checks
    bad = client.post("/ui/discover/validate", data={"entry_json": "{nope"}, headers=headers).get_data(as_text=True)
    assert "not valid" in bad
    saved = client.post("/ui/discover/save", data={"entry_json": json.dumps(entry)}, headers=headers)
    assert saved.status_code == 200
    settings = discovery_app.config["SETTINGS"]
    assert (settings.catalog_models_dir / "acme-tiny-chat.json").is_file()
    assert client.get("/models/acme-tiny-chat").status_code == 200  # the catalog sees it at once
    created = client.get("/history?event=catalog_entry_created").json["events"]
    assert [e["modelId"] for e in created] == ["acme-tiny-chat"]
    again = client.post("/ui/discover/save", data={"entry_json": json.dumps(entry)}, headers=headers)
    assert again.status_code == 409
    fit = client.get("/ui/models/acme-tiny-chat/fit").get_data(as_text=True)
    assert fit.startswith('<section id="entry_fit"') and "nvidia-l4" in fit and "fits" in fit


def test_entry_fit_partial_for_unknown_model(discovery_app: Flask) -> None:
    body: Any = discovery_app.test_client().get("/ui/models/nope/fit").get_data(as_text=True)
    assert 'id="entry_fit"' in body
