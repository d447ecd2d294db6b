"""An install request: validate, resolve files and hashes on the Hub, check room, queue the job."""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from huggingface_hub import get_session, hf_hub_url
from huggingface_hub.utils import build_hf_headers, hf_raise_for_status  # type: ignore[attr-defined]
from sqlalchemy import select

from portal.errors import (
    Conflict,
    InsufficientStorage,
    InvalidInput,
    UpstreamError,
)
from portal.extensions import current_settings, db
from portal.models import Job
from portal.services import jobs as job_service
from portal.services.huggingface import HTTP_TIMEOUT, HubClient, current_hub
from portal.services.weights.listing import free_bytes
from portal.services.weights.paths import canonical_target, human_size, inference_path, resolve_inside, storage_uri

log = logging.getLogger(__name__)

JOB_TYPE = "weight_install"
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")
MAX_PATTERNS = 200
HASH_PROBE_THREADS = 8  # HEAD requests that read a file's hash from the resolve headers


def _validate_patterns(files: Any) -> list[str]:
    if files is None:
        return []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise InvalidInput("files must be a list of names or glob patterns", code="invalid_files")
    patterns = sorted({f.strip().strip("/") for f in files if f and f.strip().strip("/")})
    if len(patterns) > MAX_PATTERNS:
        raise InvalidInput(f"at most {MAX_PATTERNS} file patterns", code="invalid_files")
    for pattern in patterns:
        if ".." in pattern.split("/") or pattern.startswith("/") or "\x00" in pattern:
            raise InvalidInput(f"invalid file pattern {pattern!r}", code="invalid_files", details={"pattern": pattern})
    return patterns


def _selected(name: str, patterns: list[str]) -> bool:
    return not patterns or any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


def iter_install_jobs(limit: int = 10) -> Iterator[Job]:
    """Recent install jobs, newest first (for the Weights page)."""
    rows, _ = job_service.list_jobs(limit=limit, job_type=JOB_TYPE)
    yield from rows


def active_install_for(target: str) -> Job | None:
    """A pending or running install of the same target, if any."""
    return db.session.scalars(
        select(Job)
        .where(Job.type == JOB_TYPE, Job.target == target, Job.status.in_(("pending", "running")))
        .order_by(Job.created_at.desc())
        .limit(1)
    ).first()


_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_GIT_OID_HEX = re.compile(r"[0-9a-f]{40}")


