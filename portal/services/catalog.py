"""The model catalog: loads `*.json` entries from the (git-synced) catalog directory and caches them."""

from __future__ import annotations

import copy
import errno
import gc
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, Protocol

import orjson

from portal.config import Settings
from portal.errors import Conflict, InvalidInput, NotFound
from portal.services.catalog_entry import CatalogEntry, Issue, entry_to_json, fast_entry, load_entry, parse_entry

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1024 * 1024
CatalogStatus = Literal["live", "missing", "empty"]
# A git-sync swap may delete the old worktree while we read it; a load that trips over a vanished
# file starts again from a fresh `realpath`, a few times at most.
_LOAD_ATTEMPTS = 3


class SharedGeneration(Protocol):
    """A counter shared by every process serving the catalog (Redis in production)."""

    def get(self) -> int:
        """The current shared generation (0 when never bumped)."""
        ...

    def bump(self) -> int:
        """Increment the shared generation and return the new value."""
        ...


class InMemorySharedGeneration:
    """A process-local SharedGeneration, for tests and single-process runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def get(self) -> int:
        """The current value."""
        with self._lock:
            return self._value

    def bump(self) -> int:
        """Increment and return the new value."""
        with self._lock:
            self._value += 1
            return self._value


@dataclass(frozen=True)
class DirectoryLoad:
    """The result of reading one catalog directory once."""

    entries: dict[str, CatalogEntry]
    issues: list[Issue]
    real_dir: str
    fingerprint: str
    files: int


@dataclass(frozen=True)
class CatalogSnapshot:
    """An immutable view of the catalog at one load; replaced as a whole, never edited."""

    entries: Mapping[str, CatalogEntry]
    issues: tuple[Issue, ...]
    generation: int
    fingerprint: str
    loaded_at: datetime
    status: CatalogStatus
    message: str
    models_dir: str
    source_dir: str
    shared_generation: int = 0
    files: int = 0

    @property
    def errors(self) -> int:
        """Number of error issues."""
        return sum(1 for issue in self.issues if issue.severity == "error")

    @property
    def warnings(self) -> int:
        """Number of warning issues."""
        return sum(1 for issue in self.issues if issue.severity == "warning")


class _Vanished(Exception):
    """A file or the directory disappeared mid-load (a git-sync swap); the load is retried."""


def _scan(real_dir: str | int) -> list[tuple[str, int, int]]:
    """(name, size, mtime_ns) of every `*.json` file directly in `real_dir` (a path or an open
    directory descriptor), in lexical order."""
    found: list[tuple[str, int, int]] = []
    with os.scandir(real_dir) as it:
        for item in it:
            # Dot files are editor/temp files (including our own atomic-write temp files).
            if not item.name.endswith(".json") or item.name.startswith("."):
                continue
            try:
                if not item.is_file():
                    continue
                st = item.stat()
            except FileNotFoundError:
                continue
            found.append((item.name, st.st_size, st.st_mtime_ns))
    found.sort()
    return found


def _fingerprint(real_dir: str, files: list[tuple[str, int, int]]) -> str:
    digest = hashlib.sha256(real_dir.encode("utf-8", "surrogateescape"))
    for name, size, mtime_ns in files:
        digest.update(f"\0{name}\0{size}\0{mtime_ns}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def directory_fingerprint(models_dir: Path) -> str:
    """Fingerprint of the directory's real path and its `*.json` names, sizes and mtimes."""
    real_dir = os.path.realpath(models_dir)
    return _fingerprint(real_dir, _scan(real_dir))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_BOM = b"\xef\xbb\xbf"


def _count_strings(obj: dict[str, Any]) -> int:
    """Keys and string values in a validated entry: dicts nest in dicts or in lists of dicts, and
    lists hold dicts or strings, never lists."""
    count = len(obj)
    for value in obj.values():
        kind = type(value)
        if kind is str:
            count += 1
        elif kind is dict:
            count += _count_strings(value)
        elif kind is list:
            for item in value:
                if type(item) is str:
                    count += 1
                elif type(item) is dict:
                    count += _count_strings(item)
    return count


