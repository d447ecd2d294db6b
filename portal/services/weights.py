"""Weights on the PVC: safe paths, list/info/usage/delete, and resumable verified installs from the Hub."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import json
import logging
import os
import random
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from flask import current_app
from sqlalchemy import select

from portal.config import Settings
from portal.errors import (
    Conflict,
    Forbidden,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    PortalError,
    Unauthorized,
    Unavailable,
    UpstreamError,
)
from portal.extensions import db
from portal.metrics import DOWNLOAD_BYTES, JOB_STATUS
from portal.models import Job
from portal.services import history, notify
from portal.services import jobs as job_service

log = logging.getLogger(__name__)

JOB_TYPE = "weight_install"
MARKER = ".model-manager"
RESERVED_NAMES = frozenset({".hf-cache", "modules", "lost+found"})
PARTIAL_SUFFIX = ".partial"  # staging of an older release (one per target); still reserved and swept
PARTIAL_INFIX = ".partial-"  # <target>.partial-<key of repo and commit>: the staging of one install
OLD_INFIX = ".old-"
PART_SUFFIX = ".part"
REPO_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
REVISION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,199}$")
_SEGMENT_JUNK = re.compile(r"[^A-Za-z0-9._-]+")
MAX_PATTERNS = 200
DOWNLOAD_THREADS = 6
CHUNK = 256 * 1024  # largest read/hash/write block; fits the CPU cache (measured faster than 1-4 MiB)
PROGRESS_INTERVAL = 0.5  # at most two progress writes a second (DESIGN rule 5)
SCAN_THREADS = 2  # usage/list walk: lstat releases the GIL; 2 measured best on 2 cores (3-4 slower)
HASH_PROBE_THREADS = 8  # HEAD requests that read a file's hash from the resolve headers
SWEEP_INTERVAL = 600.0  # the worker sweeps old staging dirs at most this often


# -- paths -------------------------------------------------------------------------------------------
def _settings() -> Settings:
    value = current_app.config["SETTINGS"]
    assert isinstance(value, Settings)
    return value


def storage_root() -> Path:
    """The weights volume's root directory."""
    return Path(_settings().weights_storage_path)


def normalize(raw: str) -> str:
    """Reference §5.2 normalisation: clean segments joined by `/`; InvalidInput when nothing is left."""
    text = (raw or "").strip().replace("\\", "/").strip("/")
    segments = []
    for segment in text.split("/"):
        cleaned = _SEGMENT_JUNK.sub("-", segment).strip("-")
        if cleaned in ("", ".", ".."):
            continue
        segments.append(cleaned)
    if not segments:
        raise InvalidInput(f"invalid path {raw!r}", code="invalid_path", details={"name": raw})
    return "/".join(segments)


def is_reserved(relative: str) -> bool:
    """True when any segment is reserved (`.hf-cache`, `modules`, `lost+found`, dot-names) or a staging dir."""
    for segment in relative.split("/"):
        if segment in RESERVED_NAMES or segment.startswith("."):
            return True
        if is_staging_name(segment):
            return True
    return False


def is_staging_name(name: str) -> bool:
    """True for our staging (`*.partial`, `*.partial-<key>`) and replaced-version (`*.old-<ts>`) dir names."""
    return name.endswith(PARTIAL_SUFFIX) or PARTIAL_INFIX in name or OLD_INFIX in name


def _refuse_escape(raw: str) -> None:
    """400 for anything that tries to leave the root: `..` (also percent-encoded), absolute paths."""
    decoded = raw
    for _ in range(3):  # double-encoded `%252e%252e` decodes twice
        decoded = unquote(decoded)
    text = decoded.strip().replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:/", text) or "\x00" in text:
        raise InvalidInput(
            "absolute paths are not allowed: give a name relative to the weights volume",
            code="path_traversal",
            details={"name": raw},
        )
    if any(segment.strip() == ".." for segment in text.split("/")):
        raise InvalidInput("path traversal detected: `..` is not allowed", code="path_traversal", details={"name": raw})


