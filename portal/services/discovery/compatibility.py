"""Compatibility of catalog entries with GPUs: the settings an entry asks for, the nodes it can land on, its fit, and vLLM flag recommendations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portal.errors import NotFound
from portal.services.discovery.context import app_profiles, fit_profiles, inventory
from portal.services.discovery.inputs import (
    inputs_for_entry,
    inputs_from_hub,
)
from portal.services.discovery.insights import fit_reports
from portal.services.fit import (
    GpuSpec,
    estimate_fit,
    recommend_flags,
)
from portal.services.gpu_profiles import GpuProfile, find_profile
from portal.services.inventory import GpuNode, Inventory


def _extra_arg(entry: Mapping[str, Any], flag: str) -> str | None:
    args = [str(a) for a in ((entry.get("vllm") or {}).get("extraArgs") or [])]
    tokens: list[str] = []
    for a in args:
        tokens.extend(a.split())
    for i, token in enumerate(tokens):
        if token.startswith(flag + "="):
            return token.split("=", 1)[1]
        if token == flag and i + 1 < len(tokens):
            return tokens[i + 1]
    return None


def entry_settings(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator settings an entry asks vLLM for."""
    vllm = entry.get("vllm") or {}
    out: dict[str, Any] = {}
    if vllm.get("maxModelLen"):
        out["max_model_len"] = int(vllm["maxModelLen"])
    if vllm.get("tensorParallelSize"):
        out["tensor_parallel"] = int(vllm["tensorParallelSize"])
    if vllm.get("gpuMemoryUtilization"):
        out["gpu_memory_utilization"] = float(vllm["gpuMemoryUtilization"])
    if vllm.get("dtype") and vllm["dtype"] != "auto":
        out["dtype"] = str(vllm["dtype"])
    kv = vllm.get("kvCacheDtype") or _extra_arg(entry, "--kv-cache-dtype")
    if kv:
        out["kv_cache_dtype"] = str(kv)
    if vllm.get("maxNumBatchedTokens"):
        out["max_num_batched_tokens"] = int(vllm["maxNumBatchedTokens"])
    if vllm.get("maxNumSeqs"):
        out["max_num_seqs"] = int(vllm["maxNumSeqs"])
    extra_tokens = " ".join(str(a) for a in vllm.get("extraArgs") or []).split()
    if vllm.get("enforceEager") is True or "--enforce-eager" in extra_tokens:
        out["enforce_eager"] = True
    return out


