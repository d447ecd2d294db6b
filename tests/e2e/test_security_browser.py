"""Browser: script payloads in catalog entries, Hub metadata, job messages and history stay inert on every page,
and no page of the portal trips its Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.extensions import db
from portal.models import Job
from portal.services import history
from tests.support.fixtures_cluster import write_entry_file
from tests.support.hub import HubServer, make_model_repo

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<img src=x onerror=alert('img')>",
    "<script>alert('script')</script>",
    "\"><svg onload=alert('svg')>",
    "javascript:alert('href')",
]


def _seed(app: Any, catalog: Path) -> str:
    write_entry_file(
        catalog,
        {
            "id": "xss-entry",
            "displayName": PAYLOADS[0],
            "hfModelId": "acme/xss-model",
            "servedModelName": PAYLOADS[2],
            "vllm": {"extraArgs": [f"--served-model-name={PAYLOADS[1]}"]},
        },
    )
    with app.app_context():
        job = Job(
            type="noop",
            status="failed",
            actor=PAYLOADS[2],
            target=PAYLOADS[0],
            message=PAYLOADS[1],
            error=PAYLOADS[0],
            model_id="acme/xss-model",
        )
        db.session.add(job)
        db.session.commit()
        history.record(PAYLOADS[0], actor=PAYLOADS[1], model_id=PAYLOADS[2], metadata={"note": PAYLOADS[3]})
        return str(job.id)


def test_payloads_are_inert_and_no_page_violates_the_csp(
    live_server: Any, page: Any, hub: HubServer, devcluster: Any, cluster_catalog: Path
) -> None:
    make_model_repo(
        hub, "acme/xss-model", license=PAYLOADS[0], pipeline_tag=PAYLOADS[1], extra_config={"model_type": PAYLOADS[2]}
    )
    server = live_server(
        HF_ENDPOINT=hub.url,
        KUBECONFIG=str(devcluster.kubeconfig),
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        MODEL_MANAGER_DEVCLUSTER="true",
        KUBE_TIMEOUT="3",
    )
    job_id = _seed(server.server.app, cluster_catalog)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    paths = [
        "/ui/",
        "/ui/catalog",
        "/ui/catalog?q=xss",
        "/ui/models/xss-entry",
        "/ui/models/tiny-gpt2-test",
        "/ui/discover",
        "/ui/discover?q=xss",
        "/ui/discover/acme/xss-model",
        "/ui/discover/new?hfModelId=acme/xss-model",
        "/ui/weights",
        "/ui/weights?hfModelId=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
        "/ui/jobs",
        f"/ui/jobs/{job_id}",
        "/ui/history",
        "/ui/history?event=%3Cscript%3Ealert(1)%3C/script%3E",
        "/ui/system",
        "/ui/sign-in",
        "/ui/no-such-page",
        "/docs",
        "/rq/",
    ]
    for path in paths:
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__cspViolations || []") == [], path  # recorded by the `page` fixture
    assert dialogs == []
    # The payloads were on the pages as text, not dropped.
    page.goto(f"{server.url}/ui/catalog?q=xss")
    assert PAYLOADS[0] in page.locator("#catalog_table").inner_text()
    page.goto(f"{server.url}/ui/jobs/{job_id}")
    assert PAYLOADS[1] in page.inner_text("main")
    problems = [p for p in page.problems if "/ui/no-such-page" not in p and "404" not in p]
    assert problems == []
