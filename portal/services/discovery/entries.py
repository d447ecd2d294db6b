"""Generated catalog entries for Hub models, vLLM architecture details and the GPU info of /system/info."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from portal.config import Settings
from portal.errors import NotFound
from portal.extensions import current_settings
from portal.schemas.catalog import MAX_ID_LENGTH
from portal.services import vllm_registry
from portal.services.discovery.context import app_profiles, fit_profiles, hub_client, inventory
from portal.services.discovery.inputs import (
    ModelInputs,
    inputs_from_directory,
    inputs_from_hub,
    installed_path_for,
    local_weights_dir,
)
from portal.services.fit import (
    FitReport,
    estimate_fit,
    recommend_flags,
    valid_tensor_parallel_sizes,
)
from portal.services.gpu_profiles import GpuProfile, find_profile
from portal.services.inventory import GpuNode
from portal.services.manifests import DEFAULT_RUNTIME
from portal.services.weights import paths as weights_paths

log = logging.getLogger(__name__)


def safe_id(hf_id: str) -> str:
    """``Qwen/Qwen2.5-0.5B-Instruct`` → ``qwen-qwen2.5-0.5b-instruct``."""
    value = re.sub(r"[^a-z0-9._-]+", "-", hf_id.lower().replace("/", "-").replace("_", "-"))
    value = re.sub(r"-{2,}", "-", value).strip("-.")
    return value[:MAX_ID_LENGTH] or "model"


def _choose_layout(
    inputs: ModelInputs, profile: GpuProfile, max_gpus: int | None, profiles: Sequence[GpuProfile]
) -> FitReport:
    """Smallest tensor-parallel size (up to the node's GPUs) that fits the model's context, else tp 1 reduced."""
    limit = max_gpus or profile.gpus_per_node or 1
    first: FitReport | None = None
    for tp in valid_tensor_parallel_sizes(inputs.shape, limit) or [1]:
        report = estimate_fit(inputs.shape, inputs.weights, profile, tensor_parallel=tp, profiles=profiles)
        if first is None:
            first = report
        if report.fits:
            return report
    assert first is not None
    return first


def _node_placement(node: GpuNode) -> tuple[dict[str, str], list[dict[str, Any]]]:
    from portal.services.gpu_profiles import PRODUCT_LABEL_KEYS

    selector = {k: node.labels[k] for k in PRODUCT_LABEL_KEYS if node.labels.get(k)}
    if not selector:
        selector = {"kubernetes.io/hostname": node.labels.get("kubernetes.io/hostname", node.name)}
    tolerations = [
        {k: v for k, v in {"key": t.get("key"), "operator": "Exists", "effect": t.get("effect")}.items() if v}
        for t in node.taints
        if t.get("effect") in ("NoSchedule", "NoExecute")
    ]
    return selector, tolerations


def generate_entry(
    hf_id: str,
    *,
    display_name: str | None = None,
    gpu_type: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A suggested catalog entry for a Hub model, sized for the chosen (or best) GPU profile."""
    settings: Settings = current_settings()
    profiles = app_profiles()
    inv = inventory()
    installed = installed_path_for(settings, hf_id)
    inputs = inputs_from_directory(installed) if installed is not None else inputs_from_hub(hf_id)
    real_id = hf_id.strip().strip("/")
    entry: dict[str, Any] = {
        "id": safe_id(real_id),
        "displayName": display_name or real_id.split("/", 1)[-1],
        "hfModelId": real_id,
        "servedModelName": real_id,
        "runtime": DEFAULT_RUNTIME,
        "storageUri": weights_paths.pvc_uri(settings.weights_pvc_name, real_id)
        if installed is not None
        else f"hf://{real_id}",
    }
    profile: GpuProfile | None
    if gpu_type:
        profile = find_profile(profiles, gpu_type)
        if profile is None:
            raise NotFound(f"unknown GPU type {gpu_type!r}", code="unknown_gpu_type")
    else:
        candidates, _present = fit_profiles(inv)
        reports = {p.name: _choose_layout(inputs, p, None, profiles) for p in candidates}
        ranked = sorted(
            candidates,
            key=lambda p: (
                not reports[p.name].fits,
                reports[p.name].level != "reduced",
                -sum(n.free for n in inv.nodes_for(p.name)),
                p.runtime_memory_gib,
            ),
        )
        profile = ranked[0] if ranked else None
    report: FitReport | None = None
    if profile is not None:
        nodes = inv.nodes_for(profile.name)
        max_gpus = max((n.allocatable for n in nodes), default=None)
        report = _choose_layout(inputs, profile, max_gpus, profiles)
        resource = nodes[0].resource if nodes else (profile.effective_resource_name or "nvidia.com/gpu")
        count = str(report.tensor_parallel)
        entry["resources"] = {"requests": {resource: count}, "limits": {resource: count}}
        if nodes:
            selector, tolerations = _node_placement(nodes[0])
        else:
            selector = dict(profile.labels)
            if not selector and profile.product_labels:
                key = "amd.com/gpu.product" if resource.startswith("amd.") else "nvidia.com/gpu.product"
                selector = {key: profile.product_labels[0]}
            tolerations = []
        if selector:
            entry["nodeSelector"] = selector
        if tolerations:
            entry["tolerations"] = tolerations
        vllm: dict[str, Any] = {"dtype": report.dtype, "tensorParallelSize": report.tensor_parallel}
        flags = {f.flag: f for f in recommend_flags(report)}
        if "--max-model-len" in flags and flags["--max-model-len"].value:
            vllm["maxModelLen"] = int(flags["--max-model-len"].value)
        elif report.largest_max_model_len > 0:
            vllm["maxModelLen"] = report.largest_max_model_len
        if "--kv-cache-dtype" in flags:
            vllm["extraArgs"] = ["--kv-cache-dtype", "fp8"]
        if inputs.shape.trust_remote_code:
            vllm["trustRemoteCode"] = True
        entry["vllm"] = vllm
    for key, value in (overrides or {}).items():
        if value is not None:
            entry[key] = value
    return {
        "entry": entry,
        "gpuType": profile.name if profile else None,
        "source": inputs.source,
        "fit": report.to_dict() if report is not None else None,
    }


def architecture_detail(architecture: str) -> dict[str, Any]:
    """One vLLM architecture: module, class, categories, and the catalog entries whose model uses it."""
    from portal.services.catalog import get_catalog

    registry = vllm_registry.active_registry()
    arch = registry.lookup(architecture)
    if arch is None:
        gone = registry.removed.get(architecture)
        details = gone.to_dict() if gone else {}
        raise NotFound(f"architecture not found: {architecture}", code="architecture_not_found", details=details)
    examples = []
    for entry in get_catalog().list_entries():
        try:
            names = cached_architectures(entry)
        except Exception:  # an example list must never fail the lookup
            log.debug("no architectures for %s", entry.get("id"), exc_info=True)
            continue
        if arch.name in names:
            examples.append({"id": entry.get("id"), "hfModelId": entry.get("hfModelId")})
    return {**arch.to_dict(), "source": registry.source.to_dict(), "catalogExamples": examples}


def cached_architectures(entry: Mapping[str, Any]) -> list[str]:
    """An entry's architectures from installed weights or the Hub cache only (never a network call)."""
    settings: Settings = current_settings()
    local = local_weights_dir(settings, str(entry.get("storageUri") or ""))
    if local is not None and (local / "config.json").is_file():
        config = json.loads((local / "config.json").read_text(encoding="utf-8"))
        return [str(a) for a in config.get("architectures") or []]
    hf_id = entry.get("hfModelId")
    if not hf_id:
        return []
    info = hub_client().cache.get(f"info:{hf_id}")
    if not isinstance(info, dict):
        return []
    return [str(a) for a in (info.get("config") or {}).get("architectures") or []]


def gpu_info(settings: Settings) -> dict[str, Any]:
    """/system/info: the GPU profiles in use (reference §9.3 `gpuProfiles`)."""
    return {"gpuProfiles": [profile.to_dict() for profile in app_profiles()]}
