"""Predicted vs measured: after an activation, read what vLLM reserved from the predictor pod's log.

The activation enqueues one ``fit_measurement`` job. The worker waits (up to
``MEASURE_TIMEOUT`` seconds) for the InferenceService's predictor pod to print its KV-cache lines,
reads them through the Kubernetes API (``pods/log``, the official client), parses them with
``portal/services/vllm_logs.py`` and records history ``fit_measured`` with the estimate for the same
entry, GPU and vLLM version next to vLLM's own figures. The catalog model page shows the latest
("predicted 54.9 GiB KV, vLLM reserved 58.1 GiB").
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from portal.errors import PortalError
from portal.extensions import current_settings, db
from portal.models.job import Job
from portal.services import history, jobs
from portal.services.cluster import get_cluster, list_pods
from portal.services.vllm_logs import LogParseError, StartupLog, parse_startup_log

log = logging.getLogger(__name__)

JOB_TYPE = "fit_measurement"
EVENT = "fit_measured"
MEASURE_TIMEOUT = 900.0
POLL_INTERVAL = 2.0
LOG_TAIL_LINES = 5000
CONTAINER = "kserve-container"
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"


def schedule(model_id: str, *, actor: str) -> str | None:
    """Queue the measurement of a model about to be activated (best effort: never fails the activation)."""
    try:
        job = jobs.create_job(JOB_TYPE, actor=actor, model_id=model_id, target=model_id, payload={"modelId": model_id})
    except PortalError as exc:
        log.warning("fit measurement of %s not queued: %s", model_id, exc.message)
        return None
    return str(job.id)


def cancel(job_id: str | None, *, actor: str) -> None:
    """Drop a queued measurement when its activation did not happen."""
    if job_id is None:
        return
    try:
        jobs.cancel_job(job_id, actor=actor)
    except PortalError as exc:
        log.warning("fit measurement %s not cancelled: %s", job_id, exc.message)


def read_predictor_log(namespace: str, isvc_name: str) -> tuple[str, str] | None:
    """(pod name, log text) of the InferenceService's newest running predictor pod, or None while none runs."""
    cluster = get_cluster()
    pods = list_pods(namespace, f"{ISVC_POD_LABEL}={isvc_name}", cluster=cluster)
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    if not running:
        return None
    newest = max(running, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    name = str(newest["metadata"]["name"])
    try:
        text = cluster.call(
            cluster.core().read_namespaced_pod_log,
            name,
            namespace,
            action=f"read the log of pod {namespace}/{name}",
            container=CONTAINER,
            tail_lines=LOG_TAIL_LINES,
        )
    except ApiException as exc:
        if exc.status in (400, 404):  # container not started yet, or the pod just went away
            return None
        raise
    return name, str(text)


def _serving(model_id: str) -> bool:
    """Whether the InferenceService serves ``model_id`` and is Ready (so its pod is this model's)."""
    from portal.services.activation import active_status

    status = active_status()
    return status.get("modelId") == model_id and status.get("ready") == "True"


def _wait_for_startup(
    model_id: str, since: datetime, namespace: str, isvc_name: str, deadline: float
) -> tuple[str, StartupLog]:
    last_problem = f"{model_id} is not Ready"
    while True:
        found = read_predictor_log(namespace, isvc_name) if _serving(model_id) else None
        if found is not None:
            pod, text = found
            try:
                parsed = parse_startup_log(text)
                if parsed.kv_tokens is not None or parsed.kv_cache_gib is not None:
                    return pod, parsed
                last_problem = f"pod {pod} has not printed its KV cache size yet"
            except LogParseError as exc:
                last_problem = f"pod {pod}: {exc}"
        elif _superseded(model_id, since):
            raise TimeoutError(f"{model_id} is no longer the active model")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"vLLM's start-up figures did not appear within {MEASURE_TIMEOUT:.0f}s: {last_problem}")
        db.session.rollback()  # end the read transaction so the next poll sees new history rows
        time.sleep(POLL_INTERVAL)


def _superseded(model_id: str, since: datetime) -> bool:
    """Another model was activated after this measurement was queued."""
    last = history.last_event("model_activated")
    return last is not None and last.created_at > since and last.model_id != model_id


def _prediction(model_id: str, gpu_type: str | None, version: str | None) -> dict[str, Any]:
    from portal.services.fit_calculator import WhatIf, what_if

    result = what_if(WhatIf(model_id=model_id, gpu_types=(gpu_type,) if gpu_type else (), vllm_version=version or None))
    candidate = (
        result["candidates"][0]
        if gpu_type
        else next((c for c in result["candidates"] if c["gpu"] == result.get("best")), result["candidates"][0])
    )
    return dict(candidate["report"])


def measurement(model_id: str, parsed: StartupLog, pod: str) -> dict[str, Any]:
    """The ``fit_measured`` metadata: the estimate for the entry's GPU next to what vLLM reported."""
    from portal.services import discovery
    from portal.services.catalog import get_catalog

    entry = get_catalog().get_entry(model_id)
    profile = discovery.target_profile(entry, discovery.inventory())
    report = _prediction(model_id, profile.name if profile else None, parsed.vllm_version)
    kv_per_token = int(report["kvCache"]["bytesPerTokenPerGpu"]) or 1
    measured_gib = parsed.kv_cache_gib
    if measured_gib is None and parsed.kv_tokens is not None:
        measured_gib = round(parsed.kv_tokens * kv_per_token / 2**30, 2)
    return {
        "pod": pod,
        "gpuType": report["gpu"]["name"],
        "vllmVersion": parsed.vllm_version or report["settings"].get("vllmVersion"),
        "predictedKvGiB": report["memory"]["kvBudgetGiB"],
        "measuredKvGiB": measured_gib,
        "predictedKvTokens": report["kvCache"]["tokens"],
        "measuredKvTokens": parsed.kv_tokens,
        "predictedActivationGiB": report["overheads"]["activationGiB"],
        "measuredActivationGiB": parsed.activation_gib,
        "predictedNonTorchGiB": report["overheads"]["nonTorchGiB"],
        "measuredNonTorchGiB": parsed.non_torch_gib,
        "started": parsed.started,
    }


def run_measurement(job_id: str) -> None:
    """The job: wait for the predictor's start-up lines, compare with the estimate, record ``fit_measured``."""
    job = db.session.get(Job, job_id)
    if job is None or job.status != "pending":
        return
    jobs.start(job, message="Waiting for vLLM's start-up figures")
    model_id = str((job.payload or {}).get("modelId") or job.model_id)
    settings = current_settings()
    try:
        pod, parsed = _wait_for_startup(
            model_id,
            job.created_at,
            settings.active_namespace,
            settings.active_inferenceservice_name,
            time.monotonic() + MEASURE_TIMEOUT,
        )
        meta = measurement(model_id, parsed, pod)
    except (TimeoutError, PortalError, ApiException) as exc:
        message = exc.message if isinstance(exc, PortalError) else str(exc)
        jobs.fail(job, f"could not measure the start-up of {model_id}: {message}")
        return
    history.record(EVENT, actor=job.actor, model_id=model_id, metadata=meta, commit=False)
    jobs.complete(
        job,
        result=meta,
        message=f"predicted {meta['predictedKvGiB']:.2f} GiB KV, vLLM reserved {meta['measuredKvGiB']} GiB",
    )


def latest(model_id: str) -> dict[str, Any] | None:
    """The newest ``fit_measured`` record of a model (for its page), or None."""
    event = history.last_event(EVENT, model_id=model_id)
    return dict(event.meta or {}, measuredAt=event.created_at.isoformat()) if event is not None else None