def gpu_requests(entry: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every GPU resource an entry names as (side, resource, quantity), limits before requests."""
    resources = entry.get("resources") or {}
    return [
        (side, str(name), str(value))
        for side in ("limits", "requests")
        for name, value in (resources.get(side) or {}).items()
        if "gpu" in str(name).lower()
    ]


def gpu_resource(entry: Mapping[str, Any]) -> tuple[str, int] | None:
    """The GPU resource an entry requests (limits first, then requests) and its count."""
    for _, name, value in gpu_requests(entry):
        try:
            count = int(value)
        except ValueError:
            continue
        if count > 0:
            return name, count
    return None


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether any toleration matches a taint (Kubernetes rules; PreferNoSchedule never blocks)."""
    if taint.get("effect") == "PreferNoSchedule":
        return True
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        operator = tol.get("operator") or "Equal"
        if not tol.get("key") and operator == "Exists":
            return True
        if tol.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def matching_nodes(entry: Mapping[str, Any], inv: Inventory) -> list[GpuNode]:
    """GPU nodes whose labels satisfy the nodeSelector and whose taints the entry tolerates."""
    selector = entry.get("nodeSelector") or {}
    tolerations = entry.get("tolerations") or []
    requested = gpu_resource(entry)
    out = []
    for node in inv.nodes:
        if requested is not None and node.resource != requested[0]:
            continue
        if any(node.labels.get(k) != v for k, v in selector.items()):
            continue
        if not all(tolerates(tolerations, t) for t in node.taints):
            continue
        out.append(node)
    return out


def target_profile(entry: Mapping[str, Any], inv: Inventory) -> GpuProfile | None:
    """The GPU an entry's nodeSelector targets: a matching node's profile, else a profile named by labels."""
    profiles = app_profiles()
    for node in matching_nodes(entry, inv):
        if node.profile:
            return find_profile(profiles, node.profile)
    selector = {str(k): str(v) for k, v in (entry.get("nodeSelector") or {}).items()}
    if selector:
        from portal.services.gpu_profiles import match_node

        requested = gpu_resource(entry)
        found = match_node(profiles, selector, requested[0] if requested else None)
        if found is not None:
            return found
        for profile in profiles:
            if profile.labels and all(selector.get(k) == v for k, v in profile.labels.items()):
                return profile
    return None


def entry_fit(entry: Mapping[str, Any], gpu_type: str | None = None) -> dict[str, Any]:
    """Fit report of a catalog entry on the GPU it targets (or ``gpu_type``), with flags."""
    inv = inventory()
    profiles = app_profiles()
    if gpu_type:
        profile = find_profile(profiles, gpu_type)
        if profile is None:
            raise NotFound(f"unknown GPU type {gpu_type!r}", code="unknown_gpu_type")
    else:
        profile = target_profile(entry, inv)
    inputs = inputs_for_entry(entry)
    if profile is None:
        return {
            "modelId": entry.get("id"),
            "gpuType": None,
            "source": inputs.source,
            "report": None,
            "message": "the entry's nodeSelector does not name a known GPU; pass ?gpuType=",
        }
    report = estimate_fit(inputs.shape, inputs.weights, profile, profiles=profiles, **entry_settings(entry))
    return {
        "modelId": entry.get("id"),
        "gpuType": profile.name,
        "source": inputs.source,
        "report": report.to_dict(),
        "flags": [f.to_dict() for f in recommend_flags(report)],
    }


def compatibility(entry: Mapping[str, Any], gpu_type: str | None = None) -> dict[str, Any]:
    """One report for ``gpu_type``, or a report per profile with ``compatible`` true when any fits."""
    profiles = app_profiles()
    inputs = inputs_for_entry(entry)
    settings = entry_settings(entry)
    if gpu_type:
        profile = find_profile(profiles, gpu_type)
        if profile is None:
            raise NotFound(f"unknown GPU type {gpu_type!r}", code="unknown_gpu_type")
        report = estimate_fit(inputs.shape, inputs.weights, profile, profiles=profiles, **settings)
        return {
            "modelId": entry.get("id"),
            "gpuType": profile.name,
            "compatible": report.fits,
            "level": report.level,
            "reason": report.summary,
            "source": inputs.source,
            "report": report.to_dict(),
        }
    _, present = fit_profiles()
    inv = inventory()
    counts = inv.counts()
    candidates: list[dict[str, Any]] = []
    for report in fit_reports(inputs.shape, inputs.weights, profiles, all_profiles=profiles, **settings):
        name = report.gpu.name
        candidates.append(
            {
                "gpu": name,
                "compatible": report.fits,
                "level": report.level,
                "reason": report.summary,
                "inCluster": name.lower() in present,
                "freeGpus": counts.get(name, {}).get("free", 0),
                "report": report.to_dict(),
            }
        )
    fitting = [c for c in candidates if c["compatible"]]
    # Prefer a GPU the cluster has free, then one it has at all, then the smallest that fits.
    memory = {p.name: p.runtime_memory_gib for p in profiles}
    fitting.sort(key=lambda c: (-(int(c["freeGpus"]) > 0), not c["inCluster"], memory.get(str(c["gpu"]), 0.0)))
    best = fitting[0]["gpu"] if fitting else None
    return {
        "modelId": entry.get("id"),
        "compatible": bool(fitting),
        "best": best,
        "source": inputs.source,
        "candidates": candidates,
    }


def profile_listing() -> dict[str, Any]:
    """Every profile with how many such GPUs the cluster has and how many are free."""
    inv = inventory()
    counts = inv.counts()
    rows = []
    for profile in app_profiles():
        row = profile.to_dict()
        count = counts.get(profile.name, {"total": 0, "free": 0, "nodes": 0})
        row["cluster"] = count
        rows.append(row)
    return {"profiles": rows, "inventory": {"available": inv.available, "message": inv.message}}


def recommendations(
    gpu_type: str, *, entry: Mapping[str, Any] | None = None, hf_id: str | None = None
) -> dict[str, Any]:
    """Concrete vLLM flags for a GPU (and optionally a model), each with a one-line reason."""
    profiles = app_profiles()
    profile = find_profile(profiles, gpu_type)
    if profile is None:
        raise NotFound(f"unknown GPU type {gpu_type!r}", code="unknown_gpu_type")
    spec = GpuSpec.from_profile(profile)
    notes: list[str] = []
    if (profile.vendor or "").lower() == "amd":
        notes.append(
            "ROCm: the runtime image must be vLLM's ROCm build; HIP_VISIBLE_DEVICES is set by the device plugin"
        )
    if entry is None and not hf_id:
        dtype = "bfloat16" if spec.has_feature("bf16") else "float16"
        from portal.services.fit import default_gpu_memory_utilization

        util = default_gpu_memory_utilization(spec.vllm_version)
        flags = [
            {
                "flag": "--dtype",
                "value": dtype,
                "reason": "bf16 is native on this GPU" if dtype == "bfloat16" else "no bf16 support: use float16",
            },
            {
                "flag": "--gpu-memory-utilization",
                "value": f"{util:g}",
                "reason": f"vLLM default for {spec.vllm_version or 'an unknown version'}",
            },
        ]
        if spec.has_feature("fp8"):
            flags.append(
                {"flag": "--kv-cache-dtype", "value": "fp8", "reason": "fp8 is native: halves KV memory when tight"}
            )
        notes.append("pass ?model=<catalog id> or ?hfModelId=<hub id> for model-specific flags")
        return {"gpuType": profile.name, "memoryGB": profile.memory_gb, "flags": flags, "notes": notes}
    if entry is not None:
        inputs = inputs_for_entry(entry)
        settings = entry_settings(entry)
        model_id = entry.get("id")
    else:
        assert hf_id is not None
        inputs = inputs_from_hub(hf_id)
        settings = {}
        model_id = hf_id
    report = estimate_fit(inputs.shape, inputs.weights, profile, profiles=profiles, **settings)
    return {
        "gpuType": profile.name,
        "memoryGB": profile.memory_gb,
        "model": model_id,
        "fits": report.fits,
        "summary": report.summary,
        "flags": [f.to_dict() for f in recommend_flags(report)],
        "notes": notes + list(report.approximate_reasons),
    }
