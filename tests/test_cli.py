"""The flask commands: `catalog validate` (files or the whole catalog) and the command list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.hub import HubServer, make_model_repo


def test_cli_validates_catalog_files(make_discovery_app: Any, hub: HubServer, tmp_path: Path) -> None:
    make_model_repo(hub, "acme/tiny")
    app = make_discovery_app()
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"id": "tiny", "hfModelId": "acme/tiny", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}})
    )
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"id": "Not Valid"}))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["catalog", "validate", "--offline", str(good)])
    assert result.exit_code == 0, result.output
    assert "[pass] architecture" in result.output and "[warn] runtime: not checked" in result.output
    result = runner.invoke(args=["catalog", "validate", "--offline", str(good), str(bad)])
    assert result.exit_code == 1 and "1 invalid" in result.output
    assert "Validate catalog entry files" in runner.invoke(args=["catalog", "validate", "--help"]).output


def test_cli_validates_the_whole_configured_catalog_by_default(make_discovery_app: Any, hub: HubServer) -> None:
    make_model_repo(hub, "acme/tiny")
    app = make_discovery_app()
    models = app.config["SETTINGS"].catalog_models_dir
    (models / "tiny.json").write_text(json.dumps({"id": "tiny", "hfModelId": "acme/tiny"}))
    (models / "broken.json").write_text("{")
    result = app.test_cli_runner().invoke(args=["catalog", "validate", "--offline"])
    assert result.exit_code == 1
    assert f"{models / 'tiny.json'}: valid" in result.output and f"{models / 'broken.json'}: INVALID" in result.output
    assert "2 file(s), 1 invalid" in result.output


def test_cli_lists_the_portal_commands(app: Any) -> None:
    output = app.test_cli_runner().invoke(args=["--help"]).output
    for command in ("worker", "devcluster", "catalog"):
        assert f"  {command} " in output, output
