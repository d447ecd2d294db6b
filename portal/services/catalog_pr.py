"""Catalog pull requests: commit an entry on a branch of the catalog repository and open a GitHub PR.

The live catalog (`MODEL_CATALOG_ROOT`, a git-sync checkout in production) is never written. The
job works in a private bare repository under `<STATE_PATH>/catalog-work` and builds the commit with
git plumbing and a temporary index of its own (no work tree at all), so a failed job leaves nothing
behind and a file lock serialises jobs that share the repository. The remote is `CATALOG_REPO_URL`
(default `https://github.com/<CATALOG_REPO>.git`) passed on every command, and the token travels as an
`http.extraHeader` set through `GIT_CONFIG_*` environment variables of that one git process: nothing
is written to `.git/config`, argv, a log line or an answer. The PR is opened through the GitHub REST
API (`POST /repos/{repo}/pulls`, `GITHUB_API_URL`, `GITHUB_TOKEN`); a 422 "already exists" returns the
open PR of that branch. Each PR opened is stored (`catalog_pull_requests`); a periodic job polls the
open ones for merged/closed, and a merged change stops being "pending" once the synced catalog
serves exactly its content.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import fcntl
import hashlib
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from portal.config import Settings
from portal.errors import Conflict, InvalidInput, NotConfigured
from portal.extensions import current_settings, db
from portal.models import CatalogPullRequest, Job
from portal.schemas.catalog import MAX_ID_LENGTH, SAFE_ID_RE
from portal.services import history, notify
from portal.services import jobs as job_service
from portal.services.catalog import create_entry, entry_file_text, get_catalog
from portal.services.catalog_entry import load_entry

log = logging.getLogger(__name__)

JOB_TYPE = "catalog_pr"
WORK_DIR = "catalog-work"
# Commits this app makes carry this trailer: `force` may replace only branches whose tip has it.
TRAILER = "Model-Manager-Change: catalog-pr"
LOCK_WAIT = 300.0
GIT_TIMEOUT = 120.0
API_TIMEOUT = 15.0


class StepError(Exception):
    """A step of the PR job failed: which one, what happened and what to do."""

    def __init__(self, step: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.step, self.message, self.hint = step, message, hint

    def __str__(self) -> str:
        return f"{self.step} failed: {self.message}" + (f". {self.hint}" if self.hint else "")


# --- request (web process) --------------------------------------------------------------------------


def check_id(value: Any) -> str:
    """A catalog id that is safe as a file and branch name, or InvalidInput."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("the entry needs an id", code="invalid_catalog_id", details={"id": value})
    if len(value) > MAX_ID_LENGTH or not SAFE_ID_RE.fullmatch(value):
        raise InvalidInput(
            f"unsafe catalog id {value!r}: use lowercase letters, digits, '.', '_' and '-' (no '/' or '..')",
            code="invalid_catalog_id",
            details={"id": value},
        )
    return value


def _check_ref(value: str, what: str) -> str:
    ok = subprocess.run(["git", "check-ref-format", f"refs/heads/{value}"], capture_output=True, check=False)
    if ok.returncode != 0 or value.startswith("-"):
        raise InvalidInput(
            f"{what} {value!r} is not a valid git branch name", code="invalid_branch", details={what: value}
        )
    return value


def enabled(settings: Settings) -> bool:
    """True when pull requests can be opened (CATALOG_REPO and GITHUB_TOKEN set)."""
    return bool(settings.catalog_repo and settings.github_token)