def safe_relative(raw: str) -> str:
    """Validate a user-supplied install name: no escape, normalised, not reserved."""
    if raw is None or not str(raw).strip().strip("/"):
        raise InvalidInput("name is required", code="name_required", details={"name": raw})
    _refuse_escape(raw)
    relative = normalize(raw)
    raw_segments = "/".join(seg.strip() for seg in str(raw).replace("\\", "/").strip().strip("/").split("/"))
    if is_reserved(relative) or is_reserved(raw_segments):
        raise InvalidInput(f"{relative} is a reserved path", code="reserved_path", details={"name": raw})
    # Filesystems refuse longer names (ENAMETOOLONG); say so instead of failing later.
    if len(relative.encode()) > 1024 or any(len(seg.encode()) > 255 for seg in relative.split("/")):
        raise InvalidInput(
            "name is too long (at most 255 bytes per segment, 1024 in all)",
            code="name_too_long",
            details={"length": len(relative)},
        )
    return relative


def resolve_inside(relative: str, root: Path | None = None) -> Path:
    """The absolute path of `relative` with symlinks resolved; 400 when it leaves the root."""
    base = (root or storage_root()).resolve()
    candidate = (base / relative).resolve()
    if candidate == base or not candidate.is_relative_to(base):
        raise InvalidInput(
            "path traversal detected: the name resolves outside the weights volume",
            code="path_traversal",
            details={"name": relative},
        )
    return candidate


def canonical_target(hf_model_id: str, override: str | None) -> str:
    """The install directory relative to the root: the override when given (validated), else the HF id."""
    raw = override if override is not None and str(override).strip() else hf_model_id
    return safe_relative(raw)


def human_size(size: int) -> str:
    """`<n> B` below 1 KiB, else 1024-based with one decimal (`4.5 MiB`)."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        value /= 1024.0
        if value < 1024 or unit == "EiB":
            return f"{value:.1f} {unit}"
    return f"{size} B"  # pragma: no cover


# -- listing -----------------------------------------------------------------------------------------
@dataclass
class _Tally:
    size: int = 0
    files: int = 0
    newest: float = 0.0


def _tally(path: str, tally: _Tally, *, skip_staging: bool = True) -> None:
    """Sum regular files under `path` (no symlink following, markers excluded); os.scandir for speed."""
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if skip_staging and is_staging_name(entry.name):
                                continue
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            if entry.name == MARKER:
                                continue
                            st = entry.stat(follow_symlinks=False)
                            tally.size += st.st_size
                            tally.files += 1
                            tally.newest = max(tally.newest, st.st_mtime)
                    except OSError:
                        continue  # unreadable entries are skipped, as the reference does
        except OSError:
            continue


def read_marker(path: Path) -> dict[str, Any] | None:
    """The install's marker JSON, or None when absent/unreadable."""
    try:
        data = json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _iso_ts(ts: float) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def weight_info(path: Path, relative: str, *, marker: dict[str, Any] | None = None) -> dict[str, Any]:
    """WeightInfo (reference §5.3) of one install directory."""
    tally = _Tally()
    _tally(str(path), tally)
    marker = marker if marker is not None else read_marker(path)
    return _info_from(str(path), relative, marker, tally)


@dataclass
class _Dir:
    """One directory of the volume as one scandir pass saw it (its own regular files, not below)."""

    path: str
    relative: str
    size: int = 0
    files: int = 0
    newest: float = 0.0
    marked: bool = False
    subdirs: list[_Dir] = field(default_factory=list)


@dataclass(frozen=True)
class _Seen:
    """A directory's own tally as last scanned, valid while its inode and mtime are unchanged."""

    ino: int
    mtime_ns: int
    scanned_ns: int
    size: int
    files: int
    newest: float
    marked: bool
    subdirs: tuple[str, ...]
    marker: dict[str, Any] | None


