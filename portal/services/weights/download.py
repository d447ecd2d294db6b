"""The install job: staging per commit, verified resumable downloads with retries, atomic publish, sweep."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import random
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from portal.extensions import current_settings, db
from portal.metrics import DOWNLOAD_BYTES, JOB_STATUS
from portal.models import Job
from portal.services import history, notify
from portal.services import jobs as job_service
from portal.services.huggingface import hub_token
from portal.services.weights.install import JOB_TYPE, unverified_files
from portal.services.weights.paths import (
    MARKER,
    OLD_INFIX,
    PARTIAL_INFIX,
    PARTIAL_SUFFIX,
    human_size,
    inference_path,
    is_reserved,
    is_staging_name,
    resolve_inside,
    storage_root,
    storage_uri,
)

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
DOWNLOAD_THREADS = 6
CHUNK = 256 * 1024  # largest read/hash/write block; fits the CPU cache (measured faster than 1-4 MiB)
PROGRESS_INTERVAL = 0.5  # at most two progress writes a second (DESIGN rule 5)
SWEEP_INTERVAL = 600.0  # the worker sweeps old staging dirs at most this often


# -- the install job ----------------------------------------------------------------------------------
class InstallError(Exception):
    """An install failed for a reason a person can read."""


class VolumeFull(InstallError):
    """The weights volume ran out of space while a file was being written."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Cancelled(Exception):
    """The job was cancelled (or stopped by a shutdown) while downloading."""


class _Transient(Exception):
    """A failure worth retrying: `what` says it in words, `retry_after` is the server's wish (seconds)."""

    def __init__(self, what: str, technical: str, retry_after: float | None = None) -> None:
        super().__init__(technical)
        self.what = what
        self.technical = technical
        self.retry_after = retry_after


class _Stream:
    """Bytes one download thread has received; only that thread writes `received` (no lock per chunk)."""

    __slots__ = ("name", "received")

    def __init__(self, name: str) -> None:
        self.name = name
        self.received = 0


@dataclass
class _Progress:
    """Counters the download threads add to; only the job's main thread writes the row.

    The hot path (bytes arriving) bumps a per-file `_Stream` counter without taking the lock; the rare
    events (resume, rewind, file finished, retry) take it. `snapshot()` sums everything for the reporter.
    """

    base: int = 0  # bytes counted from parts already on disk, minus rewinds
    files_done: int = 0
    current: str | None = None
    streams: list[_Stream] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    retries: int = 0
    events: list[tuple[str, str]] = field(default_factory=list)  # (message in words, technical error)
    notice: tuple[str, float] | None = None  # the retry message shown until this monotonic time
    _seen: dict[int, int] = field(default_factory=dict)

    def stream(self, name: str) -> _Stream:
        """A counter for one file's download thread (`received` is added to without a lock)."""
        counter = _Stream(name)
        with self.lock:
            self.streams.append(counter)
        return counter

    def resumed(self, n: int) -> None:
        with self.lock:
            self.base += n

    def rewind(self, n: int) -> None:
        with self.lock:
            self.base -= n

    def file_finished(self) -> None:
        with self.lock:
            self.files_done += 1

    def retrying(self, message: str, technical: str, show_for: float) -> None:
        """Note a retry: the message becomes the job's message, the technical error goes to its log."""
        with self.lock:
            self.retries += 1
            self.events.append((message, technical))
            self.notice = (message, time.monotonic() + show_for)

    def drain(self) -> tuple[list[tuple[str, str]], str | None]:
        """Retry events since the last call, and the retry message still to be shown (if any)."""
        with self.lock:
            events, self.events = self.events, []
            notice = self.notice
        return events, (notice[0] if notice is not None and notice[1] > time.monotonic() else None)

    def snapshot(self) -> tuple[int, int, int, str | None]:
        """(done, fresh, files_done, current file): fresh counts bytes actually received in this attempt."""
        with self.lock:
            base, files_done, streams = self.base, self.files_done, list(self.streams)
        fresh = 0
        for counter in streams:
            received = counter.received  # a plain int read: atomic under the GIL
            fresh += received
            if received != self._seen.get(id(counter), 0):
                self._seen[id(counter)] = received
                self.current = counter.name  # the last file (in start order) that moved since the last look
        return base + fresh, fresh, files_done, self.current


