"""Model inputs for catalog entries: local weights first (no Hub call), else the Hub."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portal.config import Settings
from portal.errors import Conflict, InvalidInput
from portal.extensions import current_settings
from portal.services.discovery.context import hub_client
from portal.services.discovery.insights import weights_for
from portal.services.fit import (
    ModelShape,
    WeightsInfo,
    weights_from_config,
    weights_from_local_files,
)
from portal.services.weights import paths as weights_paths


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