def _fast_read(raw: bytes) -> CatalogEntry | None:
    """The entry of a clean file without the (slow) full parser, or None to take the full path.

    orjson parses about three times faster than `json`; anything it refuses (invalid JSON or UTF-8,
    NaN, a second BOM, control characters in strings, ...) goes to the full path, which re-parses
    with `json` for the exact error, line and column. orjson reads integers beyond 64 bits as floats
    where `json` keeps ints, but `fast_entry` accepts a float only in (0, 1], which such a number
    never is, so that difference cannot reach an entry.

    orjson keeps the last of duplicate keys silently, so duplicates are found by counting: without
    a backslash in the text every `"` delimits a string (UTF-8 never uses the byte inside a
    multi-byte character), so the text holds two per key and per string value. A repeated key
    drops at least one key string from the parsed data, making the counts differ; equal counts
    mean no key was given twice, whatever the spacing.
    """
    if raw.startswith(_BOM):
        raw = raw[3:]  # what decoding with "utf-8-sig" strips
    if b"\\" in raw:
        return None  # escapes would break the count below: let the full parser decide
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    entry = fast_entry(data)
    if entry is None or 2 * _count_strings(entry) != raw.count(b'"'):
        return None
    return entry


def _read_file(dir_fd: int, name: str, size: int) -> bytes:
    """The bytes of one file, at most MAX_FILE_BYTES + 1 of them: one open and, usually, one read.

    `size` comes from the scan; one read of size + 1 bytes returning exactly `size` bytes is the
    whole file in the common case. A file that changed since the scan is read on to its end
    (or to one byte past the limit), as `open().read(MAX_FILE_BYTES + 1)` would.
    """
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        raw = os.read(fd, size + 1)
        if len(raw) == size:
            return raw
        parts = [raw]
        total = len(raw)
        while total <= MAX_FILE_BYTES:
            more = os.read(fd, MAX_FILE_BYTES + 1 - total)
            if not more:
                break
            parts.append(more)
            total += len(more)
        return b"".join(parts)
    finally:
        os.close(fd)