class _Reporter:
    """Writes progress (bytes, percent, rate, ETA), retry notices and heartbeats to the Job row."""

    def __init__(self, job: Job, progress: _Progress, total: int) -> None:
        self.job = job
        self.progress = progress
        self.total = total
        self.rate: float | None = None
        self.last_write = 0.0
        self.last_fresh = 0
        self.last_time = time.monotonic()
        self.counted = 0

    def write(self, *, force: bool = False, stage: str | None = None, message: str | None = None) -> None:
        clock = time.monotonic()
        if not force and clock - self.last_write < PROGRESS_INTERVAL:
            return
        done, fresh, files_done, current = self.progress.snapshot()
        elapsed = clock - self.last_time
        if elapsed >= 0.2:
            instant = (fresh - self.last_fresh) / elapsed
            # Exponential moving average: steady speed figure without hiding real slow-downs.
            self.rate = instant if self.rate is None else 0.3 * instant + 0.7 * self.rate
            self.last_fresh, self.last_time = fresh, clock
        job = self.job
        job.bytes_done = min(done, self.total)
        job.bytes_total = self.total
        job.progress = int(100 * job.bytes_done / self.total) if self.total else 0
        if job.progress >= 100 and job.status == "running" and stage != "finalizing":
            job.progress = 99  # 100 % means published, not just downloaded
        job.files_done = files_done
        job.current_file = current
        job.rate = round(self.rate, 1) if self.rate is not None else None
        remaining = max(0, self.total - done)
        job.eta_seconds = round(remaining / self.rate, 1) if self.rate and self.rate > 1 else None
        if stage:
            job.stage = stage
        events, notice = self.progress.drain()
        for words, technical in events:
            job_service.append_log(job, "warn", "retrying", f"{words} ({technical})", commit=False)
        if message:
            job.message = message
        elif notice:
            job.message = notice
        elif job.stage == "downloading":
            job.message = f"Downloading {current or ''} ({human_size(job.bytes_done)} of {human_size(self.total)})"
        job.heartbeat_at = job_service.now()
        if fresh > self.counted:
            DOWNLOAD_BYTES.inc(fresh - self.counted)
            self.counted = fresh
        db.session.commit()
        self.last_write = clock


def _row_status(job_id: str) -> str | None:
    status = db.session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()
    db.session.rollback()  # end the read transaction so the next check sees new commits
    return status


class _Digest:
    """sha256 of a file's bytes (for the marker), plus its git blob id when that is what the Hub gave."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.expected_sha256: str | None = spec.get("sha256") or None
        self.expected_git: str | None = None if self.expected_sha256 else (spec.get("gitOid") or None)
        self.size = int(spec["size"])
        self.restart()

    def restart(self) -> None:
        """Forget the bytes hashed so far (the file starts over)."""
        self.sha256 = hashlib.sha256()
        self.git = None
        if self.expected_git:
            self.git = hashlib.sha1(b"blob %d\0" % self.size, usedforsecurity=False)

    @property
    def verifiable(self) -> bool:
        """True when the Hub gave a hash to compare with."""
        return bool(self.expected_sha256 or self.expected_git)

    def updater(self) -> Callable[[bytes], None]:
        """The function the hot loop feeds each chunk to (sha256 alone for LFS files: no extra call)."""
        git = self.git
        if git is None:
            return self.sha256.update
        sha = self.sha256

        def both(chunk: bytes) -> None:
            sha.update(chunk)
            git.update(chunk)

        return both

    def mismatch(self) -> str | None:
        """What differs from the Hub's record, or None."""
        if self.expected_sha256 and self.sha256.hexdigest() != self.expected_sha256:
            return "sha256 differs from the Hub's LFS record"
        if self.git is not None and self.git.hexdigest() != self.expected_git:
            return "git blob id differs from the Hub's record"
        return None

    def entry(self, name: str, size: int) -> dict[str, Any]:
        """The marker's line for this file."""
        if not self.verifiable:
            return {"name": name, "size": size, "sha256": "unverified"}
        return {
            "name": name,
            "size": size,
            "sha256": self.sha256.hexdigest(),
            "verifiedBy": "sha256" if self.expected_sha256 else "git-blob-id",
        }


