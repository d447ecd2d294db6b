"""Weights page, install form (inline errors, job card), job card polling (286), delete, CSRF."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask

from portal.extensions import db
from portal.models import Job
from tests.support.hub import HubServer
from tests.web.helpers import csrf_token

HX = {"HX-Request": "true"}


def _headers(client: Any) -> dict[str, str]:
    return {**HX, "X-CSRFToken": csrf_token(client)}


def test_weights_page_renders_usage_installs_and_form(install_app: Flask) -> None:
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    (root / "acme" / "m").mkdir(parents=True)
    (root / "acme" / "m" / "w.bin").write_bytes(b"x" * 2048)
    (root / "acme" / "m" / ".model-manager").write_text(json.dumps({"modelId": "acme/m", "revision": "b" * 40}))
    html = install_app.test_client().get("/ui/weights").get_data(as_text=True)
    assert 'id="usage"' in html and 'class="threshold"' in html and 'role="progressbar"' in html
    assert 'id="installs"' in html and "acme/m" in html and "bbbbbbbbbb" in html and "hx-confirm" in html
    assert 'id="install_form"' in html and 'name="hfModelId"' in html
    assert 'href="/ui/weights"' in html, "the Weights nav entry appears"


def test_install_form_errors_rerender_with_422(install_app: Flask, hub: HubServer) -> None:
    client = install_app.test_client()
    response = client.post("/ui/weights/install", data={"hfModelId": "not an id"}, headers=_headers(client))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="install_form"' in html and 'aria-invalid="true"' in html and "invalid Hugging Face model id" in html
    missing = client.post("/ui/weights/install", data={"hfModelId": "acme/none"}, headers=_headers(client))
    assert missing.status_code == 422 and "acme/none was not found on Hugging Face" in missing.get_data(as_text=True)


def test_install_form_requires_csrf(install_app: Flask) -> None:
    client = install_app.test_client()
    response = client.post("/ui/weights/install", data={"hfModelId": "acme/tiny-llm"}, headers=HX)
    assert response.status_code == 400
    assert db.session.query(Job).count() == 0


def test_install_answers_the_job_card_and_polling_stops_when_done(
    install_app: Flask, hub: HubServer, small_repo: Any
) -> None:
    client = install_app.test_client()
    response = client.post("/ui/weights/install", data={"hfModelId": "acme/tiny-llm"}, headers=_headers(client))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'id="job_card"' in html and 'hx-trigger="every 1s"' in html and 'hx-swap-oob="true"' in html
    assert 'aria-valuenow="0"' in html and "Cancel" in html
    job = db.session.query(Job).one()
    card = client.get(f"/ui/jobs/{job.id}/card", headers=HX)
    assert card.status_code == 200 and card.headers["Vary"] == "HX-Request"
    cancel = client.post(f"/ui/jobs/{job.id}/cancel", headers=_headers(client))
    assert cancel.status_code == 286 and "Retry" in cancel.get_data(as_text=True)
    assert 'hx-trigger="every 1s"' not in cancel.get_data(as_text=True)
    job_page = client.get(f"/ui/jobs/{job.id}").get_data(as_text=True)
    assert 'id="job_card"' in job_page
    db.session.rollback()
    done = db.session.get(Job, job.id)
    done.status, done.progress = "completed", 100
    done.result = {
        "storageUri": "pvc://venus-model-storage/acme/tiny-llm",
        "inferenceModelPath": "/mnt/models/acme/tiny-llm",
    }
    db.session.commit()
    final = client.get(f"/ui/jobs/{job.id}/card", headers=HX)
    text = final.get_data(as_text=True)
    assert final.status_code == 286 and "data-copy=" in text and "Create catalog entry from this" in text
    assert "pvc://venus-model-storage/acme/tiny-llm" in text
    jobs_table = client.get("/ui/jobs").get_data(as_text=True)
    assert "progress-mini" in jobs_table


def test_delete_from_the_portal(install_app: Flask) -> None:
    root = Path(install_app.config["SETTINGS"].weights_storage_path)
    (root / "acme" / "gone").mkdir(parents=True)
    (root / "acme" / "gone" / "w.bin").write_bytes(b"x")
    client = install_app.test_client()
    response = client.post("/ui/weights/delete", data={"name": "acme/gone"}, headers=_headers(client))
    assert response.status_code == 200 and 'id="installs"' in response.get_data(as_text=True)
    assert not (root / "acme" / "gone").exists()
    refused = client.post("/ui/weights/delete", data={"name": "../x"}, headers=_headers(client))
    assert refused.status_code == 422 and "path traversal" in refused.get_data(as_text=True)


def test_completed_install_card_tells_the_page_to_reload_installs(app, client) -> None:  # type: ignore[no-untyped-def]
    from portal.services import jobs as job_service
    from portal.web.jobs import render_card

    job = job_service.create_job("weight_install", actor="tester", payload={"hfModelId": "org/model"})
    job_service.start(job)
    with app.test_request_context():
        assert "HX-Trigger" not in render_card(job).headers
        job_service.complete(job, result={"storageUri": "pvc://v/org/model"})
        finished = render_card(job)
    assert finished.status_code == 286 and finished.headers["HX-Trigger"] == "weights-changed"
    for panel in ("/ui/weights/panels/installs", "/ui/weights/panels/usage"):
        response = client.get(panel, headers={"HX-Request": "true"})
        assert response.status_code == 200
        assert 'hx-trigger="weights-changed from:body"' in response.get_data(as_text=True)
    page = client.get("/ui/weights").get_data(as_text=True)
    assert "no Kubernetes cluster is configured" in page