class _UsageCache:
    """Per-directory tallies of the volume keyed by (inode, mtime): a read re-scans only changed dirs.

    Adding, removing or renaming an entry changes its directory's mtime, and installs are published by
    renaming a finished directory into place, so one lstat per directory tells what must be read again.
    A directory modified within RACY_NS of its scan is read again next time (the same mtime could hide a
    second change). Files rewritten in place keep their directory's mtime: a full re-scan every
    WEIGHTS_USAGE_REFRESH (in a background thread) bounds how stale such a figure can get.
    """

    RACY_NS = 2_000_000_000

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dirs: dict[str, _Seen] = {}
        self.full_scan_at = 0.0  # monotonic clock of the last full walk
        self.full_scan_wall = 0.0
        self.refreshing = False

    def lookup(self, path: str) -> _Seen | None:
        """The cached tally of `path` when the directory did not change since it was scanned."""
        seen = self.dirs.get(path)
        if seen is None:
            return None
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if st.st_ino != seen.ino or st.st_mtime_ns != seen.mtime_ns or seen.scanned_ns - st.st_mtime_ns < self.RACY_NS:
            return None
        return seen

    def clear(self) -> None:
        """Forget every tally (the next read walks the whole volume)."""
        with self.lock:
            self.dirs.clear()
            self.full_scan_at = 0.0


_USAGE = _UsageCache()


def _scan_dir(node: _Dir) -> list[_Dir]:
    """Sum one directory's regular files (lstat via DirEntry, d_type for dirs), note its marker; its subdirs."""
    size = files = 0
    newest = 0.0
    marked = False
    subdirs: list[_Dir] = []
    is_reg = stat.S_ISREG
    prefix = f"{node.relative}/" if node.relative else ""
    try:
        with os.scandir(node.path) as entries:
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        name = entry.name
                        if not is_reserved(name):
                            subdirs.append(_Dir(entry.path, prefix + name))
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # unreadable entries are skipped, as the reference does
                if is_reg(st.st_mode):
                    if entry.name == MARKER:
                        marked = True
                        continue
                    size += st.st_size
                    files += 1
                    if st.st_mtime > newest:  # noqa: PLR1730 -- hot loop: a compare is cheaper than a max() call
                        newest = st.st_mtime
                elif entry.name == MARKER:
                    marked = True  # a marker that is not a regular file (a symlink) still marks the install
    except OSError:
        marked, subdirs = False, []  # an unreadable directory: what was read counts, nothing below it
    node.size, node.files, node.newest, node.marked, node.subdirs = size, files, newest, marked, subdirs
    return subdirs


def _visit(node: _Dir, cache: _UsageCache | None) -> list[_Dir]:
    """Fill one directory from the cache when unchanged, else scan it (and remember the scan)."""
    seen = cache.lookup(node.path) if cache is not None else None
    if seen is not None:
        node.size, node.files, node.newest, node.marked = seen.size, seen.files, seen.newest, seen.marked
        prefix = f"{node.relative}/" if node.relative else ""
        node.subdirs = [_Dir(os.path.join(node.path, name), prefix + name) for name in seen.subdirs]
        return node.subdirs
    try:
        before = os.lstat(node.path)
    except OSError:
        before = None
    scanned_ns = time.time_ns()
    subdirs = _scan_dir(node)
    if cache is not None and before is not None:
        marker = read_marker(Path(node.path)) if node.marked else None
        names = tuple(os.path.basename(sub.path) for sub in subdirs)
        seen = _Seen(
            before.st_ino,
            before.st_mtime_ns,
            scanned_ns,
            node.size,
            node.files,
            node.newest,
            node.marked,
            names,
            marker,
        )
        with cache.lock:
            cache.dirs[node.path] = seen
    return subdirs


def _walk(roots: list[_Dir], cache: _UsageCache | None = None) -> None:
    """Visit every directory below `roots`, SCAN_THREADS at a time (the lstat syscalls release the GIL)."""
    if not roots:
        return
    with ThreadPoolExecutor(max_workers=SCAN_THREADS, thread_name_prefix="weights-scan") as pool:
        pending = [pool.submit(_visit, node, cache) for node in roots]
        while pending:
            pending.extend(pool.submit(_visit, node, cache) for node in pending.pop().result())