def resolve_files(repo_id: str, revision: str | None, patterns: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """Resolve a revision to its commit sha and the selected files with sizes and expected hashes.

    Each file's hash comes from the first place the Hub offers it: the model info's LFS record
    (`files_metadata`), then the tree API's `lfs.oid`, then the resolve headers (`X-Linked-Etag` is an LFS
    file's sha256; the `ETag` of a file served directly is its git blob id). Neither: `sha256` and
    `gitOid` stay None and the file is installed unverified (or refused under WEIGHTS_REQUIRE_SHA256).
    """
    hub = current_hub()
    details = {"hfModelId": repo_id, "revision": revision}
    info = hub.call(
        lambda: hub.api.model_info(repo_id, revision=revision or None, files_metadata=True, timeout=HTTP_TIMEOUT),
        repo_id,
        details,
    )
    sha = info.sha
    if not sha:
        raise UpstreamError("Hugging Face did not return a commit sha", code="hub_error")
    manifest: list[dict[str, Any]] = []
    for sibling in info.siblings or []:
        name = sibling.rfilename
        if not name or name.endswith("/") or not _selected(name, patterns):
            continue
        lfs = sibling.lfs
        digest = lfs.sha256 if lfs is not None and _SHA256_HEX.fullmatch(str(lfs.sha256 or "")) else None
        size = sibling.size if sibling.size is not None else (lfs.size if lfs else 0)
        manifest.append({"name": name, "size": int(size), "sha256": digest, "gitOid": None})
    manifest.sort(key=lambda f: f["name"])
    if not manifest:
        raise InvalidInput(
            "no downloadable files found for model" + (f" matching {patterns}" if patterns else ""),
            code="no_files",
            details={"hfModelId": repo_id, "files": patterns},
        )
    if any(not f["sha256"] for f in manifest):
        _hashes_from_tree(hub, repo_id, sha, manifest)
    # The model API shows gated repos to anyone: a HEAD on a file tells whether we may download it, and
    # its headers carry the hashes the other sources lacked.
    missing = [f for f in manifest if not f["sha256"]]
    probes = missing or [min(manifest, key=lambda f: f["size"])]
    hub.call(lambda: _hashes_from_resolve(hub, repo_id, sha, probes), repo_id, details)
    return sha, manifest


def unverified_files(manifest: list[dict[str, Any]]) -> list[str]:
    """Names of the files the Hub gave no hash for (neither sha256 nor git blob id)."""
    return [f["name"] for f in manifest if not (f.get("sha256") or f.get("gitOid"))]


def _hashes_from_tree(hub: HubClient, repo_id: str, sha: str, manifest: list[dict[str, Any]]) -> None:
    """Fill missing sha256 from the tree API's `lfs.oid` (a mirror may leave `lfs` out of model info)."""
    wanted = {f["name"]: f for f in manifest if not f["sha256"]}
    try:
        for entry in hub.api.list_repo_tree(repo_id, revision=sha, recursive=True):
            spec = wanted.get(getattr(entry, "path", ""))
            lfs = getattr(entry, "lfs", None)
            if spec is not None and lfs is not None and _SHA256_HEX.fullmatch(str(lfs.sha256 or "")):
                spec["sha256"] = lfs.sha256
    except Exception as exc:  # a second source only: the resolve headers are still asked
        log.info("tree listing of %s@%s gave no hashes: %s", repo_id, sha, type(exc).__name__)


def _hashes_from_resolve(hub: HubClient, repo_id: str, sha: str, files: list[dict[str, Any]]) -> None:
    """HEAD each file's resolve URL (no redirect followed): access check plus `X-Linked-Etag` / `ETag`."""
    headers = build_hf_headers(token=hub.token, library_name="model-manager")
    headers["Accept-Encoding"] = "identity"

    def probe(spec: dict[str, Any]) -> None:
        url = hf_hub_url(repo_id, spec["name"], revision=sha, endpoint=hub.endpoint)
        response = get_session().head(url, headers=headers, follow_redirects=False, timeout=HTTP_TIMEOUT)
        hf_raise_for_status(response)
        linked = _etag(response.headers.get("X-Linked-Etag"))
        etag = _etag(response.headers.get("ETag"))
        if linked and _SHA256_HEX.fullmatch(linked):
            spec["sha256"] = linked
        elif response.status_code == 200 and etag and _SHA256_HEX.fullmatch(etag):
            spec["sha256"] = etag  # an LFS file served directly under its sha256
        elif response.status_code == 200 and etag and _GIT_OID_HEX.fullmatch(etag) and not spec["sha256"]:
            spec["gitOid"] = etag  # served directly (not redirected to LFS storage): the content's git blob id

    with ThreadPoolExecutor(max_workers=min(HASH_PROBE_THREADS, len(files)), thread_name_prefix="hf-head") as pool:
        list(pool.map(probe, files))


def _etag(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip()
    text = text.removeprefix("W/")
    return text.strip('"').lower() or None


def request_install(
    *,
    hf_model_id: str,
    actor: str,
    revision: str | None = None,
    target: str | None = None,
    files: Any = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Validate, resolve on the Hub, check room, then create + enqueue the install job (202 body)."""
    repo_id = (hf_model_id or "").strip()
    if not REPO_ID_RE.fullmatch(repo_id):
        raise InvalidInput(
            f"invalid Hugging Face model id: {hf_model_id!r} (expected org/name)",
            code="invalid_model_id",
            details={"hfModelId": ["expected org/name, letters, digits, . _ -"]},
        )
    if revision is not None and revision.strip() and not REVISION_RE.fullmatch(revision.strip()):
        raise InvalidInput(f"invalid revision {revision!r}", code="invalid_revision", details={"revision": revision})
    revision = (revision or "").strip() or None
    relative = canonical_target(repo_id, target)
    dest = resolve_inside(relative)
    patterns = _validate_patterns(files)
    running = active_install_for(relative)
    if running is not None:
        raise Conflict(
            f"an install into {relative} is already {running.status}",
            code="install_in_progress",
            details={k: v for k, v in job_service.job_envelope(running).items() if k != "status"},
        )
    if dest.exists() and not overwrite:
        raise Conflict(
            f"weights already exist for {relative}; pass overwrite=true to replace them",
            code="weights_exist",
            details={"target": relative},
        )
    sha, manifest = resolve_files(repo_id, revision, patterns)
    settings = current_settings()
    unverified = unverified_files(manifest)
    if unverified and settings.weights_require_sha256:
        shown = ", ".join(unverified[:5]) + (f" and {len(unverified) - 5} more" if len(unverified) > 5 else "")
        raise Conflict(
            f"Hugging Face gives no hash for {len(unverified)} file(s) of {repo_id} ({shown}); "
            "WEIGHTS_REQUIRE_SHA256=true refuses to install bytes that cannot be verified",
            code="sha256_unavailable",
            details={"hfModelId": repo_id, "revision": sha, "unverified": unverified},
        )
    total = sum(f["size"] for f in manifest)
    room = free_bytes()
    if room is not None and room < total:
        raise InsufficientStorage(
            f"not enough space on the weights volume: need {human_size(total)}, {human_size(room)} free",
            code="insufficient_storage",
            details={"requiredBytes": total, "availableBytes": room, "target": relative},
        )
    payload = {
        "hfModelId": repo_id,
        "revision": revision or "main",
        "resolvedRevision": sha,
        "target": relative,
        "overwrite": bool(overwrite),
        "files": patterns,
        "manifest": manifest,
        "unverified": unverified,
        "timeoutSeconds": settings.weights_install_timeout,
    }
    job = job_service.create_job(
        JOB_TYPE,
        actor=actor,
        payload=payload,
        target=relative,
        model_id=repo_id,
        message=f"Queued: {len(manifest)} files, {human_size(total)}",
        timeout=settings.weights_install_timeout,
        fields={"bytes_total": total, "files_total": len(manifest), "bytes_done": 0, "files_done": 0},
    )
    return {
        **job_service.job_envelope(job),
        "weightsInstallStatus": f"/weights/install/status/{job.id}",
        "target": relative,
        "revision": sha,
        "storageUri": storage_uri(relative, settings),
        "inferenceModelPath": inference_path(relative, settings),
    }
