"""Portal pages of the catalog and activation: render, filter partial, panel polling and 286, CSRF."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from portal.devcluster.cluster import DevCluster
from tests.support.fixtures_cluster import write_entry_file
from tests.web.helpers import csrf_token

HTMX = {"HX-Request": "true"}


def test_catalog_page_table_filter_and_errors(cluster_app: Flask, cluster_catalog: Path) -> None:
    (cluster_catalog / "broken.json").write_text("{nope", encoding="utf-8")
    client = cluster_app.test_client()
    page = client.get("/ui/catalog")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="catalog_table"' in html and 'hx-trigger="keyup changed delay:300ms' in html
    assert "Llama 3.1 8B Instruct" in html and "1 amd.com/gpu" in html and "vllm-runtime" in html
    assert '<th scope="col">' in html and "broken.json" in html and "invalid JSON" in html
    assert "demo cluster" in html.lower() and "1 file(s) have errors" in html

    partial = client.get("/ui/catalog/table?q=qwen", headers={**HTMX, "HX-Target": "catalog_table"})
    body = partial.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="catalog_table"') and "<html" not in body
    assert "Qwen2.5" in body and "Llama" not in body
    assert partial.headers["Vary"] and "HX-Request" in partial.headers["Vary"]
    assert partial.headers["HX-Replace-Url"] == "/ui/catalog?q=qwen", "the address bar keeps the filter"
    # The page itself never switches on htmx headers: a history restore gets the whole page.
    restored = client.get("/ui/catalog?q=qwen", headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restored.get_data(as_text=True) and 'id="catalog_q"' in restored.get_data(as_text=True)


def test_model_page_and_active_badge(cluster_app: Flask, cluster_catalog: Path) -> None:
    write_entry_file(cluster_catalog, {"id": "with-drops", "hfModelId": "O/M", "vllm": {"extraArgs": ["--port=1"]}})
    client = cluster_app.test_client()
    html = client.get("/ui/models/tiny-gpt2-test").get_data(as_text=True)
    assert "kind: InferenceService" in html and 'data-copy="#manifest_yaml"' in html
    assert 'hx-confirm="Activate tiny-gpt2-test?' in html and 'id="active_model"' in html
    assert "No model is active" in html
    assert "--port=1" in client.get("/ui/models/with-drops").get_data(as_text=True)
    assert client.get("/ui/models/nope").status_code == 404

    token = csrf_token(client, "/ui/catalog")
    activated = client.post("/ui/models/tiny-gpt2-test/activate", headers={**HTMX, "X-CSRFToken": token})
    assert activated.status_code == 200 and activated.headers["HX-Trigger"] == "active-changed"
    panel = activated.get_data(as_text=True)
    assert 'id="active_model"' in panel and "Pending" in panel and 'hx-trigger="every 1s"' in panel

    deadline = time.monotonic() + 5
    while True:
        poll = client.get("/ui/active", headers=HTMX)
        if poll.status_code == 286 or time.monotonic() > deadline:
            break
        assert poll.status_code == 200 and 'hx-trigger="every 1s"' in poll.get_data(as_text=True)
        time.sleep(0.1)
    assert poll.status_code == 286
    final = poll.get_data(as_text=True)
    assert "Ready" in final and "http://active-llm.ai.svc.cluster.local" in final and "every 1s" not in final

    table = client.get("/ui/catalog").get_data(as_text=True)
    assert ">active</span>" in table
    header = client.get("/ui/active/header", headers=HTMX).get_data(as_text=True)
    assert "tiny-gpt2-test" in header and "ready" in header


def test_dry_run_partial_and_plain_form_fallback(cluster_app: Flask) -> None:
    client = cluster_app.test_client()
    token = csrf_token(client, "/ui/catalog")
    dry = client.post("/ui/models/tiny-gpt2-test/dry-run", headers={**HTMX, "X-CSRFToken": token})
    assert dry.status_code == 200
    assert 'id="dry_run"' in dry.get_data(as_text=True) and "Dry run passed" in dry.get_data(as_text=True)
    # Without JavaScript the form posts and comes back to the model page with a message.
    plain = client.post("/ui/models/tiny-gpt2-test/activate", data={"csrf_token": token})
    assert plain.status_code == 302 and plain.headers["Location"].endswith("/ui/models/tiny-gpt2-test")
    assert "activated" in client.get("/ui/models/tiny-gpt2-test").get_data(as_text=True)
    rolled = client.post("/ui/active/rollback", headers={**HTMX, "X-CSRFToken": token})
    assert rolled.status_code == 422 and "nothing to roll back to" in rolled.get_data(as_text=True)
    gone = client.post("/ui/active/deactivate", headers={**HTMX, "X-CSRFToken": token})
    assert gone.status_code == 200 and "No model is active" in gone.get_data(as_text=True)


def test_dry_run_refusal_shows_inline(
    make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path
) -> None:
    # KServe's validating webhook refuses the object; the portal shows the API server's reason inline.
    denial = 'admission webhook "inferenceservice.kserve-webhook-server.validator" denied the request: 9llm is refused'
    devcluster.fail_next(403, method="POST", message=denial, reason="Forbidden")
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
    )
    client = app.test_client()
    token = csrf_token(client, "/ui/catalog")
    refused = client.post("/ui/models/tiny-gpt2-test/dry-run", headers={**HTMX, "X-CSRFToken": token})
    assert refused.status_code == 422
    assert "Dry run failed" in refused.get_data(as_text=True) and "9llm" in refused.get_data(as_text=True)


def test_portal_mutations_need_csrf(cluster_app: Flask) -> None:
    client = cluster_app.test_client()
    for path in ("/ui/models/tiny-gpt2-test/activate", "/ui/models/tiny-gpt2-test/dry-run", "/ui/active/deactivate"):
        assert client.post(path, headers=HTMX).status_code == 400, path
    assert client.get("/active").json["status"] == "none"


def test_pages_survive_an_unconfigured_cluster(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/ui/catalog").status_code == 200
    header = client.get("/ui/active/header", headers=HTMX)
    assert header.status_code == 200 and "no cluster configured" in header.get_data(as_text=True)
    panel = client.get("/ui/active", headers=HTMX)
    assert panel.status_code == 286 and "no cluster configured" in panel.get_data(as_text=True)