def _marker_of(path: str, cache: _UsageCache | None) -> dict[str, Any] | None:
    seen = cache.dirs.get(path) if cache is not None else None
    return seen.marker if seen is not None else read_marker(Path(path))


def _fold(
    node: _Dir, found: list[tuple[str, str, dict[str, Any] | None, _Tally]], cache: _UsageCache | None = None
) -> tuple[_Tally, bool]:
    """Sizes of everything below a scanned dir, and every marked install dir in it (not nested)."""
    tally = _Tally(node.size, node.files, node.newest)
    inner: list[tuple[str, str, dict[str, Any] | None, _Tally]] = []
    below = False
    for sub in node.subdirs:
        sub_tally, marked = _fold(sub, inner, cache)
        below = below or marked
        tally.size += sub_tally.size
        tally.files += sub_tally.files
        tally.newest = max(tally.newest, sub_tally.newest)
    if node.marked and node.relative:
        found.append((node.relative, node.path, _marker_of(node.path, cache), tally))
        return tally, True  # an install's own subdirectories belong to it
    found.extend(inner)
    return tally, below or node.marked


def _info_from(path: str, relative: str, marker: dict[str, Any] | None, tally: _Tally) -> dict[str, Any]:
    settings = _settings()
    info = {
        "name": relative,
        "path": path,
        "sizeBytes": tally.size,
        "sizeHuman": human_size(tally.size),
        "fileCount": tally.files,
        "modifiedTime": _iso_ts(tally.newest),
        "installedAt": (marker or {}).get("installedAt"),
        "hfModelId": (marker or {}).get("modelId"),
        "revision": (marker or {}).get("revision"),
        "legacy": marker is None,
        "storageUri": storage_uri(relative, settings),
        "inferenceModelPath": inference_path(relative, settings),
    }
    unverified = (marker or {}).get("unverified")
    if isinstance(unverified, list) and unverified:
        info["unverified"] = [str(name) for name in unverified]
    return info


def list_weights() -> list[dict[str, Any]]:
    """Every install (marked dirs anywhere, plus legacy unmarked top-level dirs), largest first."""
    return _list(_USAGE)


def _list(cache: _UsageCache | None) -> list[dict[str, Any]]:
    """One pass over the volume; with a cache, only directories that changed since their scan are read."""
    root = storage_root()
    if not root.is_dir():
        return []
    results: list[dict[str, Any]] = []
    try:
        top = sorted(
            (e.name, e.path) for e in os.scandir(root) if e.is_dir(follow_symlinks=False) and not is_reserved(e.name)
        )
    except OSError:
        return []
    nodes = [_Dir(path, name) for name, path in top]
    _walk(nodes, cache)  # one pass over the whole volume, in parallel
    for node in nodes:
        found: list[tuple[str, str, dict[str, Any] | None, _Tally]] = []
        tally, marked = _fold(node, found, cache)
        if marked:
            results.extend(_info_from(p, rel, marker, t) for rel, p, marker, t in found)
        elif tally.files or not _only_staging(Path(node.path)):
            results.append(_info_from(node.path, node.relative, None, tally))
    results.sort(key=lambda item: (-item["sizeBytes"], item["name"]))
    return results


def refresh_usage() -> list[dict[str, Any]]:
    """Walk the whole volume again (every directory read afresh) and keep the result as the cache."""
    fresh = _UsageCache()
    results = _list(fresh)
    with _USAGE.lock:
        _USAGE.dirs = fresh.dirs
        _USAGE.full_scan_at = time.monotonic()
        _USAGE.full_scan_wall = time.time()
    return results


