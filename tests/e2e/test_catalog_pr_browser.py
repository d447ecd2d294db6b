"""In a real browser: editor → Open pull request → job card → PR link; the catalog shows the entry as pending."""

from __future__ import annotations

from typing import Any

import pytest

from portal.services import vllm_registry
from portal.services.catalog import entry_file_text
from tests.services.test_catalog_pr import EXISTING, REPO
from tests.support.fixtures_catalog_pr import GIT_TOKEN
from tests.support.github import GitHubStub
from tests.support.gitserver import GitServer
from tests.support.hub import HubServer, make_model_repo

pytestmark = pytest.mark.browser


def test_editor_opens_a_pull_request_and_the_catalog_shows_it_pending(
    live_server: Any,
    page: Any,
    hub: HubServer,
    devcluster: Any,
    git_server: GitServer,
    github: GitHubStub,
    worker_process: Any,
) -> None:
    vllm_registry.reset_memo()
    make_model_repo(hub, "acme/tiny-chat", downloads=50)
    url = git_server.create_repo(REPO, {"models/existing-model.json": entry_file_text(EXISTING)})
    server = live_server(
        HF_ENDPOINT=hub.url,
        KUBECONFIG=str(devcluster.kubeconfig),
        KUBE_TIMEOUT="3",
        CATALOG_REPO=REPO,
        CATALOG_REPO_URL=url,
        GITHUB_TOKEN=GIT_TOKEN,
        GITHUB_API_URL=github.url,
    )
    worker_process(burst=False)  # a real worker runs the PR job while the card polls
    page.goto(f"{server.url}/ui/discover/new?hfModelId=acme/tiny-chat&gpuType=nvidia-l4")
    page.wait_for_selector('#validation-status:text-is("valid")')
    button = page.locator("#save-entry")
    assert button.inner_text() == "Open pull request"
    button.click()
    page.wait_for_selector("#save_result #job_card")
    link = page.wait_for_selector('#job_card[data-status="completed"] a[id$="-pr"]', timeout=60_000)
    assert link.inner_text() == "#1" and link.get_attribute("href") == f"https://github.example/{REPO}/pull/1"
    page.goto(f"{server.url}/ui/catalog")
    row = page.locator('#pending_changes tr[data-model-id="acme-tiny-chat"]')
    assert "in review: PR #1" in row.inner_text()
    page.wait_for_load_state("networkidle")
    assert page.problems == []
