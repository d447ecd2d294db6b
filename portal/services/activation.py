"""Runtime control of the one managed InferenceService: activate, deactivate, status, dry run, rollback.

Exactly one InferenceService (`ACTIVE_NAMESPACE`/`ACTIVE_INFERENCESERVICE_NAME`) is managed; activating
a model replaces its spec (reference §4.3-§4.5). Activations and deactivations are serialized by a
Redis lock so two requests at the same time both get an answer, the object ends up as the later one
left it, and history records them in the order they were applied. Nothing is recorded as done when
it was not: a failure records `model_activation_failed` with the error instead.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
import requests
from flask import current_app
from kubernetes.client.exceptions import ApiException

from portal.config import Settings
from portal.errors import Conflict, InvalidInput, PortalError, Unavailable
from portal.extensions import current_settings, redis_holder
from portal.schemas.runtime import READINESS_URL_PATTERN
from portal.services import cluster_cache, fit_measurement, history, notify
from portal.services.catalog import Catalog, directory_fingerprint, get_catalog
from portal.services.cluster import (
    ISVC_PLURAL,
    KSERVE_GROUP,
    KSERVE_VERSION,
    Cluster,
    api_error,
    get_cluster,
    status_body,
    status_message,
)
from portal.services.manifests import (
    MANIFEST_HASH_ANNOTATION,
    MODEL_ID_ANNOTATION,
    manifest_hash,
    render_args,
    render_inference_service,
)

log = logging.getLogger(__name__)
_READINESS_URL = re.compile(READINESS_URL_PATTERN)

LOCK_KEY = "model-manager:activation-lock"
# Long enough for a few slow cluster calls; a crashed holder frees the lock after this anyway.
LOCK_TIMEOUT = 90.0
LOCK_WAIT = 30.0
MAX_PROBE_TIMEOUT = 30
DEFAULT_PROBE_TIMEOUT = 10
PREVIEW_BYTES = 512
# Ready=False reasons after which KServe will not make progress on its own: the portal stops polling.
FAILED_REASONS = frozenset(
    {
        "Unschedulable",
        "RuntimeNotRecognized",
        "NoSupportingRuntime",
        "RuntimeDisabled",
        "CreateContainerConfigError",
        "InvalidSpec",
        "ModelLoadFailed",
        "BlockedByFailedLoad",
        "RevisionFailed",
        "ImagePullBackOff",
        "ErrImagePull",
        "CrashLoopBackOff",
        "Stopped",
    }
)
_WARNING_RE = re.compile(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Target:
    """Where the managed InferenceService lives."""

    namespace: str
    name: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Target:
        """The configured namespace and name."""
        return cls(settings.active_namespace, settings.active_inferenceservice_name)

    @property
    def label(self) -> str:
        """`namespace/name`, for messages."""
        return f"{self.namespace}/{self.name}"


# --- raw InferenceService calls ------------------------------------------------------------------


def _read(cluster: Cluster, target: Target) -> dict[str, Any] | None:
    action = f"read InferenceService {target.label}"
    try:
        obj = cluster.call(
            cluster.custom().get_namespaced_custom_object,
            KSERVE_GROUP,
            KSERVE_VERSION,
            target.namespace,
            ISVC_PLURAL,
            target.name,
            action=action,
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise api_error(exc, action) from exc
    return obj if isinstance(obj, dict) else None


def _with_version(manifest: dict[str, Any], existing: dict[str, Any]) -> dict[str, Any]:
    body = dict(manifest)
    body["metadata"] = dict(manifest["metadata"])
    body["metadata"]["resourceVersion"] = (existing.get("metadata") or {}).get("resourceVersion")
    return body


def _create(cluster: Cluster, target: Target, manifest: dict[str, Any], *, dry_run: bool) -> tuple[Any, list[str]]:
    kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
    data, _status, headers = cluster.call(
        cluster.custom().create_namespaced_custom_object_with_http_info,
        KSERVE_GROUP,
        KSERVE_VERSION,
        target.namespace,
        ISVC_PLURAL,
        manifest,
        action=f"create InferenceService {target.label}",
        **kwargs,
    )
    return data, parse_warnings(headers)


def _replace(cluster: Cluster, target: Target, manifest: dict[str, Any], *, dry_run: bool) -> tuple[Any, list[str]]:
    kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
    data, _status, headers = cluster.call(
        cluster.custom().replace_namespaced_custom_object_with_http_info,
        KSERVE_GROUP,
        KSERVE_VERSION,
        target.namespace,
        ISVC_PLURAL,
        target.name,
        manifest,
        action=f"replace InferenceService {target.label}",
        **kwargs,
    )
    return data, parse_warnings(headers)


def parse_warnings(headers: Any) -> list[str]:
    """The texts of the API server's `Warning` headers (`299 - "unknown field ..."`)."""
    if headers is None:
        return []
    values: list[str] = []
    if hasattr(headers, "getlist"):
        values = [str(v) for v in headers.getlist("Warning")]
    else:
        value = headers.get("Warning") if hasattr(headers, "get") else None
        values = [str(value)] if value else []
    found: list[str] = []
    for value in values:
        matches = list(_WARNING_RE.finditer(value))
        if not matches:
            found.append(value.strip())
        for match in matches:
            found.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return found


def _reason(exc: ApiException) -> str:
    return str(status_body(exc).get("reason") or "")


def _invalid(exc: ApiException, manifest: dict[str, Any]) -> InvalidInput:
    """A 422 Invalid answer: the API server's field causes, for a person to fix the catalog entry."""
    body = status_body(exc)
    causes = [
        {"field": c.get("field", ""), "reason": c.get("reason", ""), "message": c.get("message", "")}
        for c in ((body.get("details") or {}).get("causes") or [])
        if isinstance(c, dict)
    ]
    return InvalidInput(
        f"the cluster refused the InferenceService: {status_message(exc)}",
        code="manifest_invalid",
        status=422,
        details={"causes": causes, "manifest": manifest},
    )


def _refused(exc: ApiException) -> bool:
    """True for the API server or an admission webhook refusing the object itself (not RBAC, not a fault)."""
    if exc.status == 422:
        return True
    if exc.status in (400, 403):
        # RBAC answers 403 too ("... is forbidden: User "x" cannot create resource ..."): that is ours to
        # fix in the deployment, not the entry's.
        return " cannot " not in status_message(exc)
    return False


# A write that meets a 409 re-reads the object and tries once more; a second 409 is reported as a conflict.
WRITE_ATTEMPTS = 2


@dataclass
class Applied:
    """The outcome of a create-or-replace: what was done, the object before and after, the API's warnings."""

    action: str  # "created" or "updated"
    previous: dict[str, Any] | None
    applied: Any
    warnings: list[str]


def _apply(cluster: Cluster, target: Target, manifest: dict[str, Any], *, dry_run: bool = False) -> Applied:
    """Create or replace (server-side dry run when `dry_run`); re-read and retry on a Conflict."""
    verb = "dry-run" if dry_run else "apply"
    previous = _read(cluster, target)
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            if previous is None:
                applied, warnings = _create(cluster, target, manifest, dry_run=dry_run)
                return Applied("created", None, applied, warnings)
            body = _with_version(manifest, previous)
            applied, warnings = _replace(cluster, target, body, dry_run=dry_run)
            return Applied("updated", previous, applied, warnings)
        except ApiException as exc:
            if _refused(exc):
                raise _invalid(exc, manifest) from exc
            # 409: AlreadyExists on create or a stale resourceVersion on replace. Somebody else (kubectl,
            # another portal without our lock, an activation while we dry-run) changed the object between
            # our read and write.
            if exc.status == 409 and attempt < WRITE_ATTEMPTS:
                log.info("%s: %s on %s, retrying with a fresh read", verb, _reason(exc) or "Conflict", target.label)
                previous = _read(cluster, target)
                continue
            if exc.status == 409:
                raise Conflict(
                    f"could not {verb} InferenceService {target.label}: it kept changing underneath us "
                    f"({status_message(exc)}); try again",
                    code="inferenceservice_conflict",
                    details={"reason": _reason(exc)},
                ) from exc
            raise api_error(exc, f"{verb} InferenceService {target.label}") from exc
    raise AssertionError("unreachable")


# --- lock ----------------------------------------------------------------------------------------


def lock_key(target: Target | None) -> str:
    """The Redis lock of one deployment; the default deployment keeps the seed-era key."""
    if target is None or target == Target.from_settings(current_settings()):
        return LOCK_KEY
    return f"{LOCK_KEY}:{target.namespace}/{target.name}"