def _read_entry(dir_fd: int, name: str, size: int) -> tuple[CatalogEntry | None, list[Issue]]:
    """Parse one file; every problem becomes an issue naming the file."""

    def issue(message: str, line: int | None = None, fld: str | None = None) -> list[Issue]:
        return [Issue(name, line, fld, message, "error")]

    if size > MAX_FILE_BYTES:
        return None, issue(f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes (1 MiB)")
    try:
        raw = _read_file(dir_fd, name, size)
    except FileNotFoundError as err:
        raise _Vanished(name) from err
    except OSError as err:
        return None, issue(f"cannot read file: {err.strerror or err}")
    if len(raw) > MAX_FILE_BYTES:
        return None, issue(f"file is larger than the limit of {MAX_FILE_BYTES} bytes (1 MiB)")

    fast = _fast_read(raw)
    if fast is not None:
        return fast, []
    return _full_read(name, raw, issue)


def _full_read(name: str, raw: bytes, issue: Callable[..., list[Issue]]) -> tuple[CatalogEntry | None, list[Issue]]:
    """The full (slow) path: `json` for exact error positions, duplicate keys, the marshmallow parser."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, issue("file is not UTF-8 text", raw[: err.start].count(b"\n") + 1)

    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:
                duplicates.append(key)
            seen[key] = value
        return seen

    try:
        data = json.loads(text, object_pairs_hook=pairs, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        return None, issue(f"invalid JSON: {err.msg} (line {err.lineno}, column {err.colno})", err.lineno)
    except (ValueError, RecursionError) as err:
        return None, issue(f"invalid JSON: {err}")
    entry, found = parse_entry(data)
    issues = [Issue(name, i.line, i.field, i.message, i.severity) for i in found]
    issues.extend(
        Issue(name, None, key, "key appears more than once in an object; the last value wins", "warning")
        for key in dict.fromkeys(duplicates)
    )
    if any(i.severity == "error" for i in issues):
        return None, issues
    return entry, issues


def load_directory(models_dir: Path) -> DirectoryLoad:
    """Read every entry of a catalog directory; raise OSError when the directory is missing."""
    for _attempt in range(_LOAD_ATTEMPTS):
        # Resolve once and read everything through the resolved path, so a symlink swap during the
        # load can never mix files of two generations.
        real_dir = os.path.realpath(models_dir)
        if not os.path.isdir(real_dir):
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(models_dir))
        try:
            return _load_real(real_dir)
        except _Vanished:
            continue
    raise FileNotFoundError(errno.ENOENT, "the directory kept changing while loading", str(models_dir))


def _load_real(real_dir: str) -> DirectoryLoad:
    # Tens of thousands of new, long-lived containers make the cyclic GC run over and over during a
    # load (about a third of the time for 10,000 files); JSON data has no cycles to collect.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _load_files(real_dir)
    finally:
        if was_enabled:
            gc.enable()


def _load_files(real_dir: str) -> DirectoryLoad:
    # Scan and open every file relative to one descriptor of the resolved directory: the same
    # directory throughout (even if a swap renames or replaces paths meanwhile), and no path joins.
    try:
        dir_fd = os.open(real_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _Vanished(real_dir) from None
    try:
        return _load_from(real_dir, dir_fd)
    finally:
        os.close(dir_fd)


def _load_from(real_dir: str, dir_fd: int) -> DirectoryLoad:
    try:
        files = _scan(dir_fd)
    except FileNotFoundError:
        raise _Vanished(real_dir) from None
    entries: dict[str, CatalogEntry] = {}
    origin: dict[str, str] = {}
    issues: list[Issue] = []
    for name, size, _mtime in files:
        entry, found = _read_entry(dir_fd, name, size)
        issues.extend(found)
        if entry is None:
            continue
        entry_id = entry["id"]
        if entry_id in entries:
            issues.append(
                Issue(
                    name,
                    None,
                    "id",
                    f'duplicate id "{entry_id}": already defined in {origin[entry_id]}; this file is ignored',
                    "error",
                )
            )
            continue
        entries[entry_id] = entry
        origin[entry_id] = name
    ordered = dict(sorted(entries.items()))
    return DirectoryLoad(ordered, issues, real_dir, _fingerprint(real_dir, files), len(files))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Catalog:
    """The cached catalog of one process; thread-safe, reloads only when the files changed."""

    def __init__(
        self,
        settings: Settings,
        *,
        shared: SharedGeneration | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._models_dir = settings.catalog_models_dir
        self._interval = settings.catalog_refresh_interval
        self._shared = shared
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: CatalogSnapshot | None = None
        self._checked_at = float("-inf")
        self._generation = 0
        self._shared_seen = 0

    @property
    def models_dir(self) -> Path:
        """The configured models directory (possibly through symlinks)."""
        return self._models_dir

    def snapshot(self, force: bool = False) -> CatalogSnapshot:
        """The current snapshot, reloaded first when forced, changed on disk or bumped elsewhere."""
        current = self._snapshot
        if force or current is None:
            with self._lock:
                if force or self._snapshot is None:
                    return self._reload(bump=force)
                return self._snapshot
        # Readers never wait for another thread's check or reload: they get the current snapshot.
        if not self._lock.acquire(blocking=False):
            return current
        try:
            return self._refresh_if_due()
        finally:
            self._lock.release()

    def refresh(self) -> CatalogSnapshot:
        """Reload unconditionally and tell the other processes (POST /refresh)."""
        return self.snapshot(force=True)

    def _refresh_if_due(self) -> CatalogSnapshot:
        snap = self._snapshot
        assert snap is not None
        shared = self._shared_get()
        if shared is not None and shared > self._shared_seen:
            return self._reload(bump=False)
        now = self._clock()
        if now - self._checked_at < self._interval:
            return snap
        self._checked_at = now
        try:
            fingerprint = directory_fingerprint(self._models_dir)
        except OSError:
            fingerprint = "missing"
        if fingerprint != snap.fingerprint:
            return self._reload(bump=False)
        return snap

    def _shared_get(self) -> int | None:
        if self._shared is None:
            return None
        try:
            return self._shared.get()
        except Exception:  # Redis down must not take the catalog down with it.
            log.warning("catalog: cannot read the shared generation", exc_info=True)
            return None

    def _reload(self, *, bump: bool) -> CatalogSnapshot:
        # Read the shared value before loading: a bump that lands during the load triggers another.
        shared = self._shared_get()
        previous = self._snapshot
        models_dir = str(self._models_dir)
        try:
            loaded = load_directory(self._models_dir)
        except OSError as err:
            snap = self._missing_snapshot(previous, err)
        else:
            if bump and self._shared is not None:
                try:
                    shared = self._shared.bump()
                except Exception:
                    log.warning("catalog: cannot bump the shared generation", exc_info=True)
            status: CatalogStatus = "live" if loaded.entries else "empty"
            errors = sum(1 for i in loaded.issues if i.severity == "error")
            warnings = len(loaded.issues) - errors
            if loaded.entries:
                message = f"{len(loaded.entries)} model(s) loaded from {models_dir}"
            else:
                message = f"no valid catalog entries in {models_dir} ({loaded.files} file(s) read)"
            if errors or warnings:
                message += f"; {errors} error(s), {warnings} warning(s)"
            self._generation += 1
            snap = CatalogSnapshot(
                entries=MappingProxyType(loaded.entries),
                issues=tuple(loaded.issues),
                generation=self._generation,
                fingerprint=loaded.fingerprint,
                loaded_at=datetime.now(UTC),
                status=status,
                message=message,
                models_dir=models_dir,
                source_dir=loaded.real_dir,
                shared_generation=shared or 0,
                files=loaded.files,
            )
        if shared is not None:
            self._shared_seen = max(self._shared_seen, shared)
        self._checked_at = self._clock()
        self._snapshot = snap
        return snap

    def _missing_snapshot(self, previous: CatalogSnapshot | None, err: OSError) -> CatalogSnapshot:
        models_dir = str(self._models_dir)
        reason = err.strerror or str(err)
        if previous is not None and previous.entries:
            message = (
                f"catalog directory {models_dir} is unavailable ({reason}; git-sync not ready?); "
                f"serving the last good catalog loaded at {_iso(previous.loaded_at)}"
            )
            entries, issues = previous.entries, previous.issues
        else:
            message = f"catalog directory {models_dir} is unavailable ({reason}; git-sync not ready?)"
            entries, issues = MappingProxyType({}), ()
        log.warning("catalog: %s", message)
        self._generation += 1
        return CatalogSnapshot(
            entries=entries,
            issues=issues,
            generation=self._generation,
            fingerprint="missing",
            loaded_at=previous.loaded_at if previous is not None else datetime.now(UTC),
            status="missing",
            message=message,
            models_dir=models_dir,
            source_dir=previous.source_dir if previous is not None else models_dir,
            shared_generation=self._shared_seen,
            files=previous.files if previous is not None else 0,
        )

    # --- queries ---------------------------------------------------------------------------------

    def list_entries(self, q: str | None = None) -> list[CatalogEntry]:
        """Entries sorted by id; `q` keeps those whose id, displayName or hfModelId contains it."""
        entries = list(self.snapshot().entries.values())
        needle = (q or "").strip().casefold()
        if needle:
            entries = [
                e
                for e in entries
                if any(needle in str(e.get(k, "")).casefold() for k in ("id", "displayName", "hfModelId"))
            ]
        # Copies: snapshot entries are shared by every request and must stay untouched.
        return [copy.deepcopy(e) for e in entries]

    def get_entry(self, entry_id: str) -> CatalogEntry:
        """One entry by id, or NotFound(code=model_not_found)."""
        entry = self.snapshot().entries.get(entry_id)
        if entry is None:
            raise NotFound("model not found", code="model_not_found", details={"id": entry_id})
        return copy.deepcopy(entry)

    def status(self) -> dict[str, Any]:
        """The body of `GET /catalog/status`."""
        snap = self.snapshot()
        return {
            "status": snap.status,
            "message": snap.message,
            "modelsDir": snap.models_dir,
            "sourceDir": snap.source_dir,
            "count": len(snap.entries),
            "files": snap.files,
            "errors": snap.errors,
            "warnings": snap.warnings,
            "issues": [issue.to_dict() for issue in snap.issues],
            "generation": snap.generation,
            "sharedGeneration": snap.shared_generation,
            "loadedAt": _iso(snap.loaded_at),
            "fingerprint": snap.fingerprint,
        }


# --- writing -------------------------------------------------------------------------------------


def entry_file_text(entry: Mapping[str, Any]) -> str:
    """The file content for an entry: canonical JSON, 2-space indent, trailing newline."""
    return json.dumps(entry_to_json(entry), indent=2, ensure_ascii=False) + "\n"


def _ids_in_directory(real_dir: str) -> dict[str, str]:
    """id → file name for every readable entry file (a cheap scan: no validation)."""
    found: dict[str, str] = {}
    try:
        files = _scan(real_dir)
    except OSError:
        return found
    for name, size, _mtime in files:
        if size > MAX_FILE_BYTES:
            continue
        try:
            data = json.loads(Path(real_dir, name).read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            found.setdefault(data["id"], name)
    return found


def write_entry(settings: Settings, entry: Mapping[str, Any], *, overwrite: bool = False) -> Path:
    """Validate and atomically write `<models_dir>/<id>.json`; Conflict when the id already exists."""
    clean = load_entry(dict(entry))
    entry_id = clean["id"]
    models_dir = settings.catalog_models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    real_dir = os.path.realpath(models_dir)
    target = Path(real_dir, f"{entry_id}.json")
    # Belt and braces: the id pattern already forbids separators, but the path must never escape.
    if os.path.dirname(os.path.realpath(target)) != real_dir:
        raise InvalidInput("unsafe catalog id", code="invalid_catalog_entry", details={"id": entry_id})
    owner = _ids_in_directory(real_dir).get(entry_id)
    if owner is not None and owner != target.name:
        raise Conflict(
            f'catalog id "{entry_id}" is already defined in {owner}',
            code="catalog_entry_exists",
            details={"id": entry_id, "file": owner},
        )
    payload = entry_file_text(clean).encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{entry_id}.", suffix=".tmp", dir=real_dir)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_new(tmp, target, entry_id)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    _fsync_dir(real_dir)
    return Path(models_dir, target.name)


def _link_new(tmp: str, target: Path, entry_id: str) -> None:
    """Publish `tmp` as `target` only if `target` does not exist (atomic no-clobber)."""
    conflict = Conflict(
        f'catalog id "{entry_id}" already exists',
        code="catalog_entry_exists",
        details={"id": entry_id, "file": target.name},
    )
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise conflict from None
    except OSError:
        # Some filesystems have no hard links; fall back to check-then-rename.
        if os.path.lexists(target):
            raise conflict from None
        os.replace(tmp, target)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- one Catalog per app, shared generation in Redis ----------------------------------------------

SHARED_GENERATION_KEY = "model-manager:catalog:generation"
# After a Redis failure, stop asking for a while: a dead Redis must not add its connect timeout to
# every catalog read.
_REDIS_BACKOFF = 5.0


class RedisSharedGeneration:
    """A SharedGeneration in Redis (INCR on refresh), so every gunicorn worker reloads together."""

    def __init__(self, connection: Callable[[], Any], key: str = SHARED_GENERATION_KEY) -> None:
        self._connection = connection
        self._key = key
        self._last = 0
        self._down_until = 0.0
        self._lock = threading.Lock()

    def _usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, what: str) -> None:
        self._down_until = time.monotonic() + _REDIS_BACKOFF
        log.warning("catalog: cannot %s the shared generation in Redis; using the local one", what, exc_info=True)

    def get(self) -> int:
        """The shared generation (the last known value while Redis is unreachable)."""
        if not self._usable():
            return self._last
        try:
            raw = self._connection().get(self._key)
        except Exception:  # any Redis failure: the catalog keeps working on its own
            self._failed("read")
            return self._last
        with self._lock:
            self._last = int(raw or 0)
            return self._last

    def bump(self) -> int:
        """Increment the shared generation; on failure return the last known value plus one."""
        if self._usable():
            try:
                value = int(self._connection().incr(self._key))
            except Exception:
                self._failed("bump")
            else:
                with self._lock:
                    self._last = value
                    return value
        with self._lock:
            self._last += 1
            return self._last


def catalog_for(app: Any) -> Catalog:
    """The app's Catalog (created on first use with a Redis-backed shared generation)."""
    existing = app.extensions.get("catalog")
    if isinstance(existing, Catalog):
        return existing
    with _catalog_lock:
        existing = app.extensions.get("catalog")
        if not isinstance(existing, Catalog):
            from portal.extensions import redis_holder

            holder = redis_holder(app)
            existing = Catalog(app.config["SETTINGS"], shared=RedisSharedGeneration(lambda: holder.connection))
            app.extensions["catalog"] = existing
        return existing


_catalog_lock = threading.Lock()


def get_catalog() -> Catalog:
    """The current app's Catalog."""
    from flask import current_app

    return catalog_for(current_app._get_current_object())  # type: ignore[attr-defined]


_json_cache: weakref.WeakKeyDictionary[Catalog, tuple[CatalogSnapshot, bytes]] = weakref.WeakKeyDictionary()
_json_cache_lock = threading.Lock()


def entries_json(catalog: Catalog, q: str | None = None) -> bytes:
    """`GET /models` as JSON bytes: the unfiltered list is serialised once per snapshot."""
    snap = catalog.snapshot()
    needle = (q or "").strip()
    if needle:
        return json.dumps(catalog.list_entries(needle), ensure_ascii=False).encode("utf-8")
    cached = _json_cache.get(catalog)
    if cached is not None and cached[0] is snap:
        return cached[1]
    # Entries in a snapshot are never mutated, so serialising them directly (no copy) is safe.
    body = json.dumps(list(snap.entries.values()), ensure_ascii=False).encode("utf-8")
    with _json_cache_lock:
        _json_cache[catalog] = (snap, body)
    return body


def catalog_info(settings: Settings) -> dict[str, Any]:
    """The `catalog` section of /system/info: where, how many, and how healthy."""
    section: dict[str, Any] = {"root": str(settings.model_catalog_root), "modelsDir": str(settings.catalog_models_dir)}
    try:
        status = get_catalog().status()
    except Exception as exc:  # the info page must render even when the catalog cannot
        log.warning("catalog: status for /system/info failed", exc_info=True)
        section.update(status="error", message=f"{type(exc).__name__}: {exc}")
        return {"catalog": section}
    for key in ("status", "message", "count", "files", "errors", "warnings", "loadedAt", "generation"):
        section[key] = status[key]
    section["refreshInterval"] = settings.catalog_refresh_interval
    return {"catalog": section}


def create_entry(entry: Mapping[str, Any], *, actor: str) -> Path:
    """Add a new entry file to the catalog, make every worker see it, and record who did it."""
    from portal.extensions import current_settings
    from portal.services import history

    path = write_entry(current_settings(), entry, overwrite=False)
    get_catalog().refresh()
    history.record(
        "catalog_entry_created",
        actor=actor,
        model_id=str(entry.get("id") or ""),
        metadata={"file": path.name, "hfModelId": entry.get("hfModelId")},
    )
    return path
