"""The catalog's fast path accepts only what the full parser accepts unchanged, with no issues."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.services.catalog import load_directory
from portal.services.catalog_entry import fast_entry, parse_entry

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "catalog" / "models").glob("*.json"))
BASES = [json.loads(p.read_text()) for p in EXAMPLES] + [
    {
        "id": "vols",
        "storage": {"key": "k", "path": "p"},
        "vllm": {
            "extraArgs": ["--x"],
            "trustRemoteCode": True,
            "kvCacheDtype": "fp8",
            "maxNumBatchedTokens": 4096,
            "maxNumSeqs": 64,
            "enforceEager": True,
        },
        "volumes": [{"name": "w", "persistentVolumeClaim": {"claimName": "c", "readOnly": True}}],
        "volumeMounts": [{"name": "w", "mountPath": "/w", "readOnly": False, "subPath": "s"}],
        "tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 5}],
    }
]
# Values that are valid somewhere, invalid elsewhere, or canonicalised away by the full parser.
_VALUES = st.one_of(
    st.sampled_from(["", "x", "Exists", "Equal", "NoSchedule", "1", "16Gi", "-1", "a b", "UPPER"]),
    st.integers(min_value=-2, max_value=2000),
    st.sampled_from([0.5, 1.0, 0.0, 1.5, float("inf"), True, False, None, [], {}, ["--a"], {"k": "v"}]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += _paths(child, (*prefix, i))
    return found


@st.composite
def mutated_entries(draw: st.DrawFn) -> Any:
    data = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "Name", "key", "value", "optional", "readOnly"]))] = copy.deepcopy(
                draw(_VALUES)
            )
        else:
            parent[path[-1]] = copy.deepcopy(draw(_VALUES))
    return data


@settings(max_examples=400, deadline=None)
@given(mutated_entries())
def test_fast_path_agrees_with_the_full_parser(data: Any) -> None:
    fast = fast_entry(copy.deepcopy(data))
    if fast is not None:
        entry, issues = parse_entry(copy.deepcopy(data))
        assert issues == [] and entry == fast


def test_examples_take_the_fast_path() -> None:
    assert all(fast_entry(copy.deepcopy(base)) == base for base in BASES)


def test_duplicate_keys_are_still_reported(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "a.json").write_text('{"id": "a", "hfModelId": "x", "hfModelId": "y"}')
    (models / "b.json").write_text('{"id": "b", "hfModelId": "x", "hfModelId" : "y"}')
    (models / "c.json").write_text('{"id": "c", "displayName": "say \\"hi\\""}')
    loaded = load_directory(models)
    assert loaded.entries["a"]["hfModelId"] == "y" and loaded.entries["b"]["hfModelId"] == "y"
    assert loaded.entries["c"]["displayName"] == 'say "hi"'
    assert sorted((i.file, i.field) for i in loaded.issues) == [("a.json", "hfModelId"), ("b.json", "hfModelId")]
