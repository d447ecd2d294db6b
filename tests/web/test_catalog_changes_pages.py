"""Portal: the editor opens a pull request when CATALOG_REPO is set, the catalog lists pending changes,
the System page shows the notification channels and sends a test."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask

from portal.services.catalog import entry_file_text
from tests.services.test_catalog_pr import EXISTING, NEW, REPO, run_jobs
from tests.support.fixtures_catalog_pr import GIT_TOKEN
from tests.support.github import GitHubStub
from tests.support.gitserver import GitServer
from tests.support.webhook import WebhookReceiver
from tests.web.helpers import csrf_token


def test_editor_opens_a_pull_request_and_the_catalog_lists_it_as_pending(
    make_app: Callable[..., Flask], git_server: GitServer, github: GitHubStub
) -> None:
    url = git_server.create_repo(REPO, {"models/existing-model.json": entry_file_text(EXISTING)})
    app = make_app(CATALOG_REPO=REPO, CATALOG_REPO_URL=url, GITHUB_TOKEN=GIT_TOKEN, GITHUB_API_URL=github.url)
    client = app.test_client()
    with app.app_context():
        headers = {"X-CSRFToken": csrf_token(client), "HX-Request": "true"}
        queued = client.post("/ui/catalog/pr", data={"entry_json": json.dumps(NEW)}, headers=headers)
        assert queued.status_code == 202
        card = queued.get_data(as_text=True)
        assert (
            card.startswith('<div id="save_result"')
            and 'id="job_card"' in card
            and "Pull request for new-model" in card
        )
        run_jobs(app)
        job_id = card.split('data-status="')[0].rsplit("/ui/jobs/", 1)[1].split("/", 1)[0]
        done = client.get(f"/ui/jobs/{job_id}/card", headers={"HX-Request": "true"})
        assert done.status_code == 286
        assert f'href="https://github.example/{REPO}/pull/1">#1</a>' in done.get_data(as_text=True)
        catalog = client.get("/ui/catalog").get_data(as_text=True)
        assert "in review:" in catalog and "PR #1</a>" in catalog and 'data-model-id="new-model"' in catalog
        partial = client.get("/ui/catalog/pending").get_data(as_text=True)
        assert partial.startswith('<section id="pending_changes"') and "PR #1" in partial
        bad = client.post("/ui/catalog/pr", data={"entry_json": json.dumps({**NEW, "id": "../x"})}, headers=headers)
        assert bad.status_code == 422 and "unsafe catalog id" in bad.get_data(as_text=True)
    assert GIT_TOKEN not in card + catalog + done.get_data(as_text=True)


def test_editor_without_a_repository_says_it_is_a_local_catalog(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    client = app.test_client()
    headers = {"X-CSRFToken": csrf_token(client), "HX-Request": "true"}
    saved = client.post("/ui/discover/save", data={"entry_json": json.dumps(NEW)}, headers=headers)
    assert saved.status_code == 200 and "local catalog, not reviewed" in saved.get_data(as_text=True)
    disabled = client.post("/ui/catalog/pr", data={"entry_json": json.dumps(NEW)}, headers=headers)
    assert disabled.status_code == 422 and "CATALOG_REPO" in disabled.get_data(as_text=True)


def test_system_page_channels_and_send_test(make_app: Callable[..., Flask], webhook: WebhookReceiver) -> None:
    app = make_app(NOTIFY_WEBHOOK_URLS=f"{webhook.url}/hook/secretpart")
    client = app.test_client()
    page = client.get("/ui/system").get_data(as_text=True)
    assert 'id="notifications"' in page and "configured" in page and "not configured" in page  # webhook yes, Slack no
    assert "secretpart" not in page and webhook.url not in page
    headers = {"X-CSRFToken": csrf_token(client), "HX-Request": "true"}
    sent = client.post("/ui/system/notifications/test", headers=headers).get_data(as_text=True)
    assert sent.startswith('<div id="notification_test"') and "webhook-1: sent" in sent
    assert webhook.events() == ["test"]
    webhook.fail_with(500)
    failed = client.post("/ui/system/notifications/test", headers=headers).get_data(as_text=True)
    assert "failed to deliver" in failed and "HTTP 500" in failed
    partial = client.get("/ui/system/notifications").get_data(as_text=True)
    assert partial.startswith('<section id="notifications"')
    nothing = make_app(NOTIFY_WEBHOOK_URLS="").test_client()
    headers = {"X-CSRFToken": csrf_token(nothing), "HX-Request": "true"}
    answer = nothing.post("/ui/system/notifications/test", headers=headers).get_data(as_text=True)
    assert "no notification channel is configured" in answer
