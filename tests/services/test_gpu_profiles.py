"""GPU profile files: the shipped defaults, validation messages and node matching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from portal.services.gpu_profiles import (
    GpuProfile,
    ProfileFileError,
    derived_memory_gib,
    find_profile,
    load_profiles,
    match_node,
    normalize_product,
    parse_profiles,
)


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "gpu-profiles.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_bundled_profiles_load_sorted_with_expected_gpus() -> None:
    profiles = load_profiles()
    names = [p.name for p in profiles]
    assert names == sorted(names, key=str.lower)
    assert set(names) >= {
        "nvidia-t4",
        "nvidia-l4",
        "nvidia-a10g",
        "nvidia-l40s",
        "nvidia-a100-40gb",
        "nvidia-a100-80gb",
        "nvidia-h100-80gb",
        "nvidia-h100-pcie",
        "nvidia-h200",
        "amd-mi210",
        "amd-mi300x",
        "amd-mi210-venus",
    }
    by_name = {p.name: p for p in profiles}
    assert not by_name["nvidia-t4"].has_feature("bf16") and by_name["nvidia-t4"].has_feature("FP16")
    assert by_name["nvidia-l4"].runtime_memory_gib == 22.05
    assert by_name["nvidia-h100-80gb"].runtime_memory_gib == 79.19
    assert by_name["nvidia-a100-40gb"].runtime_memory_gib == 39.5
    for name in ("nvidia-l4", "nvidia-l40s", "nvidia-h100-80gb", "nvidia-h200", "amd-mi300x"):
        assert by_name[name].has_feature("fp8"), name
    assert by_name["amd-mi300x"].effective_resource_name == "amd.com/gpu"
    assert by_name["nvidia-h100-80gb"].effective_resource_name == "nvidia.com/gpu"
    venus = by_name["amd-mi210-venus"]
    assert venus.memory_gb == 96 and venus.labels == {"kubernetes.io/hostname": "venus", "dedicated": "ai"}
    for p in profiles:
        assert p.runtime_memory_gib < p.memory_gb, p.name  # never above the box, even read as GiB


def test_derived_memory_is_conservative() -> None:
    # every bundled CUDA-reported total is at least what the nominal size would be read as
    measured = [p for p in load_profiles() if p.memory_is_measured]
    assert len(measured) >= 9
    for profile in measured:
        assert derived_memory_gib(profile.memory_gb) <= profile.runtime_memory_gib, profile.name
    assert derived_memory_gib(24) == pytest.approx(24e9 / 2**30 - 0.35)


def test_profile_to_dict_round_trips_through_the_parser() -> None:
    for profile in load_profiles():
        data = profile.to_dict()
        assert data["runtimeMemoryGiB"] == round(profile.runtime_memory_gib, 2)
        data.pop("runtimeMemoryGiB")
        assert parse_profiles([data])[0] == profile


def test_original_single_profile_file_still_loads(tmp_path: Path) -> None:
    original = [
        {
            "name": "amd-mi210-venus",
            "description": "AMD Instinct MI210 96GB (Venus node)",
            "vendor": "amd",
            "memoryGB": 96,
            "deviceId": "1002:1586",
            "features": ["bf16", "fp16", "hip", "pcie-gen4"],
            "labels": {"kubernetes.io/hostname": "venus", "dedicated": "ai"},
        }
    ]
    [profile] = load_profiles(write(tmp_path, original))
    assert profile.effective_resource_name == "amd.com/gpu"
    assert profile.has_feature("PCIE-GEN4")
    assert not profile.memory_is_measured


def test_wrapped_profiles_object_is_accepted(tmp_path: Path) -> None:
    profiles = load_profiles(write(tmp_path, {"profiles": [{"name": "x", "memoryGB": 8}]}))
    assert [p.name for p in profiles] == ["x"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "l4", "memoryGB": 0}, 'entry 1 ("l4"): memoryGB must be a positive number'),
        ({"name": "l4", "memoryGB": "24"}, 'entry 1 ("l4"): memoryGB must be a positive number'),
        ({"name": "l4"}, 'entry 1 ("l4"): memoryGB must be a positive number'),
        ({"memoryGB": 24}, "entry 1: name is required"),
        ({"name": "l4", "memoryGB": 24, "features": "bf16"}, "features must be a list of non-empty strings"),
        ({"name": "l4", "memoryGB": 24, "labels": {"a": 1}}, "labels must be an object of string values"),
        ({"name": "l4", "memoryGB": 24, "memoryGb": 24}, "unknown field 'memoryGb' (did you mean memoryGB?)"),
        ({"name": "l4", "memoryGB": 24, "gpusPerNode": 0}, "gpusPerNode must be a whole number"),
        ({"name": "l4", "memoryGB": 24, "totalMemoryGiB": -1}, "totalMemoryGiB must be a positive number"),
        ({"name": "l4", "memoryGB": 24, "activationOverheadGiB": {"huge": 1}}, "unknown model kind 'huge'"),
        ({"name": "l4", "memoryGB": 24, "nonTorchGiB": -0.1}, "nonTorchGiB must be a number"),
    ],
)
def test_malformed_entries_name_file_entry_and_field(tmp_path: Path, entry: dict[str, Any], message: str) -> None:
    path = write(tmp_path, [{"name": "ok", "memoryGB": 16}, entry])
    with pytest.raises(ProfileFileError) as info:
        load_profiles(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_duplicate_names_are_case_insensitive_and_both_named(tmp_path: Path) -> None:
    path = write(tmp_path, [{"name": "L4", "memoryGB": 24}, {"name": "l4", "memoryGB": 24}])
    with pytest.raises(ProfileFileError, match=r'entry 1 \("l4"\): duplicate name, entry 0 \("L4"\)'):
        load_profiles(path)


def test_unreadable_and_invalid_json_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileFileError, match="cannot read"):
        load_profiles(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(ProfileFileError, match=r"bad\.json: invalid JSON at line 1"):
        load_profiles(bad)
    with pytest.raises(ProfileFileError, match="top level must be a JSON array"):
        load_profiles(write(tmp_path, {"name": "x"}))


def test_activation_overhead_number_or_map(tmp_path: Path) -> None:
    profiles = load_profiles(
        write(
            tmp_path,
            [
                {"name": "a", "memoryGB": 24, "activationOverheadGiB": 1.5, "nonTorchGiB": 0.2},
                {"name": "b", "memoryGB": 24, "activationOverheadGiB": {"dense": 0.7, "moe": 3}},
            ],
        )
    )
    a, b = profiles
    assert a.activation_overhead_for("moe") == 1.5 and a.non_torch_gib == 0.2
    assert a.to_dict()["activationOverheadGiB"] == 1.5
    assert b.activation_overhead_for("dense") == 0.7 and b.activation_overhead_for("multimodal") is None


def test_find_profile_is_case_insensitive() -> None:
    profiles = load_profiles()
    found = find_profile(profiles, "NVIDIA-L4")
    assert found is not None and found.name == "nvidia-l4"
    assert find_profile(profiles, "nope") is None


def test_normalize_product_tolerates_spaces_and_hyphens() -> None:
    assert normalize_product("NVIDIA L4") == normalize_product("NVIDIA-L4") == "nvidia-l4"
    assert normalize_product(" AMD_Instinct_MI300X ") == "amd-instinct-mi300x"


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"nvidia.com/gpu.product": "NVIDIA-L4"}, "nvidia-l4"),
        ({"nvidia.com/gpu.product": "NVIDIA L4"}, "nvidia-l4"),
        ({"nvidia.com/gpu.product": "Tesla-T4"}, "nvidia-t4"),
        ({"nvidia.com/gpu.product": "NVIDIA-A100-80GB-PCIe"}, "nvidia-a100-80gb"),
        ({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}, "nvidia-a100-40gb"),
        ({"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}, "nvidia-h100-80gb"),
        ({"amd.com/gpu.product": "AMD-Instinct-MI300X"}, "amd-mi300x"),
        ({"amd.com/gpu.product-name": "AMD Instinct MI210"}, "amd-mi210"),
        # no product label: GPU feature discovery's memory label (MiB)
        ({"nvidia.com/gpu.memory": "15360"}, "nvidia-t4"),
        ({"nvidia.com/gpu.memory": "49140"}, "nvidia-l40s"),
        ({"nvidia.com/gpu.memory": "143771"}, "nvidia-h200"),
    ],
)
def test_match_node(labels: dict[str, str], expected: str) -> None:
    found = match_node(load_profiles(), labels)
    assert found is not None and found.name == expected


def test_match_node_ambiguous_or_unknown() -> None:
    profiles = load_profiles()
    assert match_node(profiles, {"nvidia.com/gpu.memory": "23034"}) is None  # L4 or A10G
    assert match_node(profiles, {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb"}) is None
    assert match_node(profiles, {"kubernetes.io/hostname": "venus"}) is None
    assert match_node(profiles, {"nvidia.com/gpu.memory": "lots"}) is None
    # resource filter: an NVIDIA product label never matches AMD profiles
    assert match_node(profiles, {"nvidia.com/gpu.product": "NVIDIA-L4"}, "amd.com/gpu") is None


def test_profile_is_hashable_and_frozen() -> None:
    p = GpuProfile(name="x", memory_gb=8, labels={"a": "b"})
    assert hash(p) == hash(GpuProfile(name="x", memory_gb=8, labels={"c": "d"}))
    with pytest.raises(AttributeError):
        p.name = "y"  # type: ignore[misc]
