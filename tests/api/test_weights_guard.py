"""Deleting the weights the active InferenceService serves needs ?force=true (dev cluster over HTTP)."""

from __future__ import annotations

import json

from flask import Flask

from portal.config import Settings


def test_delete_of_active_models_weights_needs_force(cluster_app: Flask) -> None:
    client = cluster_app.test_client()
    settings: Settings = cluster_app.config["SETTINGS"]
    install = settings.weights_storage_path / "sshleifer" / "tiny-gpt2"
    install.mkdir(parents=True)
    (install / "config.json").write_text("{}")
    (install / ".model-manager").write_text(json.dumps({"modelId": "sshleifer/tiny-gpt2", "revision": "abc"}))
    other = settings.weights_storage_path / "Qwen" / "Qwen2.5-1.5B-Instruct"
    other.mkdir(parents=True)
    (other / "config.json").write_text("{}")
    (other / ".model-manager").write_text(json.dumps({"modelId": "Qwen/Qwen2.5-1.5B-Instruct"}))

    assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200

    refused = client.delete("/weights/sshleifer/tiny-gpt2")
    assert refused.status_code == 409, refused.json
    assert "tiny-gpt2-test" in refused.json["error"]
    assert install.is_dir()

    # Weights the active model does not use are deleted without force.
    assert client.delete("/weights/Qwen/Qwen2.5-1.5B-Instruct").status_code == 200
    assert not other.exists()

    forced = client.delete("/weights/sshleifer/tiny-gpt2?force=true")
    assert forced.status_code == 200, forced.json
    assert not install.exists()