def _hash_file(path: Path, update: Callable[[bytes], None], stop: threading.Event) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            update(chunk)
            if stop.is_set():
                raise Cancelled()


@dataclass(frozen=True)
class _Fetch:
    """What every download thread of one install shares."""

    repo_id: str
    sha: str
    staging: Path
    progress: _Progress
    stop: threading.Event
    token: str | bool
    endpoint: str
    retries: int
    backoff: float
    backoff_max: float


def _backoff(ctx: _Fetch, failures: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least the server's Retry-After."""
    ceiling = min(ctx.backoff_max, ctx.backoff * 2.0 ** (failures - 1))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # jitter, not cryptography
    if retry_after is not None:
        delay = max(delay, min(retry_after, ctx.backoff_max))
    return delay


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _as_transient(exc: BaseException) -> _Transient | None:
    """Classify a download failure: transient (retry) or not (None: fail the attempt)."""
    import requests
    import urllib3

    if isinstance(exc, _Transient):
        return exc
    technical = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return _Transient("the Hub did not answer in time", technical)
    if isinstance(exc, requests.RequestException | urllib3.exceptions.HTTPError | ConnectionError):
        return _Transient("the Hub dropped the connection", technical)
    return None  # a disk error (ENOSPC, EACCES, …) is not cured by waiting


def _words(what: str, count: int, name: str, delay: float) -> str:
    times = "once" if count == 1 else f"{count} times"
    wait_for = f"{delay:.0f} s" if delay >= 1 else f"{delay:.2f} s"
    return f"{what} {times} while downloading {name}; retrying in {wait_for}"


def _download_file(spec: dict[str, Any], ctx: _Fetch) -> dict[str, Any]:
    """Fetch one file into staging (resuming `<file>.part` with Range), verify it, rename it into place.

    Returns the file's marker line. Bytes already in staging (this commit's, from an earlier attempt)
    are accepted only after hashing them against the Hub's record; a file with no hash is fetched again.
    Transient failures are retried up to `ctx.retries` times with backoff, resuming from the bytes on disk.
    """
    import requests

    name, size = spec["name"], int(spec["size"])
    staging, progress, stop = ctx.staging, ctx.progress, ctx.stop
    final = staging / name
    part = staging / (name + PART_SUFFIX)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.is_file():
        digest = _Digest(spec)
        if digest.verifiable and final.stat().st_size == size:
            _hash_file(final, digest.updater(), stop)
            if digest.mismatch() is None:
                progress.resumed(size)  # verified again: finished by an earlier attempt of this commit
                progress.file_finished()
                return digest.entry(name, size)
        final.unlink()
    counter = progress.stream(name)
    failures = 0
    kinds: dict[str, int] = {}  # failures of this file by what happened, for the words of the message
    with requests.Session() as session:
        while True:
            digest = _Digest(spec)
            have = part.stat().st_size if part.exists() else 0
            if have > size or (have and not digest.verifiable):
                part.unlink()  # longer than the file, or bytes nothing could vouch for: start over
                have = 0
            if have:
                _hash_file(part, digest.updater(), stop)  # resume the digest over the bytes on disk
            progress.resumed(have)
            start = counter.received
            try:
                if have < size:
                    _fetch_range(session, spec, ctx, part=part, have=have, digest=digest, counter=counter)
            except (Cancelled, InstallError):
                raise
            except Exception as exc:
                progress.rewind(have + counter.received - start)
                transient = _as_transient(exc)
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    raise VolumeFull(name) from exc
                if transient is None:
                    raise InstallError(f"download of {name} failed: {type(exc).__name__}: {exc}") from exc
                failures += 1
                kinds[transient.what] = kinds.get(transient.what, 0) + 1
                if failures > ctx.retries:
                    raise InstallError(
                        f"download of {name} failed: {transient.what} {kinds[transient.what]} times "
                        f"(WEIGHTS_DOWNLOAD_RETRIES={ctx.retries}); a retry resumes from the verified bytes "
                        f"({transient.technical})"
                    ) from exc
                delay = _backoff(ctx, failures, transient.retry_after)
                progress.retrying(
                    _words(transient.what, kinds[transient.what], name, delay), transient.technical, delay + 2
                )
                if stop.wait(delay):
                    raise Cancelled() from exc
                continue
            received = counter.received - start
            actual = part.stat().st_size if part.exists() else 0
            if actual != size:
                progress.rewind(have + received)
                part.unlink(missing_ok=True)
                raise InstallError(f"size mismatch for {name}: expected {size} bytes, got {actual}")
            problem = digest.mismatch()
            if problem is not None:
                progress.rewind(have + received)
                part.unlink(missing_ok=True)
                raise InstallError(f"checksum mismatch for {name}: {problem}")
            os.replace(part, final)
            progress.file_finished()
            return digest.entry(name, size)


def _fetch_range(
    session: Any, spec: dict[str, Any], ctx: _Fetch, *, part: Path, have: int, digest: _Digest, counter: _Stream
) -> None:
    """GET the file from byte `have` on and append it to the part file; HTTP trouble becomes _Transient.

    The body is streamed with requests/urllib3 `read1` (whatever the socket holds, up to CHUNK): far less
    Python per byte than httpx's 64 KiB h11 events. huggingface_hub still builds the URL and headers.
    """
    from huggingface_hub import hf_hub_url
    from huggingface_hub.utils._headers import build_hf_headers  # not re-exported with types in 2.4

    name = spec["name"]
    url = hf_hub_url(ctx.repo_id, name, revision=ctx.sha, endpoint=ctx.endpoint)
    headers = build_hf_headers(token=ctx.token, library_name="model-manager")
    headers["Accept-Encoding"] = "identity"  # the bytes as stored: size and hashes are of those
    if have:
        headers["Range"] = f"bytes={have}-"
    with session.get(url, headers=headers, stream=True, timeout=60.0) as response:
        status = response.status_code
        if status == 416:
            part.unlink(missing_ok=True)
            raise _Transient("the Hub refused the resume range", "HTTP 416 range not satisfiable")
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise _Transient("the Hub asked us to slow down (429)", "HTTP 429 Too Many Requests", retry_after)
        if status >= 500 or status == 408:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise _Transient(f"the Hub answered {status}", f"HTTP {status} {response.reason}", retry_after)
        if status >= 400:
            raise InstallError(f"download of {name} failed: the Hub answered HTTP {status}")
        if have and status == 200:
            # The server ignored the range: start this file over (the digest too).
            ctx.progress.rewind(have)
            digest.restart()
            have = 0
        _stream_body(response, part, have=have, update=digest.updater(), counter=counter, stop=ctx.stop)


def _stream_body(
    response: Any, part: Path, *, have: int, update: Callable[[bytes], None], counter: _Stream, stop: threading.Event
) -> None:
    """Append the body to the part file as it arrives, hashing it and counting it (the hot loop).

    `read1` returns as soon as the socket has data, so progress and the cancel check stay live on a slow
    link; sha256 and the file write release the GIL for buffers this size, so files overlap on 2 cores.
    """
    raw = response.raw
    read1 = raw.read1
    length = response.headers.get("Content-Length")
    encoded = response.headers.get("Content-Encoding", "identity") not in ("", "identity")
    got = 0
    with part.open("ab" if have else "wb") as out:
        write = out.write
        while chunk := read1(CHUNK, decode_content=True):
            if stop.is_set():
                raise Cancelled()
            write(chunk)
            update(chunk)
            n = len(chunk)
            got += n
            counter.received += n
    if length is not None and not encoded and got < int(length):
        # urllib3's read1 ends quietly on a closed socket: a short body is a dropped connection.
        raise ConnectionError(f"connection closed after {got} of {length} bytes")


def staging_dir(dest: Path, repo_id: str, sha: str) -> Path:
    """`<dest>.partial-<key>`: the staging of one repo at one commit (a new commit gets a fresh one)."""
    key = hashlib.sha256(f"{repo_id}@{sha}".encode()).hexdigest()[:16]
    return dest.with_name(f"{dest.name}{PARTIAL_INFIX}{key}")


def _other_staging(dest: Path, keep: Path | None) -> list[Path]:
    """Staging dirs of the same target other than `keep` (other commits, or the older unkeyed layout)."""
    prefix = dest.name + PARTIAL_SUFFIX
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return []
    return [
        Path(e.path)
        for e in entries
        if e.name.startswith(prefix)
        and (e.name == prefix or e.name.startswith(dest.name + PARTIAL_INFIX))
        and (keep is None or e.path != str(keep))
        and e.is_dir(follow_symlinks=False)
    ]


def _check_complete(
    staging: Path, manifest: list[dict[str, Any]], entries: list[dict[str, Any]], require: bool
) -> None:
    """Refuse to publish unless every file is there with its size, verified when a hash exists or is required."""
    by_name = {entry["name"]: entry for entry in entries}
    for spec in manifest:
        name, size = spec["name"], int(spec["size"])
        entry = by_name.get(name)
        path = staging / name
        if entry is None or not path.is_file() or path.stat().st_size != size:
            raise InstallError(f"{name} is missing or incomplete in the staging directory; nothing was published")
        if entry["sha256"] == "unverified" and (require or spec.get("sha256") or spec.get("gitOid")):
            raise InstallError(f"{name} was not verified against a Hub hash; nothing was published")


def _publish(staging: Path, dest: Path, marker: dict[str, Any]) -> None:
    """Write the marker, then swap the verified staging dir into place; the old version goes last."""
    (staging / MARKER).write_text(json.dumps(marker, indent=2))
    dest.parent.mkdir(parents=True, exist_ok=True)
    old: Path | None = None
    if dest.exists():
        old = dest.with_name(f"{dest.name}{OLD_INFIX}{int(time.time() * 1000)}")
        os.replace(dest, old)
    try:
        os.replace(staging, dest)
    except OSError:
        if old is not None:
            os.replace(old, dest)  # put the previous version back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def run_install(job_id: str) -> None:
    """The RQ job body: download → verify → publish, with progress, cancel checks and heartbeats."""
    job = db.session.get(Job, job_id)
    if job is None or job.status != "pending":
        return  # cancelled (or gone) before a worker picked it up
    payload = dict(job.payload or {})
    job_service.start(job, worker=os.environ.get("HOSTNAME") or str(os.getpid()), message="Resolving files")
    job.stage = "resolving"
    db.session.commit()
    stop = threading.Event()
    try:
        _install(job, payload, stop)
    except Cancelled:
        JOB_STATUS.labels(JOB_TYPE, "cancelled").inc()
        return
    except InstallError as exc:
        _record_failure(job, str(exc))
    except BaseException as exc:
        stop.set()
        from rq.timeouts import JobTimeoutException

        if isinstance(exc, JobTimeoutException):
            seconds = payload.get("timeoutSeconds")
            _record_failure(job, f"timed out after {seconds} s (WEIGHTS_INSTALL_TIMEOUT)")
            raise
        if isinstance(exc, Exception):
            log.exception("install job %s failed", job_id)
            _record_failure(job, f"install failed: {type(exc).__name__}: {exc}")
            return
        raise
    else:
        JOB_STATUS.labels(JOB_TYPE, "completed").inc()


def _record_failure(job: Job, reason: str) -> None:
    db.session.rollback()
    job = db.session.get(Job, job.id) or job
    if job.status != "running":
        return  # cancelled meanwhile: the operator's word stands
    job_service.fail(job, reason)
    record_failed(job)


def record_failed(job: Job) -> None:
    """History + metrics of a failed install (also used when the reaper fails it)."""
    history.record(
        "weight_install_failed",
        actor=job.actor,
        model_id=job.model_id,
        metadata={"error": job.error, "jobId": job.id, "target": job.target},
    )
    JOB_STATUS.labels(JOB_TYPE, "failed").inc()
    notify.install_finished(job)


def _download_all(job: Job, manifest: list[dict[str, Any]], ctx: _Fetch, reporter: _Reporter) -> list[dict[str, Any]]:
    """Run the downloads (biggest first) on a thread pool, writing progress and checking for cancel."""
    pool = ThreadPoolExecutor(max_workers=min(DOWNLOAD_THREADS, len(manifest)), thread_name_prefix="weights")
    # Biggest first: the long files start early and small ones fill the gaps.
    ordered = sorted(manifest, key=lambda f: -int(f["size"]))
    futures: list[Future[dict[str, Any]]] = [pool.submit(_download_file, spec, ctx) for spec in ordered]
    last_check = 0.0
    try:
        pending: set[Future[dict[str, Any]]] = set(futures)
        while pending:
            _done, pending = wait(pending, timeout=PROGRESS_INTERVAL, return_when=FIRST_EXCEPTION)
            for future in _done:
                exc = future.exception()
                if exc is not None:
                    raise exc
            clock = time.monotonic()
            if clock - last_check >= PROGRESS_INTERVAL:
                last_check = clock
                if _row_status(job.id) != "running":
                    raise Cancelled()
            reporter.write()
    except BaseException:
        ctx.stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [future.result() for future in futures]


def _install(job: Job, payload: dict[str, Any], stop: threading.Event) -> None:
    settings = current_settings()
    repo_id, sha = payload["hfModelId"], payload["resolvedRevision"]
    relative = payload["target"]
    manifest: list[dict[str, Any]] = payload["manifest"]
    root = storage_root()
    root.mkdir(parents=True, exist_ok=True)
    dest = resolve_inside(relative, root)
    if dest.exists() and not payload.get("overwrite"):
        raise InstallError(f"weights already exist for {relative}")
    unverified = unverified_files(manifest)
    if unverified and settings.weights_require_sha256:
        raise InstallError(
            f"refused: Hugging Face gives no hash for {', '.join(unverified)} (WEIGHTS_REQUIRE_SHA256=true)"
        )
    staging = staging_dir(dest, repo_id, sha)
    for leftover in _other_staging(dest, keep=staging):
        # A cancelled or superseded install of another commit: its bytes must never reach this one.
        shutil.rmtree(leftover, ignore_errors=True)
        job_service.append_log(job, "info", "downloading", f"Removed the staging of another install: {leftover.name}")
    staging.mkdir(parents=True, exist_ok=True)
    total = sum(int(f["size"]) for f in manifest)
    progress = _Progress()
    reporter = _Reporter(job, progress, total)
    reporter.write(force=True, stage="downloading", message=f"Downloading {len(manifest)} files")
    job_service.append_log(job, "info", "downloading", f"Downloading {len(manifest)} files ({human_size(total)})")
    ctx = _Fetch(
        repo_id,
        sha,
        staging,
        progress,
        stop,
        hub_token(settings),
        settings.hf_endpoint,
        settings.weights_download_retries,
        settings.weights_retry_backoff,
        settings.weights_retry_backoff_max,
    )
    try:
        entries = _download_all(job, manifest, ctx, reporter)
    except VolumeFull as full:
        # Keeping the partial bytes would only keep the volume full: the next attempt starts over.
        shutil.rmtree(staging, ignore_errors=True)
        raise InstallError(
            f"no space left on the weights volume while downloading {full.name}: the partial download was "
            "removed and the installed version is untouched; free space on the volume, then retry"
        ) from full
    _check_complete(staging, manifest, entries, settings.weights_require_sha256)
    verified = len(manifest) - len(unverified)
    if unverified:
        check = (
            f"Verified {verified} of {len(manifest)} files against the Hub's hash and every size; "
            f"no hash on the Hub for {len(unverified)}: {', '.join(unverified[:10])}"
            + (" …" if len(unverified) > 10 else "")
        )
    else:
        check = f"Verified all {len(manifest)} files against the Hub's hash (sha256 or git blob id) and size"
    reporter.write(force=True, stage="verifying", message=check)
    job_service.append_log(job, "warn" if unverified else "info", "verifying", check)
    if _row_status(job.id) != "running":
        raise Cancelled()
    reporter.write(force=True, stage="finalizing", message="Publishing the install")
    marker = {
        "modelId": repo_id,
        "revision": sha,
        "installedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "files": sorted(entries, key=lambda e: e["name"]),
        "unverified": unverified,
        "totalBytes": total,
    }
    _publish(staging, dest, marker)
    for leftover in _other_staging(dest, keep=None):
        shutil.rmtree(leftover, ignore_errors=True)
    result = {
        "path": str(dest),
        "name": relative,
        "sizeBytes": total,
        "revision": sha,
        "hfModelId": repo_id,
        "storageUri": storage_uri(relative, settings),
        "inferenceModelPath": inference_path(relative, settings),
        "unverified": unverified,
        "retries": progress.retries,
    }
    job.current_file = None
    job.files_done = len(manifest)
    job.bytes_done = total
    job.rate = reporter.rate
    done = "Weights ready" if not unverified else f"Weights ready; {len(unverified)} file(s) unverified (no Hub hash)"
    job_service.complete(job, result=result, message=done)
    history.record("weight_install_completed", actor=job.actor, model_id=repo_id, metadata=result)
    notify.install_finished(job)


def sweep_staging(*, max_age: float | None = None) -> list[str]:
    """Remove staging and `.old-` dirs untouched for STAGING_MAX_AGE, except those of a queued/running install."""
    root = storage_root()
    if not root.is_dir():
        return []
    age = current_settings().staging_max_age if max_age is None else max_age
    busy = set(
        db.session.scalars(select(Job.target).where(Job.type == JOB_TYPE, Job.status.in_(("pending", "running")))).all()
    )
    db.session.rollback()
    cutoff = time.time() - age
    removed = []
    for path in _staging_dirs(root):
        relative = path.relative_to(root).as_posix()
        owner = re.split(r"\.partial(?:-|$)|\.old-", relative, maxsplit=1)[0]
        if owner in busy or _newest_mtime(path) > cutoff:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(relative)
        log.info("removed stale staging directory %s", relative)
    return removed


def _staging_dirs(root: Path) -> Iterator[Path]:
    """Staging and `.old-` dirs anywhere on the volume (installs themselves are not entered)."""
    stack = [str(root)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                dirs = [e for e in it if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for entry in dirs:
            if is_staging_name(entry.name):
                yield Path(entry.path)
            elif not is_reserved(entry.name) and not os.path.lexists(os.path.join(entry.path, MARKER)):
                stack.append(entry.path)


def _newest_mtime(path: Path) -> float:
    """The newest mtime of a staging dir and everything in it (a growing `.part` counts as activity)."""
    newest = path.lstat().st_mtime
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest
