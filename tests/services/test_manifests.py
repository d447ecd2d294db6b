"""InferenceService rendering (§4.1) and vLLM args (§4.2), validated against the real KServe CRD."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.config import Settings
from portal.devcluster.schema import inference_service_admission, validate_inference_service
from portal.schemas.catalog import QUANTITY_RE
from portal.services.catalog import load_directory
from portal.services.catalog_entry import has_errors, parse_entry
from portal.services.manifests import (
    BLOCKED_FLAGS,
    filter_extra_args,
    manifest_hash,
    manifest_to_yaml,
    render_args,
    render_inference_service,
    vllm_args,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "catalog" / "models"
SETTINGS = Settings.from_env({"MODEL_MANAGER_ENV": "test"})


def _venus_env(hf_id: str, *extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": "HF_HOME", "value": "/mnt/models/.hf-cache"},
        {"name": "MODEL_ID", "value": hf_id},
        {"name": "MODEL_DIR", "value": "/mnt/models"},
        *extra,
        {
            "name": "HUGGING_FACE_HUB_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HUGGING_FACE_HUB_TOKEN"}},
        },
    ]


def _venus(**fields: Any) -> dict[str, Any]:
    extra_env = fields.pop("extra_env", ())
    return {
        **fields,
        "runtime": "vllm-runtime",
        "env": _venus_env(fields["hfModelId"], *extra_env),
        "nodeSelector": {"kubernetes.io/hostname": "venus"},
        "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }


# The real catalog (`ol-model-catalog` at c81c338, reference §14).
REAL_CATALOG: dict[str, dict[str, Any]] = {
    "gpt-oss-120b": _venus(
        id="gpt-oss-120b",
        displayName="GPT-OSS 120B (Q4)",
        hfModelId="openai/gpt-oss-120b",
        servedModelName="openai/gpt-oss-120b",
        storageUri="pvc://venus-model-storage/openai/gpt-oss-120b",
        extra_env=(
            {"name": "VLLM_MXFP4_USE_MARLIN", "value": "1"},
            {"name": "HSA_OVERRIDE_GFX_VERSION", "value": "11.0.0"},
        ),
        vllm={
            "tensorParallelSize": 1,
            "dtype": "bfloat16",
            "gpuMemoryUtilization": 0.9,
            "maxModelLen": 8192,
            "trustRemoteCode": True,
            "extraArgs": ["--enforce-eager", "--swap-space", "8"],
        },
        resources={
            "requests": {"cpu": "12", "memory": "24Gi", "amd.com/gpu": "1"},
            "limits": {"cpu": "24", "memory": "48Gi", "amd.com/gpu": "1"},
        },
    ),
    "qwen2.5-1.5b-instruct": _venus(
        id="qwen2.5-1.5b-instruct",
        displayName="Qwen2.5 1.5B Instruct",
        hfModelId="Qwen/Qwen2.5-1.5B-Instruct",
        servedModelName="Qwen/Qwen2.5-1.5B-Instruct",
        storageUri="pvc://venus-model-storage/qwen2.5-1.5b",
        vllm={"tensorParallelSize": 1, "dtype": "float16", "gpuMemoryUtilization": 0.85, "maxModelLen": 4096},
        resources={
            "requests": {"cpu": "6", "memory": "16Gi", "amd.com/gpu": "1"},
            "limits": {"cpu": "10", "memory": "20Gi", "amd.com/gpu": "1"},
        },
    ),
    "tiny-gpt2-test": _venus(
        id="tiny-gpt2-test",
        displayName="Tiny GPT-2 Test",
        hfModelId="sshleifer/tiny-gpt2",
        servedModelName="sshleifer/tiny-gpt2-test",
        storageUri="pvc://venus-model-storage/test-cli",
        vllm={"tensorParallelSize": 1, "dtype": "float16", "gpuMemoryUtilization": 0.5, "maxModelLen": 2048},
        resources={
            "requests": {"cpu": "2", "memory": "4Gi", "amd.com/gpu": "1"},
            "limits": {"cpu": "4", "memory": "8Gi", "amd.com/gpu": "1"},
        },
    ),
}


def assert_valid_isvc(manifest: dict[str, Any]) -> None:
    """The manifest passes the CRD schema strictly (no unknown field) and KServe's admission checks."""
    result = validate_inference_service(copy.deepcopy(manifest), strict=True)
    assert result.ok, result.causes
    assert result.unknown_fields == []
    assert result.pruned == manifest  # nothing pruned, nothing defaulted behind our back
    assert inference_service_admission(manifest) is None