def _cached_listing() -> tuple[list[dict[str, Any]], float]:
    """The listing from the cache (changed dirs re-read) and the age in seconds of its oldest full walk.

    The first read walks the volume; after that a full re-walk starts in a background thread once the
    last one is older than WEIGHTS_USAGE_REFRESH, and this read answers from the validated cache meanwhile.
    """
    interval = _settings().weights_usage_refresh
    if not _USAGE.full_scan_at:
        return refresh_usage(), 0.0
    age = time.monotonic() - _USAGE.full_scan_at
    if age >= interval and not _USAGE.refreshing:
        _USAGE.refreshing = True
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def refresh() -> None:
            try:
                with app.app_context():
                    refresh_usage()
            finally:
                _USAGE.refreshing = False

        threading.Thread(target=refresh, name="weights-usage-refresh", daemon=True).start()
    return _list(_USAGE), age


def _only_staging(path: Path) -> bool:
    """True when a dir holds nothing but our staging dirs (an org dir during a first install)."""
    try:
        names = [e.name for e in os.scandir(path)]
    except OSError:
        return False
    return bool(names) and all(is_staging_name(n) for n in names)


def get_info(raw_name: str) -> dict[str, Any]:
    """WeightInfo of one install; 400 for unsafe names, 404 when missing."""
    relative = safe_relative(raw_name)
    path = resolve_inside(relative)
    if not path.is_dir():
        raise NotFound(f"model weights not found: {relative}", code="weights_not_found", details={"name": relative})
    return weight_info(path, relative)


def volume_stats(root: Path | None = None) -> tuple[int | None, int | None]:
    """(total, available) bytes of the filesystem holding the root, or (None, None)."""
    try:
        st = os.statvfs(root or storage_root())
    except OSError:
        return None, None
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def usage() -> dict[str, Any]:
    """Volume usage: statfs total/available (capped by WEIGHTS_VOLUME_LIMIT_BYTES), bytes used by installs.

    `checkedAt` is when this figure was validated (every directory's mtime compared with its cached scan);
    `fullScanAgeSeconds` is how long ago the volume was last walked in full (bounds in-place rewrites).
    """
    settings = _settings()
    models, age = _cached_listing()
    used = sum(m["sizeBytes"] for m in models)
    total, available = volume_stats()
    limit = settings.weights_volume_limit_bytes
    if limit is not None:
        total = limit if total is None else min(total, limit)
        room = max(0, limit - used)
        available = room if available is None else min(available, room)
    percent = None
    if total:
        percent = round(100.0 * (total - (available or 0)) / total, 1)
    threshold = settings.pvc_alert_threshold
    return {
        "totalBytes": total or 0,
        "totalHuman": human_size(total) if total is not None else "unknown",
        "usedBytes": used,
        "usedHuman": human_size(used),
        "availableBytes": available or 0,
        "availableHuman": human_size(available) if available is not None else "unknown",
        "usedPercent": percent,
        "alertThreshold": threshold,
        "alert": percent is not None and percent >= threshold * 100,
        "limitBytes": limit,
        "modelCount": len(models),
        "models": models,
        "checkedAt": _iso_ts(time.time()),
        "fullScanAgeSeconds": round(age, 1),
    }


def free_bytes() -> int | None:
    """Bytes an install may still write (statfs available, or the configured limit minus installs)."""
    settings = _settings()
    _total, available = volume_stats()
    if settings.weights_volume_limit_bytes is not None:
        used: int = sum(int(m["sizeBytes"]) for m in list_weights())
        room = max(0, int(settings.weights_volume_limit_bytes) - used)
        return room if available is None else min(room, available)
    return available


def storage_uri(target: str, settings: Settings | None = None) -> str:
    """`pvc://<WEIGHTS_PVC_NAME>/<target>` (empty when no PVC name is configured)."""
    settings = settings or _settings()
    return f"pvc://{settings.weights_pvc_name}/{target}" if settings.weights_pvc_name else ""


def inference_path(target: str, settings: Settings | None = None) -> str:
    """Where runtime pods see the install (`<INFERENCE_MODEL_ROOT>/<target>`)."""
    settings = settings or _settings()
    return f"{settings.inference_model_root.rstrip('/')}/{target}"