def request_pull_request(body: Mapping[str, Any], *, actor: str) -> Job:
    """Check the request, validate the entry and queue the PR job (501 without CATALOG_REPO)."""
    settings = current_settings()
    if not settings.catalog_repo:
        raise NotConfigured(
            "catalog pull requests are disabled: set CATALOG_REPO (owner/repo) to enable them",
            code="catalog_pr_disabled",
        )
    if not settings.github_token:
        raise NotConfigured(
            "catalog pull requests need GITHUB_TOKEN (a token that can push branches and open PRs)",
            code="catalog_pr_disabled",
        )
    raw, model = body.get("entry"), body.get("model")
    if isinstance(model, Mapping) and raw is None:
        raw, model = model, None  # the original service's shape: "model" was the full entry
    if model is not None and not isinstance(model, str):
        raise InvalidInput('"model" must be the id of a catalog entry', details={"model": ["Not a valid id."]})
    if (raw is None) == (model is None):
        raise InvalidInput('send either "entry" (a full catalog entry) or "model" (an id in the catalog)')
    if model is not None:
        entry = dict(get_catalog().get_entry(check_id(model)))
    else:
        if not isinstance(raw, Mapping):
            raise InvalidInput('"entry" must be a JSON object')
        check_id(raw.get("id"))
        entry = dict(load_entry(dict(raw)))
    entry_id = entry["id"]
    branch = _check_ref(body.get("branch") or f"model/{entry_id}", "branch")
    base = body.get("base") or settings.catalog_base_branch
    if base:
        _check_ref(base, "base")
    validation = None
    if body.get("validate", True):
        from portal.services.validation import validate_entry

        validation = validate_entry(entry)
        if not validation["valid"]:
            raise InvalidInput(
                'the entry failed validation: fix the failing checks, or send "validate": false to open the PR anyway',
                code="validation_failed",
                details={"validation": validation},
            )
    payload = {
        "entry": entry,
        "branch": branch,
        "base": base or None,
        "title": body.get("title") or None,
        "body": body.get("body") or None,
        "draft": bool(body.get("draft", False)),
        "force": bool(body.get("force", False)),
        "validation": validation,
    }
    return job_service.create_job(
        JOB_TYPE,
        actor=actor,
        payload=payload,
        target=branch,
        model_id=entry_id,
        message=f"Queued: pull request for {entry_id}",
        timeout=LOCK_WAIT + 4 * GIT_TIMEOUT,
    )


# --- git --------------------------------------------------------------------------------------------