# --- vLLM args ------------------------------------------------------------------------------------


def test_reference_fixture_args() -> None:
    # §4.2's fixture. The original dropped the whole item " --served-model-name bad"; we split it into
    # a blocked flag and its value and drop both, so the expected output is the same.
    entry = {
        "id": "m",
        "servedModelName": "Repo/Model",
        "vllm": {
            "tensorParallelSize": 2,
            "dtype": "bfloat16",
            "gpuMemoryUtilization": 0.5,
            "maxModelLen": 2048,
            "trustRemoteCode": True,
            "extraArgs": ["--speculative-decoding", "eagle", "", " --served-model-name bad", "--custom-flag=1"],
        },
    }
    args, dropped = render_args(entry)
    assert args == [
        "--tensor-parallel-size", "2", "--dtype", "bfloat16", "--gpu-memory-utilization", "0.500000",
        "--max-model-len", "2048", "--trust-remote-code", "--served-model-name", "Repo/Model",
        "--speculative-decoding", "eagle", "--custom-flag=1",
    ]  # fmt: skip
    assert dropped == ["--served-model-name", "bad"]


def test_fit_flags_are_rendered_as_vllm_flags() -> None:
    entry = {
        "id": "m",
        "vllm": {"kvCacheDtype": "fp8", "maxNumBatchedTokens": 4096, "maxNumSeqs": 64, "enforceEager": True},
    }
    assert vllm_args(entry) == [
        "--kv-cache-dtype", "fp8", "--max-num-batched-tokens", "4096", "--max-num-seqs", "64", "--enforce-eager",
    ]  # fmt: skip
    assert vllm_args({"id": "m", "vllm": {"kvCacheDtype": "auto", "enforceEager": False}}) == []


def test_fallback_served_name_only() -> None:
    assert vllm_args({"id": "m", "hfModelId": "Fallback/Model", "vllm": {}}) == [
        "--served-model-name",
        "Fallback/Model",
    ]
    assert vllm_args({"id": "m"}) == []


@pytest.mark.parametrize(
    ("extra", "kept", "dropped"),
    [
        # The original left "8000" behind as a stray positional argument (quirk 7); both go now.
        (["--port", "8000", "--enforce-eager"], ["--enforce-eager"], ["--port", "8000"]),
        (["--port 8000", "--enforce-eager"], ["--enforce-eager"], ["--port", "8000"]),
        (["--host=0.0.0.0", "--swap-space", "8"], ["--swap-space", "8"], ["--host=0.0.0.0"]),
        (["--MODEL", "/x"], [], ["--MODEL", "/x"]),
        (["--served_model_name", "x"], [], ["--served_model_name", "x"]),
        # A blocked flag followed by another flag has no value to drop.
        (["--model", "--enforce-eager"], ["--enforce-eager"], ["--model"]),
        # --model-impl is a different flag: the original's prefix test wrongly dropped it.
        (["--model-impl", "transformers"], ["--model-impl", "transformers"], []),
        (["--model-impl=vllm", "--hostname-ish"], ["--model-impl=vllm", "--hostname-ish"], []),
        # Values keep their spaces; flag items are split shell-style.
        (
            ["--override-generation-config", '{"temperature": 0.5}'],
            ["--override-generation-config", '{"temperature": 0.5}'],
            [],
        ),
        (["--chat-template '{{ a b }}'"], ["--chat-template", "{{ a b }}"], []),
        (["  ", "\t--enforce-eager\n"], ["--enforce-eager"], []),
    ],
)
def test_extra_args_filtering(extra: list[str], kept: list[str], dropped: list[str]) -> None:
    assert filter_extra_args(extra) == (kept, dropped)


