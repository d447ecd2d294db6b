"""Catalog pull requests against a real git smart-HTTP server (token required) and the GitHub API stub."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker

from portal.extensions import db, redis_holder
from portal.models import CatalogPullRequest, Job
from portal.services import catalog_pr
from portal.services.catalog import entry_file_text, get_catalog
from tests.support.fixtures_catalog_pr import GIT_TOKEN
from tests.support.github import GitHubStub
from tests.support.gitserver import GitServer, git
from tests.support.webhook import WebhookReceiver

REPO = "acme/catalog"
EXISTING = {
    "id": "existing-model",
    "displayName": "Existing Model",
    "hfModelId": "acme/existing",
    "runtime": "vllm-runtime",
    "vllm": {"maxModelLen": 2048},
}
NEW = {
    "id": "new-model",
    "displayName": "New Model",
    "hfModelId": "acme/new-model",
    "storageUri": "pvc://venus-model-storage/acme/new-model",
    "vllm": {"dtype": "float16", "maxModelLen": 4096},
}


@pytest.fixture
def pr_app(make_app: Callable[..., Flask], git_server: GitServer, github: GitHubStub) -> Iterator[Flask]:
    """An app with CATALOG_REPO pointing at the local git server and the GitHub stub."""
    url = git_server.create_repo(REPO, {"models/existing-model.json": entry_file_text(EXISTING), "README.md": "x\n"})
    github.token = GIT_TOKEN
    app = make_app(
        CATALOG_REPO=REPO,
        CATALOG_REPO_URL=url,
        GITHUB_TOKEN=GIT_TOKEN,
        GITHUB_API_URL=github.url,
        GIT_AUTHOR_NAME="Catalog Bot",
        GIT_AUTHOR_EMAIL="bot@example.com",
    )
    with app.app_context():
        yield app


def run_jobs(app: Flask) -> None:
    """Run every queued RQ job in this process (SimpleWorker, burst)."""
    holder = redis_holder(app)
    SimpleWorker([holder.queue], connection=holder.connection).work(burst=True)


def open_pr(app: Flask, body: dict[str, Any]) -> Job:
    """POST /catalog/pr, run the job, return the finished row."""
    response = app.test_client().post("/catalog/pr", json=body)
    assert response.status_code == 202, response.json
    job_id = response.json["job"]["id"]
    run_jobs(app)
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    assert job is not None
    return job


def test_happy_path_pushes_the_canonical_file_and_opens_a_pr_with_evidence(
    pr_app: Flask, git_server: GitServer, github: GitHubStub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    job = open_pr(pr_app, {"entry": NEW, "validate": False})
    assert job.status == "completed", job.error
    result = job.result or {}
    assert result["branch"] == "model/new-model" and result["file"] == "models/new-model.json"
    assert result["pullRequest"]["number"] == 1 and result["pullRequest"]["state"] == "open"
    assert result["pullRequest"]["htmlUrl"] == f"https://github.example/{REPO}/pull/1"

    pushed = git_server.show(REPO, "refs/heads/model/new-model", "models/new-model.json")
    assert pushed == entry_file_text(NEW).encode()
    assert pushed.endswith(b"}\n") and b'\n  "displayName": "New Model",' in pushed
    commit = git_server.message(REPO, "refs/heads/model/new-model")
    assert commit.startswith("Catalog Bot <bot@example.com>") and "anonymous" in commit
    assert git_server.show(REPO, "refs/heads/model/new-model", "README.md") == b"x\n"  # built on main

    method, path, sent = github.calls[0]
    assert (method, path) == ("POST", f"/repos/{REPO}/pulls")
    assert sent["head"] == "model/new-model" and sent["base"] == "main" and sent["title"] == "Add model New Model"
    body = sent["body"]
    assert "## InferenceService" in body and "apiVersion: serving.kserve.io/v1beta1" in body
    assert "| schema | pass |" in body and "| storage |" in body and "## Fit" in body
    assert '"hfModelId": "acme/new-model"' in body and "```diff" not in body

    row = db.session.query(CatalogPullRequest).one()
    assert (row.model_id, row.number, row.state, row.pending) == ("new-model", 1, "open", True)
    listed = pr_app.test_client().get("/catalog/prs?pending=true").json
    assert [(p["modelId"], p["number"]) for p in listed["pullRequests"]] == [("new-model", 1)]
    opened = pr_app.test_client().get("/history?event=catalog_pr_opened").json["events"]
    assert [(e["modelId"], e["actor"], e["metadata"]["url"]) for e in opened] == [
        ("new-model", "anonymous", row.html_url)
    ]

    metrics = pr_app.test_client().get("/metrics").get_data(as_text=True)
    assert 'model_manager_jobs_total{status="completed",type="catalog_pr"}' in metrics
    assert 'model_manager_job_duration_seconds_count{status="completed",type="catalog_pr"}' in metrics

    # The token is nowhere: work clone config, logs, responses, pages.
    work = pr_app.config["SETTINGS"].state_path / "catalog-work"
    for path in work.rglob("*"):
        if path.is_file():
            assert GIT_TOKEN.encode() not in path.read_bytes(), path
    assert GIT_TOKEN not in caplog.text
    client = pr_app.test_client()
    for url in (f"/jobs/{job.id}", f"/jobs/{job.id}/logs", "/catalog/prs", "/system/info", f"/ui/jobs/{job.id}"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert GIT_TOKEN not in page.get_data(as_text=True), url


def test_the_git_server_refuses_a_push_without_the_token(pr_app: Flask, git_server: GitServer) -> None:
    bare = str(git_server.bare(REPO))
    with pytest.raises(RuntimeError, match=r"401|Authentication|could not read"):
        git(
            "--git-dir",
            bare,
            "push",
            f"{git_server.url}/{REPO}.git",
            "main:refs/heads/stolen",
            extra={"GIT_ASKPASS": "true"},
        )
    assert git_server.tip(REPO, "stolen") is None


def test_update_of_an_existing_entry_has_the_diff(pr_app: Flask, github: GitHubStub) -> None:
    changed = {**EXISTING, "vllm": {"maxModelLen": 8192}}
    job = open_pr(pr_app, {"entry": changed, "validate": False, "body": "Longer context, tested on L4."})
    assert job.status == "completed", job.error
    sent = github.calls[0][2]
    assert sent["title"] == "Update model Existing Model"
    assert sent["body"].startswith("Longer context, tested on L4.")
    assert "```diff" in sent["body"] and '-    "maxModelLen": 2048' in sent["body"]
    assert '+    "maxModelLen": 8192' in sent["body"]


def test_the_original_body_shape_model_as_a_full_entry_still_works(pr_app: Flask, github: GitHubStub) -> None:
    job = open_pr(pr_app, {"model": NEW, "validate": False})
    assert job.status == "completed", job.error
    assert github.calls[0][2]["head"] == "model/new-model"


def test_model_id_from_the_catalog(pr_app: Flask, github: GitHubStub) -> None:
    models = pr_app.config["SETTINGS"].catalog_models_dir
    (models / "local-one.json").write_text(entry_file_text({"id": "local-one", "hfModelId": "acme/l1"}))
    get_catalog().refresh()
    job = open_pr(pr_app, {"model": "local-one", "validate": False, "branch": "add/local-one", "draft": True})
    assert job.status == "completed", job.error
    assert github.calls[0][2]["head"] == "add/local-one" and github.calls[0][2]["draft"] is True


def test_branch_with_other_content_is_refused_unless_forced_and_ours(
    pr_app: Flask, git_server: GitServer, github: GitHubStub
) -> None:
    git_server.commit(REPO, {"models/new-model.json": "{}\n"}, branch="model/new-model", message="by hand")
    job = open_pr(pr_app, {"entry": NEW, "validate": False})
    assert job.status == "failed" and job.stage == "push"
    assert "already exists" in (job.error or "") and "another" in (job.error or "")
    forced = open_pr(pr_app, {"entry": NEW, "validate": False, "force": True})
    assert forced.status == "failed" and "not created by Model Manager" in (forced.error or "")
    assert git_server.show(REPO, "refs/heads/model/new-model", "models/new-model.json") == b"{}\n"

    assert open_pr(pr_app, {"entry": NEW, "validate": False, "branch": "model/ours"}).status == "completed"
    changed = {**NEW, "displayName": "New Model v2"}
    replaced = open_pr(pr_app, {"entry": changed, "validate": False, "branch": "model/ours", "force": True})
    assert replaced.status == "completed", replaced.error
    assert b"New Model v2" in git_server.show(REPO, "refs/heads/model/ours", "models/new-model.json")
    assert (replaced.result or {})["existing"] is True  # the open PR of that branch is returned


def test_push_rejected_says_what_to_do_and_leaves_the_work_clone_clean(pr_app: Flask, git_server: GitServer) -> None:
    git_server.reject_pushes(REPO)
    job = open_pr(pr_app, {"entry": NEW, "validate": False})
    assert job.status == "failed" and job.stage == "push"
    assert "rejected" in (job.error or "") and "branch" in (job.error or "")
    work = pr_app.config["SETTINGS"].state_path / "catalog-work"
    assert not [p for p in work.iterdir() if p.name.startswith("index-")]
    assert git("--git-dir", str(work / "repo.git"), "for-each-ref", "refs/heads").strip() == ""
    assert git_server.tip(REPO, "model/new-model") is None


def test_existing_pr_is_returned(pr_app: Flask, github: GitHubStub) -> None:
    first = (open_pr(pr_app, {"entry": NEW, "validate": False}).result or {})["pullRequest"]
    again = open_pr(pr_app, {"entry": NEW, "validate": False})
    assert again.status == "completed", again.error
    assert (again.result or {})["pullRequest"]["number"] == first["number"] == 1
    assert [c[0] for c in github.calls] == ["POST", "POST", "GET"]
    assert db.session.query(CatalogPullRequest).count() == 1


@pytest.mark.parametrize(
    ("status", "fragment"),
    [(401, "refused the token (401)"), (404, "not found (404)"), (500, "GitHub answered 500")],
)
def test_github_errors_name_the_step_and_the_fix(pr_app: Flask, github: GitHubStub, status: int, fragment: str) -> None:
    github.fail_next(status, "nope")
    job = open_pr(pr_app, {"entry": NEW, "validate": False})
    assert job.status == "failed" and job.stage == "pull_request"
    assert fragment in (job.error or "") and "pull_request failed" in (job.error or "")


def test_bad_clone_url_fails_at_fetch(make_app: Callable[..., Flask], github: GitHubStub) -> None:
    app = make_app(CATALOG_REPO=REPO, CATALOG_REPO_URL="http://127.0.0.1:9/acme/catalog.git", GITHUB_TOKEN=GIT_TOKEN)
    with app.app_context():
        job = open_pr(app, {"entry": NEW, "validate": False})
        assert job.status == "failed" and job.stage == "fetch" and "CATALOG_REPO_URL" in (job.error or "")


@pytest.mark.parametrize("bad_id", ["../x", "a/b", "", "UPPER"])
def test_unsafe_ids_are_refused(pr_app: Flask, bad_id: str) -> None:
    response = pr_app.test_client().post("/catalog/pr", json={"entry": {**NEW, "id": bad_id}})
    assert response.status_code == 400 and response.json["code"] == "invalid_catalog_id"
    response = pr_app.test_client().post("/catalog/pr", json={"model": bad_id})
    assert response.status_code == 400
    assert db.session.query(Job).count() == 0


def test_invalid_branch_and_both_or_neither_source(pr_app: Flask) -> None:
    client = pr_app.test_client()
    assert client.post("/catalog/pr", json={"model": 42}).status_code == 400
    assert client.post("/catalog/pr", json={"entry": NEW, "branch": "a..b"}).json["code"] == "invalid_branch"
    assert client.post("/catalog/pr", json={}).status_code == 400
    assert client.post("/catalog/pr", json={"entry": NEW, "model": "x"}).status_code == 400
    assert client.post("/catalog/pr", json={"model": "missing-model"}).status_code == 404


def test_disabled_without_catalog_repo(make_app: Callable[..., Flask]) -> None:
    response = make_app().test_client().post("/catalog/pr", json={"entry": NEW})
    assert response.status_code == 501 and "CATALOG_REPO" in response.json["error"]


def test_merge_detected_then_pending_row_closes_when_the_catalog_serves_it(pr_app: Flask, github: GitHubStub) -> None:
    assert open_pr(pr_app, {"entry": NEW, "validate": False}).status == "completed"
    assert open_pr(pr_app, {"entry": {**NEW, "id": "other-model"}, "validate": False}).status == "completed"
    github.merge(1)
    github.close(2)
    assert catalog_pr.poll_open() == {"checked": 2, "merged": 1, "closed": 1}
    assert catalog_pr.poll_open()["checked"] == 0  # nothing open any more: nothing recorded twice
    rows = {r.model_id: r for r in db.session.query(CatalogPullRequest)}
    assert rows["new-model"].state == "merged" and rows["new-model"].pending
    assert rows["other-model"].state == "closed" and not rows["other-model"].pending
    client = pr_app.test_client()
    assert [p["modelId"] for p in client.get("/catalog/prs?pending=true").json["pullRequests"]] == ["new-model"]
    events = [(e["event"], e["modelId"]) for e in client.get("/history").json["events"]]
    assert events.count(("catalog_pr_merged", "new-model")) == 1
    assert events.count(("catalog_pr_closed", "other-model")) == 1

    # git-sync brings the merged file: the pending row closes by itself.
    models = pr_app.config["SETTINGS"].catalog_models_dir
    (models / "new-model.json").write_text(entry_file_text(NEW))
    get_catalog().refresh()
    assert client.get("/catalog/prs?pending=true").json["pullRequests"] == []
    assert db.session.get(CatalogPullRequest, rows["new-model"].id).synced_at is not None


def test_local_write_and_refusal_on_a_git_sync_checkout(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app()
    client = app.test_client()
    created = client.post("/catalog/entries", json={"entry": NEW})
    assert created.status_code == 201 and created.json["file"] == "new-model.json"
    assert client.get("/models/new-model").status_code == 200
    assert client.post("/catalog/entries", json={"entry": NEW}).status_code == 409

    # git-sync layout: the root is a symlink to a worktree whose .git is a file.
    worktree = tmp_path / "git" / ".worktrees" / "abc123"
    (worktree / "models").mkdir(parents=True)
    (worktree / ".git").write_text("gitdir: ../../.git/worktrees/abc123\n")
    link = tmp_path / "git" / "catalog"
    os.symlink(worktree, link)
    synced = make_app(MODEL_CATALOG_ROOT=str(link)).test_client()
    refused = synced.post("/catalog/entries", json={"entry": NEW})
    assert refused.status_code == 409 and refused.json["code"] == "catalog_is_git_synced"
    assert "POST /catalog/pr" in refused.json["error"]
    assert not (worktree / "models" / "new-model.json").exists()


def test_two_workers_at_once_never_share_the_work_repository(
    pr_app: Flask, git_server: GitServer, github: GitHubStub, worker_process: Any
) -> None:
    client = pr_app.test_client()
    ids = []
    for n in range(4):
        response = client.post("/catalog/pr", json={"entry": {**NEW, "id": f"model-{n}"}, "validate": False})
        assert response.status_code == 202
        ids.append(response.json["job"]["id"])
    first, second = worker_process(), worker_process()
    first.wait(), second.wait()
    db.session.rollback()
    jobs = [db.session.get(Job, job_id) for job_id in ids]
    assert [(j.status, j.error) for j in jobs if j is not None] == [("completed", None)] * 4
    assert sorted(p["head"]["ref"] for p in github.pulls.values()) == [f"model/model-{n}" for n in range(4)]
    for n in range(4):
        text = git_server.show(REPO, f"refs/heads/model/model-{n}", f"models/model-{n}.json")
        assert text == entry_file_text({**NEW, "id": f"model-{n}"}).encode()


def test_poll_survives_github_being_down(pr_app: Flask, github: GitHubStub) -> None:
    assert open_pr(pr_app, {"entry": NEW, "validate": False}).status == "completed"
    github.set_down(True)
    assert catalog_pr.poll_open()["merged"] == 0
    github.set_down(False)
    github.merge(1)
    assert catalog_pr.poll_open()["merged"] == 1


def test_opened_and_merged_are_notified(
    make_app: Callable[..., Flask], git_server: GitServer, github: GitHubStub, webhook: WebhookReceiver
) -> None:
    url = git_server.create_repo(REPO, {"models/existing-model.json": entry_file_text(EXISTING)})
    app = make_app(
        CATALOG_REPO=REPO,
        CATALOG_REPO_URL=url,
        GITHUB_TOKEN=GIT_TOKEN,
        GITHUB_API_URL=github.url,
        NOTIFY_WEBHOOK_URLS=f"{webhook.url}/hook",
    )
    with app.app_context():
        assert open_pr(app, {"entry": NEW, "validate": False}).status == "completed"
        github.merge(1)
        catalog_pr.poll_open()
        run_jobs(app)
    assert webhook.events() == ["catalog_pr_opened", "catalog_pr_merged"]
    html_url = f"https://github.example/{REPO}/pull/1"
    assert all(html_url in d.json["text"] and "new-model" in d.json["text"] for d in webhook.received)
