"""Server-side printing (the Tables `kubectl get` asks for): printer-column paths and ages."""

from __future__ import annotations

from portal.devcluster.tables import human_duration, json_path


def test_printer_column_paths_and_ages() -> None:
    obj = {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}],
                      "traffic": [{"latestRevision": True, "percent": 100}]}}  # fmt: skip
    assert json_path(obj, ".status.conditions[?(@.type=='Ready')].status") == ["True"]
    assert json_path(obj, ".status.traffic[?(@.latestRevision==true)].percent") == [100]
    assert json_path(obj, ".status.conditions[*].type") == ["Ready", "X"]
    assert json_path(obj, ".status.url") == []
    ages = [human_duration(s) for s in (5, 130, 600, 7200, 36000, 90000, 864000)]
    assert ages == ["5s", "2m10s", "10m", "120m", "10h", "25h", "10d"]  # as kubectl prints them