def test_gpu_memory_utilization_format() -> None:
    assert vllm_args({"id": "m", "vllm": {"gpuMemoryUtilization": 0.9}}) == ["--gpu-memory-utilization", "0.900000"]
    assert vllm_args({"id": "m", "vllm": {"gpuMemoryUtilization": 1}}) == ["--gpu-memory-utilization", "1.000000"]
    assert vllm_args({"id": "m", "vllm": {"trustRemoteCode": False}}) == []


# --- manifest -------------------------------------------------------------------------------------


def test_gpt_oss_worked_example() -> None:
    entry = REAL_CATALOG["gpt-oss-120b"]
    manifest = render_inference_service(entry, SETTINGS)
    spec = {
        "predictor": {
            "minReplicas": 1,
            "model": {
                "modelFormat": {"name": "custom"},
                "runtime": "vllm-runtime",
                "storageUri": "pvc://venus-model-storage/openai/gpt-oss-120b",
                "env": entry["env"],
                "args": [
                    "--tensor-parallel-size",
                    "1",
                    "--dtype",
                    "bfloat16",
                    "--gpu-memory-utilization",
                    "0.900000",
                    "--max-model-len",
                    "8192",
                    "--trust-remote-code",
                    "--served-model-name",
                    "openai/gpt-oss-120b",
                    "--enforce-eager",
                    "--swap-space",
                    "8",
                ],
                "resources": entry["resources"],
            },
            "nodeSelector": {"kubernetes.io/hostname": "venus"},
            "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            # No predictor-level `resources`: see portal/services/manifests.py.
        }
    }
    assert manifest == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "active-llm",
            "namespace": "ai",
            "labels": {"app.kubernetes.io/managed-by": "model-manager"},
            "annotations": {
                "serving.kserve.io/secretName": "hf-token",
                "model-manager/model-id": "gpt-oss-120b",
                "storage.kserve.io/readonly": "false",
                "model-manager/manifest-hash": manifest_hash(spec),
            },
        },
        "spec": spec,
    }
    assert len(manifest["metadata"]["annotations"]["model-manager/manifest-hash"]) == 16
    assert_valid_isvc(manifest)


def test_minimal_entry_uses_defaults_and_hf_fallback() -> None:
    manifest = render_inference_service({"id": "m", "hfModelId": "Org/Name"}, SETTINGS.replace(active_namespace="x"))
    assert manifest["metadata"]["namespace"] == "x"
    assert "storage.kserve.io/readonly" not in manifest["metadata"]["annotations"]
    assert manifest["spec"] == {
        "predictor": {
            "minReplicas": 1,
            "model": {
                "modelFormat": {"name": "custom"},
                "runtime": "vllm-runtime",
                "storageUri": "hf://Org/Name",
                "args": ["--served-model-name", "Org/Name"],
            },
        }
    }
    assert_valid_isvc(manifest)
    bare = render_inference_service({"id": "bare"}, SETTINGS)
    assert bare["spec"]["predictor"]["model"] == {"modelFormat": {"name": "custom"}, "runtime": "vllm-runtime"}
    assert_valid_isvc(bare)


def test_model_level_and_predictor_level_placement() -> None:
    entry = {
        "id": "m",
        "runtime": "my-runtime",
        "storageUri": "s3://bucket/m",
        "storage": {"storageKey": "s3-creds", "path": "m/", "schemaPath": "schema.json"},
        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg", "readOnly": True, "subPath": "x"}],
        "volumes": [
            {"name": "cfg", "configMap": {"name": "model-config", "optional": True}},
            {"name": "shm", "persistentVolumeClaim": {"claimName": "scratch", "readOnly": False}},
            {"name": "creds", "secret": {"secretName": "s", "optional": False}},
        ],
        "tolerations": [
            {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30}
        ],
        "nodeSelector": {},
    }
    manifest = render_inference_service(entry, SETTINGS)
    predictor = manifest["spec"]["predictor"]
    assert predictor["model"]["runtime"] == "my-runtime"
    # `storageKey` is written as `key`, the only name KServe's storage spec has.
    assert predictor["model"]["storage"] == {"key": "s3-creds", "path": "m/", "schemaPath": "schema.json"}
    assert predictor["model"]["volumeMounts"] == entry["volumeMounts"]
    assert predictor["volumes"] == entry["volumes"]
    assert predictor["tolerations"] == entry["tolerations"]
    assert "nodeSelector" not in predictor and "resources" not in predictor
    assert "storage.kserve.io/readonly" not in manifest["metadata"]["annotations"]
    assert_valid_isvc(manifest)


