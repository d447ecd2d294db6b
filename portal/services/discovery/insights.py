"""Hub insights: the one shape search results and model details share.

An *insight* is id, downloads, likes, licence, pipeline tag, architectures, vLLM support, exact
weights size and a fit summary per GPU profile (the profiles present in the cluster, or every
profile when there is no cluster). Insights are cached in Redis per model revision, so a warm
search is a couple of Redis reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import current_app

from portal.errors import InvalidInput, PortalError
from portal.services import vllm_registry
from portal.services.discovery.context import app_profiles, fit_profiles, hub_client, inventory
from portal.services.fit import (
    FitReport,
    ModelShape,
    WeightsInfo,
    estimate_fit,
    recommend_flags,
    weights_from_config,
    weights_from_hub_safetensors,
)
from portal.services.gpu_profiles import GpuProfile
from portal.services.huggingface import HubClient, SearchQuery

SEARCH_WORKERS = 8


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


def _config_or_error(client: HubClient, info: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The model's config.json at the listed revision, or why it is unavailable (the insight says so)."""
    try:
        return client.config_json(str(info["id"]), info.get("sha")), None
    except PortalError as exc:
        return None, f"config.json unavailable: {exc.message}"


def _insight_for(client: HubClient, info: Mapping[str, Any], profiles: Sequence[GpuProfile], present: set[str]) -> Any:
    key = f"insight:{info.get('id')}@{info.get('sha')}:{_profiles_key(profiles, present)}:{vllm_registry.token()}"
    cached = client.cache.get(key)
    if isinstance(cached, dict):
        return cached
    config, error = _config_or_error(client, info)
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
    config, config_error = _config_or_error(client, info)
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
