"""Fixtures for deployment tests: catalog models with installed configs on the dev cluster's two GPU nodes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from portal.devcluster.cluster import DevCluster
from portal.services.cluster_watch import start_watcher
from tests.support.fixtures_cluster import write_entry_file

__all__ = ["HUGE", "SMALL", "add_model", "deploy_app"]

SMALL = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 512,
    "intermediate_size": 1024,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "torch_dtype": "float16",
}
# Llama-3-70B's shape: ~141 GB in bf16, more than either node's GPUs hold.
HUGE = {
    **SMALL,
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "torch_dtype": "bfloat16",
}


def add_model(app: Flask, catalog: Path, model_id: str, config: dict[str, Any], **entry: Any) -> None:
    """A catalog entry whose weights are installed (config.json only: the estimator works offline)."""
    settings = app.config["SETTINGS"]
    install = settings.weights_storage_path / "acme" / model_id
    install.mkdir(parents=True, exist_ok=True)
    (install / "config.json").write_text(json.dumps(config))
    write_entry_file(
        catalog,
        {
            "id": model_id,
            "hfModelId": f"acme/{model_id}",
            "storageUri": f"pvc://{settings.weights_pvc_name}/acme/{model_id}",
            **entry,
        },
    )


@pytest.fixture
def deploy_app(make_app: Callable[..., Flask], devcluster: DevCluster, cluster_catalog: Path) -> Flask:
    """An app on the dev cluster (watcher running) with small-a/b/c, huge and pinned in its catalog."""
    app = make_app(
        KUBECONFIG=str(devcluster.kubeconfig),  # type: ignore[attr-defined]
        MODEL_CATALOG_ROOT=str(cluster_catalog.parent),
        KUBE_TIMEOUT="10",  # a loaded CI machine; timeouts have their own tests
        MODEL_MANAGER_DEVCLUSTER="true",
    )
    for model_id in ("small-a", "small-b", "small-c"):
        add_model(app, cluster_catalog, model_id, SMALL)
    add_model(app, cluster_catalog, "huge", HUGE)
    add_model(app, cluster_catalog, "pinned", SMALL, nodeSelector={"amd.com/gpu.product": "AMD-Instinct-MI210"})
    start_watcher(app)
    return app