def test_manifest_does_not_alias_the_entry_and_hash_tracks_the_spec() -> None:
    entry = copy.deepcopy(REAL_CATALOG["qwen2.5-1.5b-instruct"])
    first = render_inference_service(entry, SETTINGS)
    first["spec"]["predictor"]["model"]["env"].append({"name": "X"})
    first["spec"]["predictor"]["nodeSelector"]["y"] = "z"
    assert entry == REAL_CATALOG["qwen2.5-1.5b-instruct"]
    again = render_inference_service(entry, SETTINGS)
    other_ns = render_inference_service(entry, SETTINGS.replace(active_namespace="other"))
    assert again["metadata"]["annotations"] == other_ns["metadata"]["annotations"]  # spec-only hash
    entry["vllm"]["maxModelLen"] = 8192
    changed = render_inference_service(entry, SETTINGS)
    key = "model-manager/manifest-hash"
    assert changed["metadata"]["annotations"][key] != again["metadata"]["annotations"][key]


def test_yaml_output() -> None:
    manifest = render_inference_service(REAL_CATALOG["tiny-gpt2-test"], SETTINGS)
    text = manifest_to_yaml(manifest)
    assert text.startswith("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n")
    assert "readonly: 'false'" in text
    assert yaml.safe_load(text) == manifest


@pytest.mark.parametrize("entry_id", sorted(REAL_CATALOG))
def test_real_catalog_entries_parse_and_render_valid_manifests(entry_id: str) -> None:
    clean, issues = parse_entry(REAL_CATALOG[entry_id])
    assert issues == []
    assert clean == REAL_CATALOG[entry_id]
    assert_valid_isvc(render_inference_service(clean, SETTINGS))


