"""Catalog entry schema, directory loading, caching, symlink swaps and entry writing."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.config import Settings
from portal.errors import Conflict, InvalidInput, NotFound
from portal.schemas.catalog import CatalogEntrySchema
from portal.services.catalog import (
    MAX_FILE_BYTES,
    Catalog,
    InMemorySharedGeneration,
    load_directory,
    write_entry,
)
from portal.services.catalog_entry import entry_to_json, has_errors, load_entry, parse_entry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalog"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(root: Path, interval: float = 30.0) -> Settings:
    return Settings.from_env({"MODEL_MANAGER_ENV": "test", "MODEL_CATALOG_ROOT": str(root)}).replace(
        catalog_refresh_interval=interval
    )


def write(directory: Path, name: str, content: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2), encoding="utf-8")
    return path


def entry(entry_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": entry_id, "displayName": entry_id.title(), "hfModelId": f"org/{entry_id}", **extra}


# --- schema ---------------------------------------------------------------------------------------


def fields_of(data: Any) -> dict[str, str]:
    _, issues = parse_entry(data)
    return {i.field or "": i.message for i in issues if i.severity == "error"}


def test_valid_entry_round_trips_and_omits_empty_fields() -> None:
    raw = {
        "id": "m",
        "displayName": "",
        "runtime": "",
        "env": [{"name": "A", "value": ""}, {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "vllm": {"tensorParallelSize": 1, "trustRemoteCode": False, "extraArgs": []},
        "nodeSelector": {},
        "tolerations": [],
        "resources": {"requests": {}, "limits": {"cpu": "500m", "memory": "16Gi", "amd.com/gpu": "1"}},
        "volumeMounts": [{"name": "v", "mountPath": "/x", "readOnly": True}],
        "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
    }
    clean, issues = parse_entry(raw)
    assert issues == []
    assert clean == {
        "id": "m",
        "env": [{"name": "A"}, {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        "vllm": {"tensorParallelSize": 1, "trustRemoteCode": False},
        "resources": {"limits": {"cpu": "500m", "memory": "16Gi", "amd.com/gpu": "1"}},
        "volumeMounts": [{"name": "v", "mountPath": "/x", "readOnly": True}],
        "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}],
    }
    assert entry_to_json(clean) == clean
    assert list(clean) == ["id", "env", "vllm", "resources", "volumeMounts", "volumes"]


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"vllm": {"tensorParallelSize": "1"}}, "vllm.tensorParallelSize", "Not a valid integer"),
        ({"vllm": {"tensorParallelSize": True}}, "vllm.tensorParallelSize", "Not a valid integer"),
        ({"vllm": {"tensorParallelSize": 0}}, "vllm.tensorParallelSize", "greater than or equal to 1"),
        ({"vllm": {"maxModelLen": 2048.5}}, "vllm.maxModelLen", "Not a valid integer"),
        ({"vllm": {"maxModelLen": 10**9}}, "vllm.maxModelLen", "less than or equal"),
        ({"vllm": {"gpuMemoryUtilization": "0.9"}}, "vllm.gpuMemoryUtilization", "Not a valid number"),
        ({"vllm": {"gpuMemoryUtilization": 0}}, "vllm.gpuMemoryUtilization", "greater than 0"),
        ({"vllm": {"gpuMemoryUtilization": 1.01}}, "vllm.gpuMemoryUtilization", "less than or equal to 1"),
        ({"vllm": {"trustRemoteCode": "yes"}}, "vllm.trustRemoteCode", "Not a valid boolean"),
        ({"vllm": {"trustRemoteCode": 1}}, "vllm.trustRemoteCode", "Not a valid boolean"),
        ({"vllm": {"extraArgs": ["--ok", 3]}}, "vllm.extraArgs[1]", "Not a valid string"),
        ({"vllm": {"kvCacheDtype": "int3"}}, "vllm.kvCacheDtype", "Must be one of"),
        ({"vllm": {"maxNumSeqs": 0}}, "vllm.maxNumSeqs", "greater than or equal to 1"),
        ({"vllm": {"maxNumBatchedTokens": "8192"}}, "vllm.maxNumBatchedTokens", "Not a valid integer"),
        ({"vllm": {"enforceEager": "yes"}}, "vllm.enforceEager", "Not a valid boolean"),
        ({"resources": {"limits": {"cpu": 2}}}, "resources.limits.cpu", "Not a valid string"),
        ({"resources": {"limits": {"amd.com/gpu": "one"}}}, 'resources.limits["amd.com/gpu"]', "quantity"),
        ({"resources": {"requests": {"memory": "-1Gi"}}}, "resources.requests.memory", "quantity"),
        ({"nodeSelector": {"a": True}}, "nodeSelector.a", "Not a valid string"),
        ({"env": [{"value": "x"}]}, "env[0].name", "Missing data"),
        ({"env": "A=1"}, "env", "Not a valid list"),
        ({"displayName": 5}, "displayName", "Not a valid string"),
        ({"tolerations": [{"operator": "Exists", "key": "k", "value": "v"}]}, "tolerations[0].value", "empty"),
        ({"tolerations": [{"key": "k", "tolerationSeconds": 5}]}, "tolerations[0].tolerationSeconds", "NoExecute"),
        ({"tolerations": [{"effect": "Sometimes"}]}, "tolerations[0].effect", "Must be one of"),
        ({"volumes": [{"name": "v"}]}, "volumes[0]", "exactly one"),
        ({"volumeMounts": [{"name": "v"}]}, "volumeMounts[0].mountPath", "Missing data"),
    ],
)
def test_wrong_types_and_values_name_the_field(data: dict[str, Any], field: str, fragment: str) -> None:
    errors = fields_of({"id": "m", **data})
    assert field in errors, errors
    assert fragment in errors[field]


@pytest.mark.parametrize("bad_id", ["", "Upper", "../evil", "a/b", ".hidden", "-x", "x" * 129, "a b", 7])
def test_unsafe_or_missing_id_is_an_error(bad_id: Any) -> None:
    assert "id" in fields_of({"id": bad_id})
    assert "id" in fields_of({"displayName": "no id"})


def test_unknown_keys_are_warnings_and_case_variants_are_read() -> None:
    clean, issues = parse_entry({"id": "m", "HFModelId": "a/b", "colour": "red", "vllm": {"dtype": "auto", "x": 1}})
    assert not has_errors(issues)
    assert clean == {"id": "m", "hfModelId": "a/b", "vllm": {"dtype": "auto"}}
    warnings = {i.field: i.message for i in issues}
    assert set(warnings) == {"HFModelId", "colour", "vllm.x"}
    assert "hfModelId" in warnings["HFModelId"]


def test_non_object_entry_and_load_entry_raises_invalid_input() -> None:
    _, issues = parse_entry(["id"])
    assert has_errors(issues)
    with pytest.raises(InvalidInput) as exc:
        load_entry({"id": "m", "vllm": {"maxModelLen": "big"}})
    assert exc.value.details["fields"] == {"vllm.maxModelLen": ["Not a valid integer."]}


def test_schema_is_usable_directly_for_api_documentation() -> None:
    loaded = CatalogEntrySchema().load({"id": "m", "vllm": {"maxModelLen": 5}, "extra": 1})
    assert loaded == {"id": "m", "vllm": {"maxModelLen": 5}}


# --- loading --------------------------------------------------------------------------------------


def test_example_catalog_loads_clean() -> None:
    result = load_directory(EXAMPLES / "models")
    assert result.issues == []
    assert list(result.entries) == ["llama-3.1-8b-instruct", "qwen2.5-1.5b-instruct", "tiny-gpt2-test"]


def test_each_kind_of_broken_file_is_reported_while_good_files_load(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write(models, "a-good.json", entry("good"))
    write(models, "b-syntax.json", '{\n  "id": "syntax",\n  "displayName": \n}\n')
    write(models, "c-types.json", entry("typed", vllm={"tensorParallelSize": "1"}))
    write(models, "d-noid.json", {"displayName": "No id"})
    write(models, "e-dup.json", entry("good", displayName="Second"))
    write(models, "f-unsafe.json", entry("Bad/Id"))
    write(models, "g-unknown.json", entry("unknown", colour="red"))
    write(models, "h-big.json", json.dumps(entry("big", displayName="x" * MAX_FILE_BYTES)))
    write(models, "i-array.json", "[]")
    write(models, "j-nan.json", '{"id": "nan", "vllm": {"gpuMemoryUtilization": NaN}}')
    write(models, "k-dupkey.json", '{"id": "dupkey", "displayName": "A", "displayName": "B"}')
    write(models, "notes.txt", "ignored")
    write(models, ".hidden.json", "{")
    (models / "sub").mkdir()
    write(models / "sub", "nested.json", entry("nested"))

    catalog = Catalog(make_settings(tmp_path))
    snap = catalog.snapshot()
    assert list(snap.entries) == ["dupkey", "good", "unknown"]
    assert snap.entries["good"]["displayName"] == "Good"  # the first file in lexical order wins
    assert snap.entries["dupkey"]["displayName"] == "B"
    assert snap.status == "live"
    by_file: dict[str, list[Any]] = {}
    for issue in snap.issues:
        by_file.setdefault(issue.file, []).append(issue)

    (syntax,) = by_file["b-syntax.json"]
    assert syntax.severity == "error" and syntax.line == 4 and "line 4, column 1" in syntax.message
    (typed,) = by_file["c-types.json"]
    assert (typed.field, typed.message) == ("vllm.tensorParallelSize", "Not a valid integer.")
    (noid,) = by_file["d-noid.json"]
    assert noid.field == "id" and "Missing data" in noid.message
    (dup,) = by_file["e-dup.json"]
    assert dup.severity == "error" and "a-good.json" in dup.message and '"good"' in dup.message
    (unsafe,) = by_file["f-unsafe.json"]
    assert unsafe.field == "id" and unsafe.severity == "error"
    (unknown,) = by_file["g-unknown.json"]
    assert (unknown.field, unknown.severity) == ("colour", "warning")
    (big,) = by_file["h-big.json"]
    assert "1 MiB" in big.message
    (array,) = by_file["i-array.json"]
    assert "JSON object" in array.message
    (nan,) = by_file["j-nan.json"]
    assert "NaN" in nan.message
    (dupkey,) = by_file["k-dupkey.json"]
    assert dupkey.severity == "warning" and dupkey.field == "displayName"
    assert set(by_file) == {
        "b-syntax.json", "c-types.json", "d-noid.json", "e-dup.json", "f-unsafe.json",
        "g-unknown.json", "h-big.json", "i-array.json", "j-nan.json", "k-dupkey.json",
    }  # fmt: skip

    status = catalog.status()
    assert status["count"] == 3
    assert status["errors"] == 8 and status["warnings"] == 2
    assert status["issues"][0].keys() == {"file", "line", "field", "message", "severity"}
    assert status["modelsDir"] == str(models)
    assert status["loadedAt"].endswith("Z")


def test_queries_sort_filter_and_copy(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write(models, "z.json", entry("zeta", displayName="Qwen Small"))
    write(models, "a.json", entry("alpha", hfModelId="Meta/Llama"))
    write(models, "m.json", entry("mid"))
    catalog = Catalog(make_settings(tmp_path))
    assert [e["id"] for e in catalog.list_entries()] == ["alpha", "mid", "zeta"]
    assert [e["id"] for e in catalog.list_entries("LLAMA")] == ["alpha"]
    assert [e["id"] for e in catalog.list_entries("qwen")] == ["zeta"]
    assert [e["id"] for e in catalog.list_entries("  ")] == ["alpha", "mid", "zeta"]
    got = catalog.get_entry("mid")
    got["displayName"] = "changed"
    assert catalog.get_entry("mid")["displayName"] == "Mid"
    with pytest.raises(NotFound) as exc:
        catalog.get_entry("nope")
    assert exc.value.code == "model_not_found" and exc.value.details == {"id": "nope"}
    assert exc.value.message == "model not found"


# --- caching --------------------------------------------------------------------------------------


def test_reloads_only_on_change_and_only_after_the_interval(tmp_path: Path) -> None:
    models = tmp_path / "models"
    path = write(models, "a.json", entry("a"))
    clock = FakeClock()
    catalog = Catalog(make_settings(tmp_path, interval=30), clock=clock)
    first = catalog.snapshot()
    assert first.generation == 1

    clock.advance(31)
    assert catalog.snapshot() is first  # nothing changed: same snapshot object, no reload

    write(models, "a.json", entry("a", displayName="Changed size"))
    clock.advance(10)
    assert catalog.snapshot() is first  # changed, but the interval has not passed since the last check
    clock.advance(25)
    second = catalog.snapshot()
    assert second.generation == 2 and second.entries["a"]["displayName"] == "Changed size"

    # Same size, new mtime only.
    write(models, "a.json", entry("a", displayName="Changed sizf"))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    clock.advance(31)
    third = catalog.snapshot()
    assert third.generation == 3 and third.entries["a"]["displayName"] == "Changed sizf"

    # Rename only (same content, size and mtime): a new name is a change.
    os.rename(path, models / "b.json")
    clock.advance(31)
    fourth = catalog.snapshot()
    assert fourth.generation == 4 and fourth.fingerprint != third.fingerprint

    # Deleting every file: empty, not missing.
    os.unlink(models / "b.json")
    clock.advance(31)
    fifth = catalog.snapshot()
    assert fifth.status == "empty" and dict(fifth.entries) == {}


def test_force_reloads_unconditionally(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write(models, "a.json", entry("a"))
    clock = FakeClock()
    catalog = Catalog(make_settings(tmp_path, interval=3600), clock=clock)
    first = catalog.snapshot()
    write(models, "b.json", entry("b"))
    assert catalog.snapshot() is first
    forced = catalog.refresh()
    assert forced.generation == 2 and list(forced.entries) == ["a", "b"]
    again = catalog.snapshot(force=True)
    assert again.generation == 3 and again is not forced


def test_directory_disappearing_keeps_last_good_catalog(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write(models, "a.json", entry("a"))
    clock = FakeClock()
    catalog = Catalog(make_settings(tmp_path, interval=5), clock=clock)
    assert catalog.snapshot().status == "live"

    for child in models.iterdir():
        child.unlink()
    models.rmdir()
    clock.advance(6)
    snap = catalog.snapshot()
    assert snap.status == "missing"
    assert list(snap.entries) == ["a"]
    assert "last good" in snap.message and str(models) in snap.message
    assert catalog.get_entry("a")["id"] == "a"
    assert catalog.status()["status"] == "missing"
    clock.advance(6)
    assert catalog.snapshot() is snap  # still missing: no new snapshot

    write(models, "b.json", entry("b"))
    clock.advance(6)
    back = catalog.snapshot()
    assert back.status == "live" and list(back.entries) == ["b"]


def test_missing_from_the_start(tmp_path: Path) -> None:
    catalog = Catalog(make_settings(tmp_path / "nothing-here"))
    snap = catalog.snapshot()
    assert snap.status == "missing" and dict(snap.entries) == {}
    assert catalog.list_entries() == []
    assert "git-sync" in catalog.status()["message"]


def test_shared_generation_bump_makes_another_instance_reload(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write(models, "a.json", entry("a"))
    shared = InMemorySharedGeneration()
    settings = make_settings(tmp_path, interval=3600)
    worker_a = Catalog(settings, shared=shared, clock=FakeClock())
    worker_b = Catalog(settings, shared=shared, clock=FakeClock())
    assert list(worker_a.snapshot().entries) == ["a"]
    b_first = worker_b.snapshot()

    write(models, "b.json", entry("b"))
    assert worker_b.snapshot() is b_first  # interval not passed, no bump yet
    worker_a.refresh()
    assert shared.get() == 1
    b_second = worker_b.snapshot()
    assert list(b_second.entries) == ["a", "b"] and b_second.shared_generation == 1
    assert worker_b.snapshot() is b_second  # seen that generation already: no further reloads
    assert worker_a.snapshot().shared_generation == 1


def test_broken_shared_generation_does_not_break_the_catalog(tmp_path: Path) -> None:
    class Broken:
        def get(self) -> int:
            raise ConnectionError("redis down")

        def bump(self) -> int:
            raise ConnectionError("redis down")

    write(tmp_path / "models", "a.json", entry("a"))
    catalog = Catalog(make_settings(tmp_path), shared=Broken())
    assert list(catalog.refresh().entries) == ["a"]
    assert list(catalog.snapshot().entries) == ["a"]


def test_concurrent_readers_always_get_a_complete_snapshot(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for i in range(20):
        write(models, f"m{i:02}.json", entry(f"m{i:02}"))
    catalog = Catalog(make_settings(tmp_path, interval=0))
    errors: list[str] = []

    def reader() -> None:
        for _ in range(50):
            snap = catalog.snapshot()
            if len(snap.entries) != 20:
                errors.append(f"saw {len(snap.entries)} entries")

    def forcer() -> None:
        for _ in range(20):
            catalog.refresh()

    threads = [threading.Thread(target=reader) for _ in range(4)] + [threading.Thread(target=forcer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_symlink_swap_during_loads_never_mixes_generations(tmp_path: Path) -> None:
    # git-sync layout: <root>/models -> one of two checkouts, swapped atomically by rename.
    gen_a, gen_b = tmp_path / "rev-a", tmp_path / "rev-b"
    for i in range(40):
        write(gen_a, f"m{i:02}.json", entry(f"a{i:02}"))
        write(gen_b, f"m{i:02}.json", entry(f"b{i:02}"))
    ids_a = {f"a{i:02}" for i in range(40)}
    ids_b = {f"b{i:02}" for i in range(40)}
    root = tmp_path / "root"
    root.mkdir()
    link = root / "models"
    link.symlink_to(gen_a)

    stop = threading.Event()
    swaps = 0

    def swapper() -> None:
        nonlocal swaps
        targets = [gen_b, gen_a]
        while not stop.is_set():
            tmp = root / "models.tmp"
            tmp.symlink_to(targets[swaps % 2])
            os.replace(tmp, link)
            swaps += 1

    catalog = Catalog(make_settings(root, interval=0))
    seen: set[frozenset[str]] = set()
    thread = threading.Thread(target=swapper)
    thread.start()
    try:
        for _ in range(120):
            snap = catalog.snapshot(force=True)
            ids = frozenset(snap.entries)
            assert snap.issues == (), snap.issues
            assert ids in (ids_a, ids_b), f"mixed generations: {sorted(ids)[:5]}..."
            assert snap.source_dir in (str(gen_a), str(gen_b))
            seen.add(ids)
            direct = load_directory(link)
            assert set(direct.entries) in (ids_a, ids_b)
    finally:
        stop.set()
        thread.join()
    assert swaps > 10


# --- writing --------------------------------------------------------------------------------------


def test_write_entry_is_atomic_canonical_and_conflicts(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    data = entry("new-model", vllm={"maxModelLen": 4096}, nodeSelector={})
    path = write_entry(settings, data)
    assert path == settings.catalog_models_dir / "new-model.json"
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and text.startswith('{\n  "id": "new-model",\n')
    assert json.loads(text) == {
        "id": "new-model",
        "displayName": "New-Model",
        "hfModelId": "org/new-model",
        "vllm": {"maxModelLen": 4096},
    }
    assert sorted(p.name for p in settings.catalog_models_dir.iterdir()) == ["new-model.json"]  # no temp left

    with pytest.raises(Conflict) as exc:
        write_entry(settings, entry("new-model", displayName="Other"))
    assert exc.value.code == "catalog_entry_exists"
    assert json.loads(path.read_text())["displayName"] == "New-Model"

    write_entry(settings, entry("new-model", displayName="Other"), overwrite=True)
    assert json.loads(path.read_text())["displayName"] == "Other"
    assert sorted(p.name for p in settings.catalog_models_dir.iterdir()) == ["new-model.json"]

    # The id already lives in a file with another name: still a conflict, even with overwrite.
    write(settings.catalog_models_dir, "legacy-name.json", entry("legacy"))
    with pytest.raises(Conflict) as exc:
        write_entry(settings, entry("legacy"), overwrite=True)
    assert exc.value.details["file"] == "legacy-name.json"

    loaded = Catalog(settings).snapshot()
    assert list(loaded.entries) == ["legacy", "new-model"] and loaded.issues == ()


@pytest.mark.parametrize("bad_id", ["../escape", "/abs", "a/../../b", "..", "UPPER", ""])
def test_write_entry_refuses_unsafe_ids(tmp_path: Path, bad_id: str) -> None:
    settings = make_settings(tmp_path / "root")
    with pytest.raises(InvalidInput):
        write_entry(settings, {"id": bad_id})
    assert not (tmp_path / "escape.json").exists()
    assert list(tmp_path.rglob("*.json")) == []


def test_write_entry_refuses_invalid_entries(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with pytest.raises(InvalidInput) as exc:
        write_entry(settings, entry("x", vllm={"tensorParallelSize": "2"}))
    assert "vllm.tensorParallelSize" in exc.value.details["fields"]


# --- robustness -----------------------------------------------------------------------------------

_KEYS = [
    "id", "displayName", "hfModelId", "env", "name", "value", "valueFrom", "secretKeyRef", "key", "vllm",
    "tensorParallelSize", "gpuMemoryUtilization", "maxModelLen", "extraArgs", "nodeSelector", "tolerations",
    "operator", "effect", "tolerationSeconds", "resources", "limits", "requests", "volumeMounts", "mountPath",
    "volumes", "persistentVolumeClaim", "claimName", "secret", "configMap", "storage", "HFMODELID", "x",
]  # fmt: skip
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(_KEYS), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_json, st.dictionaries(st.sampled_from(_KEYS), _json, max_size=8).map(lambda d: {"id": "m", **d})))
def test_parse_entry_never_raises_and_output_is_canonical(data: Any) -> None:
    clean, issues = parse_entry(data)
    assert isinstance(clean, dict)
    if not has_errors(issues):
        again, again_issues = parse_entry(clean)
        assert again == clean and not has_errors(again_issues)
    json.dumps(clean)  # always JSON-serialisable