@contextmanager
def activation_lock(connection: redis.Redis, key: str = LOCK_KEY) -> Iterator[None]:
    """Hold a Redis lock (wait up to LOCK_WAIT s): 409 when another holder keeps it, 503 when Redis is down."""
    lock = connection.lock(key, timeout=LOCK_TIMEOUT, blocking_timeout=LOCK_WAIT)
    try:
        acquired = lock.acquire()
    except redis.RedisError as exc:
        raise Unavailable(
            "Redis is unavailable, and activations are serialized through it; try again when Redis is back",
            code="redis_unavailable",
            details={"reason": type(exc).__name__},
        ) from exc
    if not acquired:
        raise Conflict(
            f"another activation is still running after {LOCK_WAIT:g}s; try again",
            code="activation_in_progress",
        )
    try:
        yield
    finally:
        try:
            lock.release()
        except redis.RedisError:
            # Expired or Redis gone: the timeout frees it anyway.
            log.warning("activation: could not release the lock", exc_info=True)


# --- public operations ---------------------------------------------------------------------------


def _fresh_catalog() -> Catalog:
    """The catalog, reloaded first when its files changed (activation must use what is on disk)."""
    catalog = get_catalog()
    snap = catalog.snapshot()
    try:
        changed = directory_fingerprint(catalog.models_dir) != snap.fingerprint
    except OSError:
        changed = False
    if changed:
        catalog.snapshot(force=True)
    return catalog


def _model_id(obj: dict[str, Any] | None) -> str | None:
    if not obj:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(MODEL_ID_ANNOTATION)
    return str(value) if value else None


def activate(
    model_id: str,
    *,
    actor: str,
    rollback_of: str | None = None,
    target: Target | None = None,
    prepare: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]] | None = None,
    create_only: bool = False,
) -> dict[str, Any]:
    """Apply the entry's InferenceService (create or replace) and record `model_activated`.

    `target` names another deployment than the default one; `prepare(manifest, current)` adjusts the
    manifest under the deployment's lock (placement); `create_only` refuses (409) an existing object.
    """
    settings = current_settings()
    entry = _fresh_catalog().get_entry(model_id)
    manifest = render_inference_service(entry, settings)
    target = target or Target.from_settings(settings)
    cluster = get_cluster()
    digest = manifest_hash(manifest["spec"])
    default = target == Target.from_settings(settings)
    with activation_lock(redis_holder(current_app).connection, lock_key(target)):
        # queued before the apply so the cluster's start-up clock is not kept waiting; the measurement
        # reads the default deployment's predictor log
        measurement = fit_measurement.schedule(model_id, actor=actor) if default else None
        try:
            if prepare is not None:
                existing = _read(cluster, target)
                if create_only and existing is not None:
                    raise Conflict(
                        f"a deployment named {target.name!r} already exists in {target.namespace}",
                        code="deployment_exists",
                        details={"name": target.name, "namespace": target.namespace},
                    )
                manifest = prepare(manifest, existing)
                digest = manifest_hash(manifest["spec"])
            outcome = _apply(cluster, target, manifest)
            action, previous, applied = outcome.action, outcome.previous, outcome.applied
            cluster_cache.record_write(applied if isinstance(applied, dict) else None)
        except PortalError as exc:
            fit_measurement.cancel(measurement, actor=actor)
            history.record(
                "model_activation_failed",
                actor=actor,
                model_id=model_id,
                metadata={
                    "error": exc.message,
                    "code": exc.code,
                    "status": exc.status,
                    "manifestHash": digest,
                    "name": target.name,
                    "namespace": target.namespace,
                },
            )
            notify.activation_failed(model_id, exc.message, actor=actor)
            raise
        previous_id = _model_id(previous)
        metadata: dict[str, Any] = {
            "action": action,
            "modelId": model_id,
            "displayName": entry.get("displayName") or model_id,
            "previousModelId": previous_id,
            "manifestHash": digest,
            "name": target.name,
            "namespace": target.namespace,
            "resourceVersion": ((applied or {}).get("metadata") or {}).get("resourceVersion"),
        }
        if rollback_of is not None:
            metadata["rollbackFrom"] = rollback_of
        history.record("model_activated", actor=actor, model_id=model_id, metadata=metadata)
        if default:
            # The readiness watch follows the default deployment (the one /active describes).
            notify.activation_applied(model_id, metadata, actor=actor)
    return {
        "status": "success",
        "message": f"Model {model_id} activated",
        "model": entry,
        "inferenceservice": {
            "action": action,
            "name": target.name,
            "namespace": target.namespace,
            "previousModelId": previous_id,
            "manifestHash": digest,
            "resourceVersion": metadata["resourceVersion"],
        },
    }


