"""Discovery and fit: Hub insights, fit reports per GPU profile, compatibility, recommendations, entry generation.

An *insight* is the one shape search results and model details share: id, downloads, likes,
licence, pipeline tag, architectures, vLLM support, exact weights size and a fit summary per GPU
profile (the profiles present in the cluster, or every profile when there is no cluster).
Insights are cached in Redis per model revision, so a warm search is a couple of Redis reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from portal.config import ConfigError, Settings
from portal.errors import Conflict, InvalidInput, NotFound, PortalError
from portal.extensions import current_settings
from portal.schemas.catalog import MAX_ID_LENGTH
from portal.services import vllm_registry
from portal.services.cluster import get_cluster
from portal.services.fit import (
    FitReport,
    GpuSpec,
    ModelShape,
    WeightsInfo,
    estimate_fit,
    recommend_flags,
    valid_tensor_parallel_sizes,
    weights_from_config,
    weights_from_hub_safetensors,
    weights_from_local_files,
)
from portal.services.gpu_profiles import GpuProfile, ProfileFileError, find_profile, load_profiles
from portal.services.huggingface import HubClient, SearchQuery, current_hub
from portal.services.inventory import GpuNode, Inventory, read_inventory
from portal.services.manifests import DEFAULT_RUNTIME
from portal.services.weights import paths as weights_paths

log = logging.getLogger(__name__)
INVENTORY_TTL = 10.0
SEARCH_WORKERS = 8


# --------------------------------------------------------------------------------------------
# App wiring: profiles at start-up, Hub client, inventory
# --------------------------------------------------------------------------------------------


def init_app(app: Flask) -> None:
    """Load GPU profiles at start-up; a malformed GPU_PROFILE_PATH stops the app with one line."""
    settings: Settings = app.config["SETTINGS"]
    try:
        profiles = load_profiles(settings.gpu_profile_path)
    except ProfileFileError as exc:
        raise ConfigError(f"GPU_PROFILE_PATH: {exc}") from None
    if not profiles:
        raise ConfigError(f"GPU_PROFILE_PATH: {settings.gpu_profile_path}: defines no GPU profiles")
    app.extensions["gpu_profiles"] = profiles
    app.extensions["gpu_inventory"] = _InventoryCache()


def app_profiles() -> list[GpuProfile]:
    """The GPU profiles loaded at start-up."""
    profiles = current_app.extensions.get("gpu_profiles")
    if profiles is None:  # apps built without init_app (should not happen) still answer
        profiles = load_profiles(current_settings().gpu_profile_path)
        current_app.extensions["gpu_profiles"] = profiles
    return list(profiles)


class _InventoryCache:
    """The inventory for a few seconds: every search would otherwise list nodes and pods."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.value: Inventory | None = None
        self.at = 0.0


def inventory(*, fresh: bool = False) -> Inventory:
    """The cluster's GPU inventory (cached for INVENTORY_TTL seconds per process)."""
    cache = current_app.extensions.setdefault("gpu_inventory", _InventoryCache())
    assert isinstance(cache, _InventoryCache)
    with cache.lock:
        if not fresh and cache.value is not None and time.monotonic() - cache.at < INVENTORY_TTL:
            return cache.value
    value = read_inventory(get_cluster(), app_profiles())
    with cache.lock:
        cache.value, cache.at = value, time.monotonic()
    return value


def hub_client() -> HubClient:
    """A Hub client for the current app (Redis cache shared by all workers)."""
    return current_hub()


def fit_profiles(inv: Inventory | None = None) -> tuple[list[GpuProfile], set[str]]:
    """Profiles to judge fit on: those in the cluster, else all; plus the names present in the cluster."""
    profiles = app_profiles()
    inv = inv or inventory()
    present = {name.lower() for name in inv.profile_names()}
    chosen = [p for p in profiles if p.name.lower() in present]
    return (chosen or profiles), present


# --------------------------------------------------------------------------------------------
# Insights
# --------------------------------------------------------------------------------------------