class _Git:
    """git in the private bare repository; the token only ever lives in one process's environment."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.state_path / WORK_DIR
        self.repo = self.root / "repo.git"
        self.url = settings.catalog_clone_url
        self.secrets = [s for s in (settings.github_token, self._header_value()) if s]

    def _header_value(self) -> str:
        if not self.settings.github_token:
            return ""
        return base64.b64encode(f"x-access-token:{self.settings.github_token}".encode()).decode()

    def _env(self, *, network: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),  # no user config of the host leaks in
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "true",
            "LC_ALL": "C",
        }
        if network and self.settings.github_token:
            env["GIT_CONFIG_COUNT"] = "1"
            env["GIT_CONFIG_KEY_0"] = "http.extraHeader"
            env["GIT_CONFIG_VALUE_0"] = f"Authorization: Basic {self._header_value()}"
        env.update(extra or {})
        return env

    def scrub(self, text: str) -> str:
        """Output with any secret (and the remote URL, which may hold credentials) removed."""
        for secret in [*self.secrets, self.url]:
            text = text.replace(secret, "***")
        return text.strip()

    def run(
        self,
        *args: str,
        step: str,
        network: bool = False,
        stdin: str | None = None,
        extra: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(
                ["git", "--git-dir", str(self.repo), *args],
                input=stdin,
                capture_output=True,
                text=True,
                env=self._env(network=network, extra=extra),
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise StepError(step, f"git {args[0]} took longer than {GIT_TIMEOUT:.0f} s", "retry the job") from None
        if check and proc.returncode != 0:
            raise StepError(step, f"git {args[0]}: {self.scrub(proc.stderr)[-800:] or 'failed'}", _hint(step))
        return proc

    def ensure_repo(self) -> None:
        if not (self.repo / "HEAD").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "init", "--bare", "--quiet", str(self.repo)], env=self._env(network=False), check=True
            )

    def default_branch(self) -> str:
        out = self.run("ls-remote", "--symref", self.url, "HEAD", step="fetch", network=True).stdout
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line[len("ref: refs/heads/") : -len("\tHEAD")]
        raise StepError("fetch", "the repository has no default branch", 'send "base" or set CATALOG_BASE_BRANCH')

    def fetch(self, branch: str) -> str | None:
        """Fetch one branch into refs/remotes/origin/<branch>; its sha, or None when it does not exist."""
        listed = self.run("ls-remote", self.url, f"refs/heads/{branch}", step="fetch", network=True).stdout.split()
        if not listed:
            return None
        ref = f"refs/remotes/origin/{branch}"
        self.run("fetch", "--quiet", "--no-tags", self.url, f"+refs/heads/{branch}:{ref}", step="fetch", network=True)
        return self.run("rev-parse", ref, step="fetch").stdout.strip()

    def show(self, commit: str, path: str) -> str | None:
        proc = self.run("show", f"{commit}:{path}", step="fetch", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def made_by_app(self, commit: str) -> bool:
        return TRAILER in self.run("log", "-1", "--format=%B", commit, step="push").stdout

    def commit(self, parent: str, path: str, text: str, message: str) -> str:
        name = self.settings.git_author_name or "Model Manager"
        email = self.settings.git_author_email or "model-manager@localhost"
        with tempfile.TemporaryDirectory(dir=self.root, prefix="index-") as tmp:
            env = {
                "GIT_INDEX_FILE": str(Path(tmp) / "index"),
                "GIT_AUTHOR_NAME": name,
                "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name,
                "GIT_COMMITTER_EMAIL": email,
            }
            self.run("read-tree", parent, step="commit", extra=env)
            blob = self.run("hash-object", "-w", "--stdin", step="commit", stdin=text, extra=env).stdout.strip()
            self.run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", step="commit", extra=env)
            tree = self.run("write-tree", step="commit", extra=env).stdout.strip()
            return self.run(
                "commit-tree", tree, "-p", parent, "-F", "-", step="commit", stdin=message, extra=env
            ).stdout.strip()

    def push(self, commit: str, branch: str, *, replace: str | None) -> None:
        args = ["push", "--porcelain", self.url, f"{commit}:refs/heads/{branch}"]
        if replace:
            args.insert(1, f"--force-with-lease=refs/heads/{branch}:{replace}")
        proc = self.run(*args, step="push", network=True, check=False)
        if proc.returncode == 0:
            return
        output = self.scrub(proc.stdout + "\n" + proc.stderr)
        if "[rejected]" in output or "[remote rejected]" in output or "stale info" in output:
            raise StepError(
                "push",
                f'the repository rejected the push of branch "{branch}": {output[-500:]}',
                'choose another "branch" name, or send "force": true to replace a branch this portal created',
            )
        raise StepError("push", output[-800:] or "git push failed", _hint("push"))


def _hint(step: str) -> str:
    return {
        "fetch": "check CATALOG_REPO_URL (or CATALOG_REPO), the network, and that GITHUB_TOKEN can read the repository",
        "push": "check that GITHUB_TOKEN may push branches to the repository",
        "commit": "retry the job; if it fails again, delete <STATE_PATH>/catalog-work to start from a fresh clone",
    }.get(step, "retry the job")


@contextlib.contextmanager
def _work_lock(root: Path) -> Iterator[None]:
    """One PR job at a time in the shared work repository (also across processes on this volume)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as handle:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StepError(
                        "fetch", "another pull request job kept the work clone busy", "retry the job"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --- GitHub ----------------------------------------------------------------------------------------


def _api(settings: Settings, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {
        "Accept": "application/vnd.github+json",
        "Authorization": f"Bearer {settings.github_token}",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    try:
        return requests.request(method, settings.github_api_url + path, headers=headers, timeout=API_TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise StepError(
            "pull_request",
            f"the GitHub API at {settings.github_api_url} did not answer ({type(exc).__name__})",
            "check GITHUB_API_URL and retry the job",
        ) from None


def _message(response: requests.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if not isinstance(data, dict):
        return ""
    errors = "; ".join(str(e.get("message") or e) for e in data.get("errors") or [] if isinstance(e, dict))
    return str(data.get("message") or "") + (f" ({errors})" if errors else "")


def _open_on_github(
    settings: Settings, *, title: str, branch: str, base: str, body: str, draft: bool
) -> tuple[dict[str, Any], bool]:
    """Create the PR; on 422 return the open PR of the branch. (pr, existed)."""
    repo = settings.catalog_repo
    response = _api(
        settings,
        "POST",
        f"/repos/{repo}/pulls",
        json={"title": title, "head": branch, "base": base, "body": body, "draft": draft},
    )
    if response.status_code == 201:
        return response.json(), False
    message = _message(response)
    if response.status_code == 422:
        owner = repo.split("/", 1)[0]
        found = _api(settings, "GET", f"/repos/{repo}/pulls", params={"head": f"{owner}:{branch}", "state": "open"})
        if found.status_code == 200 and isinstance(found.json(), list) and found.json():
            return found.json()[0], True
        raise StepError("pull_request", f"GitHub refused the pull request (422): {message}", "check the base branch")
    if response.status_code in (401, 403):
        raise StepError(
            "pull_request",
            f"GitHub refused the token ({response.status_code}): {message}",
            f"set a GITHUB_TOKEN that may open pull requests on {repo}",
        )
    if response.status_code == 404:
        raise StepError(
            "pull_request",
            f"repository {repo} not found (404)",
            "check CATALOG_REPO and that GITHUB_TOKEN can see the repository",
        )
    raise StepError("pull_request", f"GitHub answered {response.status_code}: {message}", "retry the job later")


def _pr_summary(pr: Mapping[str, Any]) -> dict[str, Any]:
    return {"number": pr.get("number"), "url": pr.get("url"), "htmlUrl": pr.get("html_url"), "state": pr.get("state")}


# --- the evidence ----------------------------------------------------------------------------------


def _installed_revision(entry: Mapping[str, Any], settings: Settings) -> str | None:
    from portal.services import weights

    uri = str(entry.get("storageUri") or "")
    prefix = f"pvc://{settings.weights_pvc_name}/"
    if not uri.startswith(prefix):
        return None
    try:
        marker = weights.read_marker(weights.resolve_inside(weights.safe_relative(uri[len(prefix) :])))
    except Exception:  # no install, or an unsafe path: simply no evidence to show
        return None
    if not marker or not marker.get("revision"):
        return None
    return f"`{marker.get('modelId')}` at revision `{marker['revision']}` (installed {marker.get('installedAt', '?')})"


def build_body(
    entry: Mapping[str, Any],
    *,
    text: str,
    path: str,
    current: str | None,
    validation: Mapping[str, Any],
    note: str | None,
    actor: str,
) -> str:
    """The PR description: the entry, every check, the fit, the manifest, the weights and the diff."""
    from portal.services.manifests import manifest_to_yaml, render_inference_service

    settings = current_settings()
    lines = [note.strip(), ""] if note else []
    kind = "Update of" if current is not None else "New"
    lines += [f"{kind} catalog entry `{entry['id']}` (`{path}`), requested by {actor} in Model Manager.", ""]
    if current is not None:
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), f"a/{path}", f"b/{path}", lineterm="")
        lines += ["## Changes", "", "```diff", *diff, "```", ""]
    checks = list(validation.get("checks") or [])
    verdict = "passed" if validation.get("valid") else "FAILED"
    lines += [f"## Validation: {verdict}", "", "| Check | Status | Message |", "|---|---|---|"]
    for check in checks:
        message = str(check.get("message") or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {check.get('name')} | {check.get('status')} | {message} |")
    lines += [f"- {error}" for error in validation.get("errors") or []]
    fit = next((c for c in checks if c.get("name") == "fit"), None)
    lines += ["", "## Fit", ""]
    if fit is not None:
        gpu = (fit.get("metadata") or {}).get("gpu") or "the targeted GPU"
        lines.append(f"On {gpu}: **{fit.get('status')}**: {fit.get('message')}")
    else:
        lines.append("Not estimated.")
    revision = _installed_revision(entry, settings)
    lines += [
        "",
        "## Weights",
        "",
        f"Installed on the weights volume: {revision}." if revision else "Not installed on the weights volume.",
    ]
    try:
        manifest_yaml = manifest_to_yaml(render_inference_service(entry, settings))
    except Exception as exc:  # the evidence says why instead of failing the PR
        manifest_yaml = f"# could not render: {type(exc).__name__}: {exc}"
    lines += [
        "",
        "## InferenceService",
        "",
        "```yaml",
        manifest_yaml.rstrip(),
        "```",
        "",
        "## Entry",
        "",
        "```json",
        text.rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)


# --- the job ---------------------------------------------------------------------------------------


def run_pull_request(job_id: str) -> None:
    """The RQ job body: fetch, commit, push, open the PR, record it. Failures name the step."""
    job = db.session.get(Job, job_id)
    if job is None or job.status != "pending":
        return
    job_service.start(job, message="Fetching the catalog repository")
    try:
        result = _run(job)
    except StepError as exc:
        db.session.rollback()
        job_service.fail(job, str(exc), stage=exc.step)
        history.record(
            "catalog_pr_failed",
            actor=job.actor,
            model_id=job.model_id,
            metadata={"jobId": job.id, "step": exc.step, "error": str(exc)},
        )
        return
    except Exception as exc:
        log.exception("catalog PR job %s failed", job_id)
        db.session.rollback()
        job_service.fail(job, f"unexpected error: {type(exc).__name__}")
        return
    pr = result["pullRequest"]
    job_service.complete(
        job, result=result, message=f"Pull request #{pr['number']} {'found' if result['existing'] else 'opened'}"
    )


def _stage(job: Job, stage: str, message: str) -> None:
    job.stage, job.message = stage, message
    db.session.commit()


def _run(job: Job) -> dict[str, Any]:
    settings = current_settings()
    payload = dict(job.payload or {})
    entry = dict(payload["entry"])
    entry_id, branch = entry["id"], str(payload["branch"])
    text = entry_file_text(entry)
    path = f"{settings.model_catalog_models_subdir}/{entry_id}.json"
    git = _Git(settings)
    validation = payload.get("validation")
    if validation is None:
        from portal.services.validation import validate_entry

        validation = validate_entry(entry)
    with _work_lock(git.root):
        _stage(job, "fetch", "Fetching the catalog repository")
        git.ensure_repo()
        base = str(payload.get("base") or git.default_branch())
        base_sha = git.fetch(base)
        if base_sha is None:
            raise StepError(
                "fetch", f'base branch "{base}" does not exist in {settings.catalog_repo}', 'send another "base"'
            )
        current = git.show(base_sha, path)
        title = (
            payload.get("title")
            or f"{'Update' if current is not None else 'Add'} model {entry.get('displayName') or entry_id}"
        )
        if current == text:
            raise StepError("commit", f"{path} on {base} already has exactly this content", "nothing to propose")
        existing_sha = git.fetch(branch)
        replace = None
        commit = None
        if existing_sha is not None:
            if git.show(existing_sha, path) == text:
                commit = existing_sha  # the branch already proposes exactly this entry: reuse it
            elif not payload.get("force"):
                raise StepError(
                    "push",
                    f'branch "{branch}" already exists in {settings.catalog_repo} with other content',
                    'choose another "branch" name, or send "force": true to replace it (only for branches this portal created)',
                )
            elif not git.made_by_app(existing_sha):
                raise StepError(
                    "push",
                    f'branch "{branch}" was not created by Model Manager; it is never force-pushed',
                    'choose another "branch" name',
                )
            else:
                replace = existing_sha
        if commit is None:
            _stage(job, "commit", f"Committing {path}")
            message = f"{title}\n\nRequested by {job.actor} through Model Manager (job {job.id}).\n\n{TRAILER}\n"
            commit = git.commit(base_sha, path, text, message)
            _stage(job, "push", f"Pushing branch {branch}")
            git.push(commit, branch, replace=replace)
    _stage(job, "pull_request", "Opening the pull request")
    body = build_body(
        entry, text=text, path=path, current=current, validation=validation, note=payload.get("body"), actor=job.actor
    )
    pr, existed = _open_on_github(
        settings, title=title, branch=branch, base=base, body=body, draft=bool(payload.get("draft"))
    )
    summary = _pr_summary(pr)
    _remember(
        job, summary, entry_id=entry_id, branch=branch, base=base, path=path, text=text, title=title, existed=existed
    )
    return {"branch": branch, "base": base, "file": path, "commit": commit, "pullRequest": summary, "existing": existed}


def _remember(
    job: Job,
    pr: dict[str, Any],
    *,
    entry_id: str,
    branch: str,
    base: str,
    path: str,
    text: str,
    title: str,
    existed: bool,
) -> None:
    settings = current_settings()
    row = db.session.scalars(
        select(CatalogPullRequest).where(
            CatalogPullRequest.repo == settings.catalog_repo, CatalogPullRequest.number == int(pr["number"])
        )
    ).first()
    if row is None:
        row = CatalogPullRequest(repo=settings.catalog_repo, number=int(pr["number"]), actor=job.actor)
        db.session.add(row)
    row.model_id, row.url, row.html_url = entry_id, str(pr["url"] or ""), str(pr["htmlUrl"] or "")
    row.branch, row.base, row.file, row.title, row.job_id = branch, base, path, title, job.id
    row.content_sha256 = hashlib.sha256(text.encode()).hexdigest()
    row.state, row.merged_at, row.closed_at, row.synced_at = "open", None, None, None
    history.record(
        "catalog_pr_opened",
        actor=job.actor,
        model_id=entry_id,
        metadata={"number": pr["number"], "url": pr["htmlUrl"], "branch": branch, "existing": existed},
        commit=False,
    )
    db.session.commit()
    notify.emit(
        "catalog_pr_opened",
        f"{job.actor} opened catalog pull request #{pr['number']} for {entry_id}: {pr['htmlUrl']}",
        {"modelId": entry_id, "number": pr["number"], "url": pr["htmlUrl"]},
    )


# --- pending changes -------------------------------------------------------------------------------


def poll_open() -> dict[str, int]:
    """Ask GitHub about every open PR; record merged/closed. Then close merged rows the catalog serves."""
    settings = current_settings()
    counts = {"checked": 0, "merged": 0, "closed": 0}
    if not enabled(settings):
        return counts
    rows = db.session.scalars(select(CatalogPullRequest).where(CatalogPullRequest.state == "open")).all()
    for row in rows:
        try:
            response = _api(settings, "GET", f"/repos/{row.repo}/pulls/{row.number}")
        except StepError as exc:
            log.warning("catalog PR poll stopped: %s", exc)  # the next poll tries again
            break
        counts["checked"] += 1
        if response.status_code != 200:
            log.warning("catalog PR #%s: GitHub answered %s", row.number, response.status_code)
            continue
        data = response.json()
        now = datetime.now(UTC)
        if data.get("merged") or data.get("merged_at"):
            row.state, row.merged_at = "merged", now
            event = "catalog_pr_merged"
        elif data.get("state") == "closed":
            row.state, row.closed_at = "closed", now
            event = "catalog_pr_closed"
        else:
            continue
        counts[row.state] += 1
        history.record(
            event,
            actor="system",
            model_id=row.model_id,
            metadata={"number": row.number, "url": row.html_url},
            commit=False,
        )
        db.session.commit()
        if event == "catalog_pr_merged":
            notify.emit(
                "catalog_pr_merged",
                f"Catalog pull request #{row.number} for {row.model_id} was merged: {row.html_url}",
                {"modelId": row.model_id, "number": row.number, "url": row.html_url},
            )
    reconcile_synced()
    return counts


def reconcile_synced() -> int:
    """Merged rows whose exact content the synced catalog now serves stop being pending."""
    rows = db.session.scalars(
        select(CatalogPullRequest).where(CatalogPullRequest.state == "merged", CatalogPullRequest.synced_at.is_(None))
    ).all()
    if not rows:
        return 0
    entries = get_catalog().snapshot().entries
    done = 0
    for row in rows:
        entry = entries.get(row.model_id)
        if entry is not None and hashlib.sha256(entry_file_text(entry).encode()).hexdigest() == row.content_sha256:
            row.synced_at = datetime.now(UTC)
            done += 1
    if done:
        db.session.commit()
    return done


def list_pull_requests(*, pending_only: bool = False, limit: int = 100) -> list[CatalogPullRequest]:
    """Newest first; `pending_only`: open, or merged and not yet in the synced catalog."""
    reconcile_synced()
    stmt = select(CatalogPullRequest).order_by(CatalogPullRequest.created_at.desc(), CatalogPullRequest.id.desc())
    rows = list(db.session.scalars(stmt.limit(max(1, min(limit, 500)))))
    return [row for row in rows if row.pending] if pending_only else rows


# --- direct local writes ---------------------------------------------------------------------------


def git_sync_reason(settings: Settings) -> str | None:
    """Why the catalog root is a git-sync checkout (symlinked worktree or `.git` file), else None."""
    root = settings.model_catalog_root
    for path in (root, settings.catalog_models_dir):
        if path.is_symlink():
            return f"{path.name or path} is a symlink (git-sync publishes each revision as a new worktree)"
    if (root / ".git").is_file():
        return "its .git is a file (a git worktree, as git-sync creates)"
    if ".worktrees" in Path(os.path.realpath(root)).parts:
        return "it lives in a git-sync worktree"
    return None


def save_local_entry(entry: Mapping[str, Any], *, actor: str) -> Path:
    """Write a new entry straight into a catalog that is not git-synced (409 when it is)."""
    settings = current_settings()
    check_id(entry.get("id"))
    reason = git_sync_reason(settings)
    if reason is not None:
        raise Conflict(
            f"the catalog root is a git-sync checkout ({reason}): a file written there disappears at the next "
            "sync and nobody reviews it; open a pull request instead (POST /catalog/pr)",
            code="catalog_is_git_synced",
            details={"reason": reason},
        )
    return create_entry(entry, actor=actor)
