"""Weights paths: the volume root, safe user-supplied names, reserved and staging names, storage URIs."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from portal.config import Settings
from portal.errors import (
    InvalidInput,
)
from portal.extensions import current_settings

log = logging.getLogger(__name__)

MARKER = ".model-manager"
RESERVED_NAMES = frozenset({".hf-cache", "modules", "lost+found"})
PARTIAL_SUFFIX = ".partial"  # staging of an older release (one per target); still reserved and swept
PARTIAL_INFIX = ".partial-"  # <target>.partial-<key of repo and commit>: the staging of one install
OLD_INFIX = ".old-"
_SEGMENT_JUNK = re.compile(r"[^A-Za-z0-9._-]+")


# -- paths -------------------------------------------------------------------------------------------
def storage_root() -> Path:
    """The weights volume's root directory."""
    return Path(current_settings().weights_storage_path)


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


PVC_SCHEME = "pvc://"


@dataclass(frozen=True)
class PvcUri:
    """`pvc://<claim>/<path>`: a PersistentVolumeClaim and a path inside it (no leading/trailing slash)."""

    claim: str
    path: str


def parse_pvc(uri: str | None) -> PvcUri | None:
    """The claim and path of a `pvc://` storage URI (either may be empty), or None for any other scheme."""
    if not uri or not uri.startswith(PVC_SCHEME):
        return None
    claim, _, path = uri[len(PVC_SCHEME) :].partition("/")
    return PvcUri(claim, path.strip("/"))


def pvc_uri(claim: str, path: str) -> str:
    """`pvc://<claim>/<path>`."""
    return f"{PVC_SCHEME}{claim}/{path.strip('/')}"


def storage_uri(target: str, settings: Settings | None = None) -> str:
    """`pvc://<WEIGHTS_PVC_NAME>/<target>` (empty when no PVC name is configured)."""
    settings = settings or current_settings()
    return pvc_uri(settings.weights_pvc_name, target) if settings.weights_pvc_name else ""


def inference_path(target: str, settings: Settings | None = None) -> str:
    """Where runtime pods see the install (`<INFERENCE_MODEL_ROOT>/<target>`)."""
    settings = settings or current_settings()
    return f"{settings.inference_model_root.rstrip('/')}/{target}"


def local_path(settings: Settings, uri: str) -> Path | None:
    """`pvc://<WEIGHTS_PVC_NAME>/<path>` → `<WEIGHTS_STORAGE_PATH>/<path>`; None for other URIs or claims, or
    for a path that would leave the root (`..`, absolute, a symlink pointing out)."""
    parsed = parse_pvc(uri)
    if parsed is None or parsed.claim != settings.weights_pvc_name or not parsed.path:
        return None
    try:
        _refuse_escape(parsed.path)
        return resolve_inside(parsed.path, Path(settings.weights_storage_path))
    except InvalidInput:
        return None


def uri_uses(uri: str | None, relative: str) -> bool:
    """True when a `pvc://` storage URI points at the install `relative`, inside it or at a parent of it."""
    parsed = parse_pvc(uri)
    if parsed is None:
        return False
    path = parsed.path
    return path == relative or path.startswith(relative + "/") or relative.startswith(path + "/")