def deactivate(*, actor: str, target: Target | None = None) -> dict[str, Any]:
    """Delete the InferenceService; `already_deleted` when there is none. Records `model_deactivated`."""
    settings = current_settings()
    target = target or Target.from_settings(settings)
    cluster = get_cluster()
    action_text = f"delete InferenceService {target.label}"
    with activation_lock(redis_holder(current_app).connection, lock_key(target)):
        current = _read(cluster, target)
        model_id = _model_id(current)
        try:
            removed = cluster.call(
                cluster.custom().delete_namespaced_custom_object,
                KSERVE_GROUP,
                KSERVE_VERSION,
                target.namespace,
                ISVC_PLURAL,
                target.name,
                action=action_text,
            )
            cluster_cache.record_delete(removed if isinstance(removed, dict) and "metadata" in removed else current)
            action = "deleted"
        except ApiException as exc:
            if exc.status != 404:
                raise api_error(exc, action_text) from exc
            action = "already_deleted"
        history.record(
            "model_deactivated",
            actor=actor,
            model_id=model_id,
            metadata={"action": action, "modelId": model_id, "name": target.name, "namespace": target.namespace},
        )
    return {
        "status": "success",
        "message": "Active model deactivated" if action == "deleted" else "No model was active",
        "result": {"action": action, "name": target.name, "namespace": target.namespace, "modelId": model_id},
    }


def _events_of(target: Target, default: Target) -> list[Any]:
    """`model_activated` rows of one deployment, newest first (rows from before deployments: the default one)."""
    rows, _ = history.query_events(limit=history.MAX_LIMIT, event="model_activated")
    return [
        r
        for r in rows
        if ((r.meta or {}).get("name") or default.name, (r.meta or {}).get("namespace") or default.namespace)
        == (target.name, target.namespace)
    ]