def test_example_catalog_renders_valid_manifests() -> None:
    loaded = load_directory(EXAMPLES)
    assert loaded.issues == [] and len(loaded.entries) == 3
    for entry in loaded.entries.values():
        manifest = render_inference_service(entry, SETTINGS)
        assert_valid_isvc(manifest)
        assert manifest["spec"]["predictor"]["model"]["storageUri"] == f"pvc://venus-model-storage/{entry['hfModelId']}"
    llama = render_inference_service(loaded.entries["llama-3.1-8b-instruct"], SETTINGS)
    assert llama["spec"]["predictor"]["nodeSelector"] == {"kubernetes.io/hostname": "gpu-l4-1"}
    assert llama["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "--max-model-len" in llama["spec"]["predictor"]["model"]["args"]


def test_catalog_files_on_disk_match_the_real_catalog_fixtures(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for entry_id, entry in REAL_CATALOG.items():
        (models / f"{entry_id}.json").write_text(json.dumps(entry, indent=2))
    loaded = load_directory(models)
    assert loaded.issues == []
    assert dict(loaded.entries) == dict(sorted(REAL_CATALOG.items()))


# --- property: every valid entry renders a valid InferenceService --------------------------------

_text = st.text(max_size=12)
_word = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_name = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
_quantity = st.from_regex(QUANTITY_RE, fullmatch=True).filter(lambda q: len(q) < 20)
_resource = st.sampled_from(["cpu", "memory", "amd.com/gpu", "nvidia.com/gpu", "ephemeral-storage"])
_bool = st.booleans()


def _optional(**strategies: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=strategies)


_key_ref = st.fixed_dictionaries({"name": _word, "key": _word}, optional={"optional": _bool})
_env = st.one_of(
    st.fixed_dictionaries({"name": _word}, optional={"value": _text}),
    st.fixed_dictionaries(
        {"name": _word, "valueFrom": st.one_of(
            st.fixed_dictionaries({"secretKeyRef": _key_ref}),
            st.fixed_dictionaries({"configMapKeyRef": _key_ref}),
        )}
    ),
)  # fmt: skip
_toleration = st.one_of(
    _optional(key=_word, effect=st.sampled_from(["", "NoSchedule", "PreferNoSchedule"])).map(
        lambda t: {**t, "operator": "Exists"}
    ),
    st.fixed_dictionaries(
        {"key": _word, "operator": st.just("Equal"), "value": _text, "effect": st.just("NoExecute")},
        optional={"tolerationSeconds": st.integers(-(2**63), 2**63 - 1)},
    ),
)
_extra_arg = st.one_of(
    st.sampled_from(["--enforce-eager", "--port", "--port 8000", "--model=x", "--model-impl", "8", "", " --host h "]),
    _text,
)
_vllm = _optional(
    tensorParallelSize=st.integers(1, 1024),
    dtype=_text,
    gpuMemoryUtilization=st.floats(min_value=0, max_value=1, exclude_min=True),
    maxModelLen=st.integers(1, 10_000_000),
    trustRemoteCode=_bool,
    extraArgs=st.lists(_extra_arg, max_size=6),
)
_volume = st.builds(
    lambda name, source: {"name": name, **source},
    _name,
    st.one_of(
        st.fixed_dictionaries(
            {"persistentVolumeClaim": st.fixed_dictionaries({"claimName": _word}, optional={"readOnly": _bool})}
        ),
        st.fixed_dictionaries({"secret": st.fixed_dictionaries({"secretName": _word}, optional={"optional": _bool})}),
        st.fixed_dictionaries({"configMap": st.fixed_dictionaries({"name": _word}, optional={"optional": _bool})}),
    ),
)
_mount = st.fixed_dictionaries({"name": _name, "mountPath": _word}, optional={"readOnly": _bool, "subPath": _text})
_entries = st.fixed_dictionaries(
    {"id": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,40}", fullmatch=True)},
    optional={
        "displayName": _text,
        "hfModelId": _text,
        "servedModelName": _text,
        "storageUri": st.one_of(_text, st.sampled_from(["pvc://venus-model-storage/a/b", "hf://a/b", "s3://x"])),
        "runtime": _text,
        "env": st.lists(_env, max_size=4, unique_by=lambda e: e["name"]),
        "storage": _optional(key=_text, path=_text, schemaPath=_text, storageKey=_text),
        "vllm": _vllm,
        "nodeSelector": st.dictionaries(_word, _text, max_size=3),
        "tolerations": st.lists(_toleration, max_size=3),
        "resources": _optional(
            requests=st.dictionaries(_resource, _quantity, max_size=3),
            limits=st.dictionaries(_resource, _quantity, max_size=3),
        ),
        "volumeMounts": st.lists(_mount, max_size=3, unique_by=lambda m: m["mountPath"]),
        "volumes": st.lists(_volume, max_size=3, unique_by=lambda v: v["name"]),
    },
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_entries)
def test_any_valid_entry_renders_a_valid_inference_service(raw: dict[str, Any]) -> None:
    entry, issues = parse_entry(raw)
    assert not has_errors(issues), issues
    manifest = render_inference_service(entry, SETTINGS)
    assert_valid_isvc(manifest)
    assert yaml.safe_load(manifest_to_yaml(manifest)) == manifest
    args = manifest["spec"]["predictor"]["model"].get("args", [])
    flags = [a.split("=", 1)[0].lower().replace("_", "-") for a in args if a.startswith("--")]
    assert flags.count("--served-model-name") <= 1  # only ours
    assert not (BLOCKED_FLAGS - {"--served-model-name"}) & set(flags)
    assert render_inference_service(entry, SETTINGS) == manifest  # deterministic


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(_extra_arg, st.sampled_from(["--served_model_name", "--HOST=1", "x y", "--a b c"])), max_size=10)
)
def test_extra_args_never_keep_a_blocked_flag(extra: list[str]) -> None:
    kept, _dropped = filter_extra_args(extra)
    assert not any(k.startswith("--") and k.split("=", 1)[0].lower().replace("_", "-") in BLOCKED_FLAGS for k in kept)
    assert all(k == k.strip() for k in kept)