def _profiles_key(profiles: Sequence[GpuProfile], present: set[str]) -> str:
    raw = json.dumps([[p.to_dict() for p in profiles], sorted(present)], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


def weights_for(info: Mapping[str, Any], shape: ModelShape | None) -> WeightsInfo | None:
    """Exact weights from the Hub's safetensors counts, else estimated from config, else None."""
    st = info.get("safetensors")
    if isinstance(st, Mapping) and st.get("parameters"):
        try:
            return weights_from_hub_safetensors(st)
        except InvalidInput:
            pass
    if shape is not None:
        return weights_from_config(shape)
    return None


def fit_row(report: FitReport, in_cluster: bool) -> dict[str, Any]:
    """The short fit summary of one profile (badges and matrix rows)."""
    b = report.budget
    return {
        "profile": report.gpu.name,
        "level": report.level,
        "verdict": report.verdict,
        "summary": report.summary,
        "inCluster": in_cluster,
        "maxModelLen": report.max_model_len,
        "largestMaxModelLen": report.largest_max_model_len,
        "weightsGiB": round(b.weights_per_gpu_bytes / 2**30, 2),
        "kvBudgetGiB": round(b.kv_budget_bytes / 2**30, 2),
        "kvTokens": b.kv_tokens,
        "maxConcurrency": round(report.max_concurrency, 2),
        "approximate": report.approximate,
    }


def fit_reports(
    shape: ModelShape,
    weights: WeightsInfo,
    profiles: Sequence[GpuProfile],
    *,
    all_profiles: Sequence[GpuProfile] = (),
    **settings: Any,
) -> list[FitReport]:
    """One estimate per profile (with fixes naming bigger profiles when ``all_profiles`` is given)."""
    return [estimate_fit(shape, weights, p, profiles=all_profiles, **settings) for p in profiles]


def build_insight(
    info: Mapping[str, Any],
    config: Mapping[str, Any] | None,
    profiles: Sequence[GpuProfile],
    present: set[str],
    *,
    config_error: str | None = None,
) -> dict[str, Any]:
    """The insight object for one model from its Hub info and (when readable) its config.json."""
    api_config = info.get("config") or {}
    merged_config = dict(config) if config is not None else dict(api_config)
    archs = merged_config.get("architectures") or api_config.get("architectures") or []
    support = vllm_registry.active_registry().check(archs)
    notes: list[str] = []
    shape: ModelShape | None = None
    if config is not None:
        try:
            shape = ModelShape.from_config(config)
        except InvalidInput as exc:
            notes.append(f"fit not estimated: {exc.message}")
    elif config_error:
        notes.append(config_error)
    weights = weights_for(info, shape)
    fit: list[dict[str, Any]] = []
    if shape is not None and weights is not None:
        for report in fit_reports(shape, weights, profiles):
            fit.append(fit_row(report, report.gpu.name.lower() in present))
    weights_bytes = weights.total_bytes if weights is not None else None
    return {
        "id": info.get("id"),
        "author": info.get("author"),
        "sha": info.get("sha"),
        "downloads": info.get("downloads") or 0,
        "likes": info.get("likes") or 0,
        "license": info.get("license"),
        "pipelineTag": info.get("pipelineTag"),
        "libraryName": info.get("libraryName"),
        "lastModified": info.get("lastModified"),
        "gated": info.get("gated") or False,
        "tags": info.get("tags") or [],
        "architectures": list(archs),
        "modelType": merged_config.get("model_type"),
        "trustRemoteCode": merged_config.get("auto_map") is not None,
        "vllm": support.to_dict(),
        "compatible": support.supported,
        "weightsBytes": weights_bytes,
        "weightsGiB": round(weights_bytes / 2**30, 2) if weights_bytes is not None else None,
        "weightsExact": weights.exact if weights is not None else None,
        "parameterCount": weights.parameter_count if weights is not None else None,
        "fit": fit,
        "notes": notes,
    }


def _insight_for(client: HubClient, info: Mapping[str, Any], profiles: Sequence[GpuProfile], present: set[str]) -> Any:
    key = f"insight:{info.get('id')}@{info.get('sha')}:{_profiles_key(profiles, present)}:{vllm_registry.token()}"
    cached = client.cache.get(key)
    if isinstance(cached, dict):
        return cached
    config: dict[str, Any] | None = None
    error: str | None = None
    try:
        config = client.config_json(str(info["id"]), info.get("sha"))
    except PortalError as exc:
        error = f"config.json unavailable: {exc.message}"
    insight = build_insight(info, config, profiles, present, config_error=error)
    if error is None:
        client.cache.set(key, insight)
    return insight


def search_query(args: Mapping[str, Any]) -> SearchQuery:
    """The Hub search for API or form arguments (``tags`` comma list and/or repeated ``tag``)."""
    tags = [t for t in str(args.get("tags") or "").split(",") if t.strip()]
    repeated = args.get("tag") or []
    tags += [repeated] if isinstance(repeated, str) else list(repeated)
    return SearchQuery.build(
        q=args.get("q"),
        author=args.get("author"),
        pipeline_tag=args.get("pipelineTag"),
        library=args.get("library"),
        license=args.get("license"),
        tags=tags,
        sort=args.get("sort") or "downloads",
        direction=args.get("direction"),
        limit=args.get("limit"),
    )


def search(query: SearchQuery) -> dict[str, Any]:
    """Search the Hub: one listing request, then one config.json per uncached result, in parallel."""
    client = hub_client()
    inv = inventory()
    profiles, present = fit_profiles(inv)
    models = client.search(query)
    if not models:
        results: list[Any] = []
    elif len(models) == 1:
        results = [_insight_for(client, models[0], profiles, present)]
    else:
        app = current_app._get_current_object()  # type: ignore[attr-defined]

        def one(info: Mapping[str, Any]) -> Any:
            with app.app_context():
                return _insight_for(client, info, profiles, present)

        with ThreadPoolExecutor(max_workers=min(SEARCH_WORKERS, len(models))) as pool:
            results = list(pool.map(one, models))
    return {
        "results": results,
        "profiles": [p.name for p in profiles],
        "clusterProfiles": sorted(present),
        "inventory": {"available": inv.available, "message": inv.message},
        "vllmSource": vllm_registry.active_registry().source.to_dict(),
    }


def model_detail(hf_id: str) -> dict[str, Any]:
    """Insight plus config summary, files with sizes and the full fit matrix over every profile."""
    client = hub_client()
    info = client.model_info(hf_id)
    inv = inventory()
    all_profiles = app_profiles()
    _, present = fit_profiles(inv)
    config: dict[str, Any] | None = None
    config_error: str | None = None
    try:
        config = client.config_json(str(info["id"]), info.get("sha"))
    except PortalError as exc:
        config_error = f"config.json unavailable: {exc.message}"
    insight = build_insight(info, config, all_profiles, present, config_error=config_error)
    reports: list[dict[str, Any]] = []
    shape: ModelShape | None = None
    if config is not None:
        try:
            shape = ModelShape.from_config(config)
        except InvalidInput:
            shape = None
    weights = weights_for(info, shape)
    if shape is not None and weights is not None:
        for report in fit_reports(shape, weights, all_profiles, all_profiles=all_profiles):
            row = report.to_dict()
            row["profile"] = report.gpu.name
            row["inCluster"] = report.gpu.name.lower() in present
            row["flags"] = [f.to_dict() for f in recommend_flags(report)]
            reports.append(row)
    siblings = info.get("siblings") or []
    return {
        "insight": insight,
        "huggingFace": {k: info.get(k) for k in ("id", "sha", "lastModified", "createdAt", "gated", "private")},
        "cardData": info.get("cardData") or {},
        "config": config_summary(config, shape),
        "files": [{"name": s.get("rfilename"), "size": s.get("size")} for s in siblings],
        "totalFileBytes": sum(int(s.get("size") or 0) for s in siblings),
        "fitReports": reports,
        "inventory": inv.to_dict(),
    }


def config_summary(config: Mapping[str, Any] | None, shape: ModelShape | None) -> dict[str, Any] | None:
    """The config.json fields a person wants to see."""
    if config is None:
        return None
    out: dict[str, Any] = {
        "modelType": config.get("model_type"),
        "architectures": config.get("architectures") or [],
        "autoMap": config.get("auto_map") is not None,
    }
    if shape is not None:
        out.update(
            layers=shape.num_layers,
            attentionHeads=shape.num_attention_heads,
            kvHeads=shape.num_kv_heads,
            headDim=shape.head_dim,
            hiddenSize=shape.hidden_size,
            vocabSize=shape.vocab_size,
            maxPositionEmbeddings=shape.max_position_embeddings,
            dtype=shape.dtype,
            kind=shape.kind,
            quantization=shape.quantization,
            kvBytesPerToken=shape.kv_bytes_per_token(2),  # 16-bit KV, what vLLM uses with --kv-cache-dtype auto
            approximate=list(shape.approximate_reasons),
        )
    return out


# --------------------------------------------------------------------------------------------
# Model inputs for catalog entries: local weights first (no Hub call), else the Hub
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInputs:
    """What the estimator needs for one model, and where it came from."""

    shape: ModelShape
    weights: WeightsInfo
    config: Mapping[str, Any]
    source: str


def local_weights_dir(settings: Settings, storage_uri: str) -> Path | None:
    """``pvc://<WEIGHTS_PVC_NAME>/<path>`` → ``<WEIGHTS_STORAGE_PATH>/<path>`` (never outside the root)."""
    return weights_paths.local_path(settings, storage_uri)


def installed_path_for(settings: Settings, hf_id: str) -> Path | None:
    """Where an install of ``hf_id`` lands by default (its model id under the weights volume), if config.json is there."""
    candidate = local_weights_dir(settings, weights_paths.pvc_uri(settings.weights_pvc_name, hf_id))
    return candidate if candidate is not None and (candidate / "config.json").is_file() else None


def inputs_from_directory(path: Path) -> ModelInputs:
    """Read config.json and the safetensors headers of installed weights (works offline)."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path.name}/config.json: {exc}", code="bad_local_weights") from exc
    shape = ModelShape.from_config(config)
    files = sorted(path.glob("*.safetensors"))
    try:
        weights = weights_from_local_files(files) if files else weights_from_config(shape)
    except ValueError as exc:  # SafetensorsHeaderError
        raise InvalidInput(str(exc), code="bad_local_weights") from exc
    return ModelInputs(shape, weights, config, "local")


def inputs_from_hub(hf_id: str) -> ModelInputs:
    """config.json and safetensors counts from the Hub (cached)."""
    client = hub_client()
    info = client.model_info(hf_id)
    config = client.config_json(str(info["id"]), info.get("sha"))
    shape = ModelShape.from_config(config)
    weights = weights_for(info, shape)
    assert weights is not None
    return ModelInputs(shape, weights, config, "hub")


def inputs_for_entry(entry: Mapping[str, Any]) -> ModelInputs:
    """Local weights when installed at the entry's storageUri, else the Hub via ``hfModelId``."""
    settings: Settings = current_settings()
    uri = str(entry.get("storageUri") or "")
    local = local_weights_dir(settings, uri)
    if local is not None and (local / "config.json").is_file():
        return inputs_from_directory(local)
    hf_id = entry.get("hfModelId") or (uri[len("hf://") :] if uri.startswith("hf://") else "")
    if not hf_id:
        # The request is fine; the entry lacks what an estimate needs (409: the state of the entry, not the input).
        raise Conflict(
            "cannot estimate fit: the entry has no installed weights and no hfModelId", code="no_model_source"
        )
    return inputs_from_hub(str(hf_id))


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


# --------------------------------------------------------------------------------------------
# Generated catalog entry
# --------------------------------------------------------------------------------------------


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