def rollback(
    *,
    actor: str,
    target: Target | None = None,
    prepare: Callable[[dict[str, Any], dict[str, Any] | None], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Re-activate the model that was active before the current one (from history)."""
    settings = current_settings()
    default = Target.from_settings(settings)
    target = target or default
    current = _model_id(_read(get_cluster(), target))
    rows = _events_of(target, default)
    back_to: str | None = None
    seen_current = current is None
    for row in rows:  # newest first
        if not seen_current:
            seen_current = row.model_id == current
            continue
        if row.model_id and row.model_id != current:
            back_to = row.model_id
            break
    if back_to is None and current is not None and not any(r.model_id == current for r in rows):
        # The current model was activated outside the portal: the newest other activation is "before".
        back_to = next((r.model_id for r in rows if r.model_id and r.model_id != current), None)
    if back_to is None:
        raise Conflict(
            "nothing to roll back to: history has no model that was active before "
            + (f'"{current}"' if current else "now"),
            code="no_rollback_target",
            details={"currentModelId": current},
        )
    if back_to not in get_catalog().snapshot().entries:
        raise Conflict(
            f'cannot roll back to "{back_to}": it is no longer in the catalog',
            code="rollback_target_missing",
            details={"modelId": back_to, "currentModelId": current},
        )
    result = activate(back_to, actor=actor, rollback_of=current, target=target, prepare=prepare)
    result["message"] = f"Rolled back to {back_to}" + (f" (from {current})" if current else "")
    result["rollback"] = {"from": current, "to": back_to}
    return result


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return {}


def describe(obj: dict[str, Any]) -> dict[str, Any]:
    """Ready/reason/message/url/phase of a live InferenceService (`phase`: pending, ready or failed)."""
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    ready_cond = _condition(obj, "Ready")
    ready = str(ready_cond.get("status") or "Unknown")
    reason = str(ready_cond.get("reason") or "")
    message = str(ready_cond.get("message") or "")
    failure = (status.get("modelStatus") or {}).get("lastFailureInfo") or {}
    if generation and observed < generation:
        # The status still describes the previous spec: the controller has not caught up yet.
        ready, reason, message = "Unknown", "Reconciling", "Waiting for KServe to pick up the new spec"
    elif ready != "True" and not reason and failure.get("reason"):
        reason, message = str(failure.get("reason")), str(failure.get("message") or "")
    transition = str((status.get("modelStatus") or {}).get("transitionStatus") or "")
    if ready == "True":
        phase = "ready"
    elif reason in FAILED_REASONS or transition in ("InvalidSpec", "BlockedByFailedLoad"):
        phase = "failed"
    else:
        phase = "pending"
    url = status.get("url") if ready == "True" else None
    return {"ready": ready, "reason": reason, "message": message, "url": url, "phase": phase}


def _watched(target: Target) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The InferenceService from the watched view (no API call) and the view's staleness.

    Only when Redis, where the view lives, is down, or no process watches the cluster, does this read the
    API server directly.
    """
    try:
        snapshot = cluster_cache.get_snapshot()
    except Unavailable as exc:
        # Redis down, or no process watches yet (an RQ worker with no web process running): read directly.
        if exc.code not in ("redis_unavailable", "cluster_view_unavailable"):
            raise
        return _read(get_cluster(), target), {"stale": False, "since": None, "reason": f"read directly: {exc.message}"}
    return snapshot.inference_service(target.namespace, target.name), snapshot.staleness.to_dict()


def active_status() -> dict[str, Any]:
    """`{"status":"none"}` or the active model: id, catalog entry, Ready, reason, message, URL, live object."""
    settings = current_settings()
    obj, view = _watched(Target.from_settings(settings))
    if obj is None:
        return {"status": "none", "message": "No active model", **_stale_note(view)}
    model_id = _model_id(obj)
    entry = get_catalog().snapshot().entries.get(model_id or "")
    return {
        "status": "active",
        "modelId": model_id,
        "model": dict(entry) if entry is not None else None,
        **describe(obj),
        "manifestHash": ((obj.get("metadata") or {}).get("annotations") or {}).get(MANIFEST_HASH_ANNOTATION),
        "inferenceservice": obj,
        **_stale_note(view),
    }


def _stale_note(view: dict[str, Any]) -> dict[str, Any]:
    """`{"view": …}` only when the view is stale: a fresh answer keeps the seed's exact shape."""
    return {"view": view} if view.get("stale") else {}


def dry_run_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """Server-side dry run (`dryRun=All`): create, or replace when it exists. Returns action and warnings."""
    settings = current_settings()
    target = Target(
        str(manifest.get("metadata", {}).get("namespace") or settings.active_namespace),
        str(manifest.get("metadata", {}).get("name") or settings.active_inferenceservice_name),
    )
    outcome = _apply(get_cluster(), target, manifest, dry_run=True)
    action = "create" if outcome.action == "created" else "update"
    return {"action": action, "manifest": manifest, "warnings": outcome.warnings}


def probe_readiness(url: str, timeout: float) -> dict[str, Any]:
    """GET `url` (http/https only) once; status ok (< 400), fail, or error; body preview ≤ 512 bytes."""
    started = time.perf_counter()
    result: dict[str, Any] = {"url": url}
    try:
        with requests.get(url, timeout=timeout, stream=True, allow_redirects=False) as response:
            raw = response.raw.read(PREVIEW_BYTES, decode_content=True) or b""
            result.update(
                status="ok" if response.status_code < 400 else "fail",
                code=response.status_code,
                preview=raw[:PREVIEW_BYTES].decode("utf-8", "replace"),
            )
    except requests.RequestException as exc:
        result.update(status="error", message=f"{type(exc).__name__}: {exc}")
    result["durationMs"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_probe_url(url: str) -> str:
    """The URL if it is http(s) with a DNS name or IPv4 host (READINESS_URL_PATTERN); InvalidInput otherwise."""
    if not _READINESS_URL.fullmatch(url):
        raise InvalidInput(
            "readinessUrl must be an http:// or https:// URL with a host",
            code="invalid_readiness_url",
            details={"fields": {"readinessUrl": ["must be an http:// or https:// URL"]}},
        )
    return url


def dry_run_model(
    model_id: str, *, readiness_url: str | None = None, timeout_seconds: int | None = None
) -> dict[str, Any]:
    """`POST /models/test`: dry-run the entry's manifest and optionally probe a readiness URL."""
    url = check_probe_url(readiness_url) if readiness_url else None
    timeout = timeout_seconds if timeout_seconds and timeout_seconds > 0 else DEFAULT_PROBE_TIMEOUT
    timeout = min(timeout, MAX_PROBE_TIMEOUT)
    entry = get_catalog().get_entry(model_id)
    manifest = render_inference_service(entry, current_settings())
    _args, dropped = render_args(entry)
    dry = dry_run_manifest(manifest)
    if dropped:
        dry["droppedArgs"] = dropped
    result: dict[str, Any] = {"status": "warning" if dry["warnings"] else "success", "dryRun": dry}
    if url:
        readiness = probe_readiness(url, timeout)
        result["readiness"] = readiness
        if readiness["status"] != "ok":
            result["status"] = "warning"
    return result


def manifest_for(model_id: str) -> dict[str, Any]:
    """`GET /models/{id}/manifest`: the rendered manifest, the entry and the dropped extra args."""
    entry = get_catalog().get_entry(model_id)
    _args, dropped = render_args(entry)
    result: dict[str, Any] = {"manifest": render_inference_service(entry, current_settings()), "model": entry}
    if dropped:
        result["droppedArgs"] = dropped
    return result
