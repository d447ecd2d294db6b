"""Listing and usage of the weights volume: one parallel scandir pass, cached per directory by mtime."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app

from portal.errors import (
    NotFound,
)
from portal.extensions import current_settings
from portal.services.weights.paths import (
    MARKER,
    human_size,
    inference_path,
    is_reserved,
    is_staging_name,
    resolve_inside,
    safe_relative,
    storage_root,
    storage_uri,
)

log = logging.getLogger(__name__)

SCAN_THREADS = 2  # usage/list walk: lstat releases the GIL; 2 measured best on 2 cores (3-4 slower)


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


_USAGE_CACHES: dict[str, _UsageCache] = {}  # one per weights root (tests run several apps in one process)


def _usage_cache() -> _UsageCache:
    return _USAGE_CACHES.setdefault(str(storage_root()), _UsageCache())


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
    settings = current_settings()
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
    return _list(_usage_cache())


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
    cache = _usage_cache()
    with cache.lock:
        cache.dirs = fresh.dirs
        cache.full_scan_at = time.monotonic()
    return results


def _cached_listing() -> tuple[list[dict[str, Any]], float]:
    """The listing from the cache (changed dirs re-read) and the age in seconds of its oldest full walk.

    The first read walks the volume; after that a full re-walk starts in a background thread once the
    last one is older than WEIGHTS_USAGE_REFRESH, and this read answers from the validated cache meanwhile.
    """
    interval = current_settings().weights_usage_refresh
    cache = _usage_cache()
    if not cache.full_scan_at:
        return refresh_usage(), 0.0
    age = time.monotonic() - cache.full_scan_at
    if age >= interval and not cache.refreshing:
        cache.refreshing = True
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def refresh() -> None:
            try:
                with app.app_context():
                    refresh_usage()
            finally:
                cache.refreshing = False

        threading.Thread(target=refresh, name="weights-usage-refresh", daemon=True).start()
    return _list(cache), age


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
    settings = current_settings()
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
    settings = current_settings()
    _total, available = volume_stats()
    if settings.weights_volume_limit_bytes is not None:
        used: int = sum(int(m["sizeBytes"]) for m in list_weights())
        room = max(0, int(settings.weights_volume_limit_bytes) - used)
        return room if available is None else min(room, available)
    return available