# -- active model guard ----------------------------------------------------------------------------
def active_storage_uri() -> tuple[str | None, str | None, str | None]:
    """(storageUri, modelId, note) of the active InferenceService; tolerant of a missing or down cluster."""
    try:
        from portal.services import cluster as cluster_service

        getter: Callable[..., Any] | None = getattr(cluster_service, "get_active", None)
        if getter is None:
            import importlib

            module = importlib.import_module("portal.services.activation")
            getter = getattr(module, "get_active", None)
        if getter is None:
            return None, None, "the active model could not be checked (no cluster integration)"
        active = getter()
    except Exception as exc:  # the guard must not make deletes depend on the cluster being up
        reason = exc.message if isinstance(exc, PortalError) else type(exc).__name__
        return None, None, f"which install the active model uses is unknown ({reason})"
    return _storage_from_active(active)


def _storage_from_active(active: Any) -> tuple[str | None, str | None, str | None]:
    if not active:
        return None, None, None
    obj = active
    if isinstance(obj, dict) and "inferenceservice" in obj:
        obj = obj["inferenceservice"]
    if not isinstance(obj, dict):
        return None, None, None
    if "spec" in obj:
        meta = obj.get("metadata") or {}
        model_id = (meta.get("annotations") or {}).get("model-manager/model-id")
        uri = (((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri")
        return uri, model_id, None
    return obj.get("storageUri"), obj.get("modelId") or obj.get("id"), None


def _deployment_using(relative: str) -> dict[str, Any] | None:
    """The first portal deployment whose storageUri uses these weights: every deployment's weights are guarded."""
    from portal.services.deployments import deployed_models

    try:
        models = deployed_models()
    except PortalError:  # like the active check: a down cluster view must not block deletes
        return None
    return next((m for m in models if _uri_uses(m.get("storageUri"), relative)), None)


def _uri_uses(uri: str | None, relative: str) -> bool:
    if not uri or not uri.startswith("pvc://"):
        return False
    rest = uri[len("pvc://") :]
    _claim, _, path = rest.partition("/")
    path = path.strip("/")
    return path == relative or path.startswith(relative + "/") or relative.startswith(path + "/")


def delete_weights(
    raw_name: str,
    *,
    actor: str,
    force: bool = False,
    active: tuple[str | None, str | None] | None = None,
) -> dict[str, Any]:
    """Remove one install (never outside the root, never reserved); 409 without force when the active model uses it."""
    relative = safe_relative(raw_name)
    root = storage_root().resolve()
    path = resolve_inside(relative, root)
    if not path.is_dir():
        raise NotFound(f"model weights not found: {relative}", code="weights_not_found", details={"name": relative})
    note = None
    if active is None:
        uri, model_id, note = active_storage_uri()
    else:
        uri, model_id = active
    if _uri_uses(uri, relative) and not force:
        raise Conflict(
            f"the active model {model_id or '(unknown)'} uses these weights ({uri}); "
            "deactivate it first or pass force=true",
            code="weights_in_use",
            details={"name": relative, "modelId": model_id, "storageUri": uri},
        )
    other = _deployment_using(relative) if active is None and not force else None
    if other is not None:
        raise Conflict(
            f"deployment {other['deployment']} serves {other['modelId'] or '(unknown)'} from these weights "
            f"({other['storageUri']}); delete or switch that deployment first, or pass force=true",
            code="weights_in_use",
            details={"name": relative, **other},
        )
    marker = read_marker(path)
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)
    parent = path.parent
    while parent != root and parent.is_relative_to(root):
        try:
            parent.rmdir()  # only empty parents go; a sibling install keeps its org dir
        except OSError:
            break
        parent = parent.parent
    history.record(
        "weight_deleted",
        actor=actor,
        model_id=relative,
        metadata={"hfModelId": (marker or {}).get("modelId"), "forced": bool(force and uri)},
    )
    notify.volume_changed()
    result: dict[str, Any] = {"status": "success", "message": f"Deleted weights for {relative}", "name": relative}
    if note:
        result["warning"] = note
    return result


# -- install request ----------------------------------------------------------------------------------
def _hf_token() -> str | bool:
    # False stops huggingface_hub from picking up an ambient login on the server.
    return _settings().huggingface_api_token or False


def _hf_api() -> Any:
    from huggingface_hub import HfApi

    return HfApi(endpoint=_settings().hf_endpoint, token=_hf_token())


def _hub_error(exc: Exception, repo_id: str, revision: str | None) -> PortalError:
    """Map a huggingface_hub / transport error to our error with the right status."""
    import httpx2
    from huggingface_hub import errors as hf_errors

    token_hint = (
        "HUGGINGFACE_API_TOKEN is not set: set it to a token that has access to this repository"
        if not _settings().huggingface_api_token
        else "the configured HUGGINGFACE_API_TOKEN has no access to this repository: request access on the Hub"
    )
    details = {"hfModelId": repo_id, "revision": revision}
    if isinstance(exc, hf_errors.GatedRepoError):
        status = getattr(getattr(exc, "response", None), "status_code", 401)
        cls = Forbidden if status == 403 else Unauthorized
        return cls(f"{repo_id} is gated: {token_hint}", code="gated_repo", details=details)
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return NotFound(f"revision {revision!r} not found in {repo_id}", code="revision_not_found", details=details)
    if isinstance(exc, hf_errors.EntryNotFoundError | hf_errors.RemoteEntryNotFoundError):
        return NotFound(f"a file of {repo_id} is missing on the Hub", code="file_not_found", details=details)
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        status = getattr(getattr(exc, "response", None), "status_code", 404)
        if status == 401 and _settings().huggingface_api_token:
            return Unauthorized(f"{repo_id}: {token_hint}", code="hub_unauthorized", details=details)
        return NotFound(
            f"model not found on Hugging Face: {repo_id} (if it is private, {token_hint})",
            code="model_not_found",
            details=details,
        )
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            cls2 = Forbidden if status == 403 else Unauthorized
            return cls2(
                f"Hugging Face refused access to {repo_id}: {token_hint}", code="hub_unauthorized", details=details
            )
        if status == 503:
            return Unavailable(
                "Hugging Face is unavailable (503); try again later", code="hub_unavailable", details=details
            )
        return UpstreamError(f"Hugging Face answered an error ({status})", code="hub_error", details=details)
    if isinstance(exc, httpx2.TimeoutException):
        return Unavailable("Hugging Face did not answer in time", code="hub_unreachable", details=details)
    if isinstance(exc, httpx2.TransportError | OSError):
        return Unavailable(
            f"Hugging Face is unreachable: {type(exc).__name__}", code="hub_unreachable", details=details
        )
    return UpstreamError(f"Hugging Face request failed: {type(exc).__name__}", code="hub_error", details=details)


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
    api = _hf_api()
    try:
        info = api.model_info(repo_id, revision=revision or None, files_metadata=True, timeout=20)
    except Exception as exc:
        raise _hub_error(exc, repo_id, revision) from exc
    sha = info.sha
    if not sha:
        raise UpstreamError("Hugging Face did not return a commit sha", code="hub_error")
    manifest = []
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
        _hashes_from_tree(api, repo_id, sha, manifest)
    # The model API shows gated repos to anyone: a HEAD on a file tells whether we may download it, and
    # its headers carry the hashes the other sources lacked.
    missing = [f for f in manifest if not f["sha256"]]
    _hashes_from_resolve(repo_id, sha, missing or [min(manifest, key=lambda f: f["size"])], revision)
    return sha, manifest


def unverified_files(manifest: list[dict[str, Any]]) -> list[str]:
    """Names of the files the Hub gave no hash for (neither sha256 nor git blob id)."""
    return [f["name"] for f in manifest if not (f.get("sha256") or f.get("gitOid"))]


def _hashes_from_tree(api: Any, repo_id: str, sha: str, manifest: list[dict[str, Any]]) -> None:
    """Fill missing sha256 from the tree API's `lfs.oid` (a mirror may leave `lfs` out of model info)."""
    wanted = {f["name"]: f for f in manifest if not f["sha256"]}
    try:
        for entry in api.list_repo_tree(repo_id, revision=sha, recursive=True):
            spec = wanted.get(getattr(entry, "path", ""))
            lfs = getattr(entry, "lfs", None)
            if spec is not None and lfs is not None and _SHA256_HEX.fullmatch(str(lfs.sha256 or "")):
                spec["sha256"] = lfs.sha256
    except Exception as exc:  # a second source only: the resolve headers are still asked
        log.info("tree listing of %s@%s gave no hashes: %s", repo_id, sha, type(exc).__name__)


def _hashes_from_resolve(repo_id: str, sha: str, files: list[dict[str, Any]], revision: str | None) -> None:
    """HEAD each file's resolve URL (no redirect followed): access check plus `X-Linked-Etag` / `ETag`."""
    from huggingface_hub import get_session, hf_hub_url
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status  # type: ignore[attr-defined]

    endpoint = _settings().hf_endpoint
    headers = build_hf_headers(token=_hf_token(), library_name="model-manager")
    headers["Accept-Encoding"] = "identity"

    def probe(spec: dict[str, Any]) -> None:
        url = hf_hub_url(repo_id, spec["name"], revision=sha, endpoint=endpoint)
        response = get_session().head(url, headers=headers, follow_redirects=False, timeout=20)
        hf_raise_for_status(response)
        linked = _etag(response.headers.get("X-Linked-Etag"))
        etag = _etag(response.headers.get("ETag"))
        if linked and _SHA256_HEX.fullmatch(linked):
            spec["sha256"] = linked
        elif response.status_code == 200 and etag and _SHA256_HEX.fullmatch(etag):
            spec["sha256"] = etag  # an LFS file served directly under its sha256
        elif response.status_code == 200 and etag and _GIT_OID_HEX.fullmatch(etag) and not spec["sha256"]:
            spec["gitOid"] = etag  # served directly (not redirected to LFS storage): the content's git blob id

    try:
        with ThreadPoolExecutor(max_workers=min(HASH_PROBE_THREADS, len(files)), thread_name_prefix="hf-head") as pool:
            list(pool.map(probe, files))
    except Exception as exc:
        raise _hub_error(exc, repo_id, revision) from exc


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
            details={"job": running.to_dict(), "jobUrl": f"/jobs/{running.id}"},
        )
    if dest.exists() and not overwrite:
        raise Conflict(
            f"weights already exist for {relative}; pass overwrite=true to replace them",
            code="weights_exist",
            details={"target": relative},
        )
    sha, manifest = resolve_files(repo_id, revision, patterns)
    settings = _settings()
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
        "status": "queued",
        "job": job.to_dict(),
        "jobUrl": f"/jobs/{job.id}",
        "weightsInstallStatus": f"/weights/install/status/{job.id}",
        "target": relative,
        "revision": sha,
        "storageUri": storage_uri(relative, settings),
        "inferenceModelPath": inference_path(relative, settings),
    }


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
    started = time.monotonic()
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
        _record_failure(job, str(exc), started)
    except BaseException as exc:
        stop.set()
        from rq.timeouts import JobTimeoutException

        if isinstance(exc, JobTimeoutException):
            seconds = payload.get("timeoutSeconds")
            _record_failure(job, f"timed out after {seconds} s (WEIGHTS_INSTALL_TIMEOUT)", started)
            raise
        if isinstance(exc, Exception):
            log.exception("install job %s failed", job_id)
            _record_failure(job, f"install failed: {type(exc).__name__}: {exc}", started)
            return
        raise
    else:
        JOB_STATUS.labels(JOB_TYPE, "completed").inc()


def _record_failure(job: Job, reason: str, started: float) -> None:
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
    settings = _settings()
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
        _hf_token(),
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
    age = _settings().staging_max_age if max_age is None else max_age
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


def iter_install_jobs(limit: int = 10) -> Iterator[Job]:
    """Recent install jobs, newest first (for the Weights page)."""
    rows, _ = job_service.list_jobs(limit=limit, job_type=JOB_TYPE)
    yield from rows
