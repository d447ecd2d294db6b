"""Render the KServe InferenceService for a catalog entry (reference §4.1) and its vLLM args (§4.2).

Differences from the original, on purpose:
- `resources` is NOT duplicated at predictor level. The CRD accepts `spec.predictor.resources` (it
  is the PodSpec's pod-level resources, Kubernetes >= 1.32 behind the PodLevelResources gate), but
  pod-level resources only support cpu and memory: a copied `amd.com/gpu` / `nvidia.com/gpu` limit
  makes the API server refuse the pod, and without the gate the field is silently dropped. The
  container-level `resources` on the model already carry the requests and limits.
- `storage.storageKey` (accepted in entries as an alias) is written as `key`, the only name the
  KServe storage spec knows; an unknown field would be pruned or refused by the API server.
- Empty lists/maps are left out (an empty nodeSelector or volumeMounts means the same as none).
- Blocked vLLM flags are matched by exact name (`--model`, not `--model-impl`), also in their
  `--flag=value` and `--flag_with_underscores` forms, and a blocked flag's value is dropped with it.
- Labels `app.kubernetes.io/managed-by` and the annotation `model-manager/manifest-hash` are added.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from portal.config import Settings
from portal.services.catalog_entry import entry_to_json

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
DEFAULT_RUNTIME = "vllm-runtime"
HF_TOKEN_SECRET = "hf-token"
MODEL_ID_ANNOTATION = "model-manager/model-id"
MANIFEST_HASH_ANNOTATION = "model-manager/manifest-hash"
SECRET_NAME_ANNOTATION = "serving.kserve.io/secretName"
READONLY_ANNOTATION = "storage.kserve.io/readonly"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "model-manager"
# The runtime sets these itself (model path, listen address, served name); letting an entry override
# them would break the ServingRuntime contract.
BLOCKED_FLAGS = frozenset({"--model", "--host", "--port", "--served-model-name"})


def effective_storage_uri(entry: Mapping[str, Any]) -> str:
    """`storageUri`, else `hf://<hfModelId>`, else ""."""
    uri = entry.get("storageUri") or ""
    if uri:
        return str(uri)
    hf_id = entry.get("hfModelId") or ""
    return f"hf://{hf_id}" if hf_id else ""


def _is_blocked(token: str) -> bool:
    if not token.startswith("--"):
        return False
    # vLLM's argument parser turns underscores into dashes, so `--served_model_name` is the same flag.
    name = token.split("=", 1)[0].strip().lower().replace("_", "-")
    return name in BLOCKED_FLAGS


def _tokens(items: list[Any]) -> list[str]:
    tokens: list[str] = []
    for raw in items:
        if not isinstance(raw, str):
            continue
        item = raw.strip()
        if not item:
            continue
        # "--port 8000" as one item would reach vLLM as a single, invalid argv word; split flag items
        # shell-style. Items that are values (no leading dash) keep their spaces, e.g. a JSON value.
        if item.startswith("-") and any(ch.isspace() for ch in item):
            try:
                tokens.extend(shlex.split(item))
            except ValueError:
                tokens.extend(item.split())
        else:
            tokens.append(item)
    return tokens


def filter_extra_args(items: list[Any]) -> tuple[list[str], list[str]]:
    """Trim, split and filter `vllm.extraArgs`; return (kept, dropped)."""
    tokens = _tokens(items)
    kept: list[str] = []
    dropped: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _is_blocked(token):
            dropped.append(token)
            # The original kept the value of a blocked flag ("8000" survived "--port"), which then
            # became a stray positional argument; drop it too.
            has_value = "=" not in token and i + 1 < len(tokens) and not tokens[i + 1].startswith("-")
            if has_value:
                dropped.append(tokens[i + 1])
                i += 1
        else:
            kept.append(token)
        i += 1
    return kept, dropped


def render_args(entry: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The vLLM args in the fixed §4.2 order, and the extra args that were dropped."""
    vllm = entry.get("vllm")
    if not isinstance(vllm, Mapping):
        vllm = {}
    args: list[str] = []
    if vllm.get("tensorParallelSize") is not None:
        args += ["--tensor-parallel-size", str(vllm["tensorParallelSize"])]
    if vllm.get("dtype"):
        args += ["--dtype", str(vllm["dtype"])]
    if vllm.get("gpuMemoryUtilization") is not None:
        args += ["--gpu-memory-utilization", f"{float(vllm['gpuMemoryUtilization']):.6f}"]
    if vllm.get("maxModelLen") is not None:
        args += ["--max-model-len", str(vllm["maxModelLen"])]
    if vllm.get("trustRemoteCode") is True:
        args.append("--trust-remote-code")
    if vllm.get("kvCacheDtype") and vllm["kvCacheDtype"] != "auto":
        args += ["--kv-cache-dtype", str(vllm["kvCacheDtype"])]
    if vllm.get("maxNumBatchedTokens") is not None:
        args += ["--max-num-batched-tokens", str(vllm["maxNumBatchedTokens"])]
    if vllm.get("maxNumSeqs") is not None:
        args += ["--max-num-seqs", str(vllm["maxNumSeqs"])]
    if vllm.get("enforceEager") is True:
        args.append("--enforce-eager")
    served = entry.get("servedModelName") or entry.get("hfModelId")
    if served:
        args += ["--served-model-name", str(served)]
    extra, dropped = filter_extra_args(list(vllm.get("extraArgs") or []))
    return args + extra, dropped


def vllm_args(entry: Mapping[str, Any]) -> list[str]:
    """The vLLM args of an entry (§4.2), blocked extra args removed."""
    return render_args(entry)[0]


def manifest_hash(spec: Mapping[str, Any]) -> str:
    """First 16 hex digits of the sha256 of the spec's canonical JSON."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _storage(entry: Mapping[str, Any]) -> dict[str, str]:
    source = entry.get("storage") or {}
    storage: dict[str, str] = {}
    key = source.get("key") or source.get("storageKey")
    if key:
        storage["key"] = key
    for name in ("path", "schemaPath"):
        if source.get(name):
            storage[name] = source[name]
    return storage


def render_inference_service(entry: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The InferenceService manifest that serves `entry` (reference §4.1, see module notes)."""
    # The canonical form gives fresh copies (the manifest never aliases the cached entry) and drops
    # empty optional fields.
    canon = entry_to_json(entry)
    uri = effective_storage_uri(canon)
    args, _dropped = render_args(canon)

    model: dict[str, Any] = {
        "modelFormat": {"name": "custom"},
        "runtime": canon.get("runtime") or DEFAULT_RUNTIME,
    }
    if uri:
        model["storageUri"] = uri
    if canon.get("env"):
        model["env"] = canon["env"]
    storage = _storage(canon)
    if storage:
        model["storage"] = storage
    if args:
        model["args"] = args
    if canon.get("resources"):
        model["resources"] = canon["resources"]
    if canon.get("volumeMounts"):
        model["volumeMounts"] = canon["volumeMounts"]

    predictor: dict[str, Any] = {"minReplicas": 1, "model": model}
    for key in ("nodeSelector", "tolerations", "volumes"):
        if canon.get(key):
            predictor[key] = canon[key]
    spec = {"predictor": predictor}

    annotations = {
        SECRET_NAME_ANNOTATION: HF_TOKEN_SECRET,
        MODEL_ID_ANNOTATION: canon["id"],
    }
    if uri.startswith("pvc://"):
        annotations[READONLY_ANNOTATION] = "false"
    annotations[MANIFEST_HASH_ANNOTATION] = manifest_hash(spec)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": settings.active_inferenceservice_name,
            "namespace": settings.active_namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": annotations,
        },
        "spec": spec,
    }


class _ManifestDumper(yaml.SafeDumper):
    """SafeDumper that double-quotes strings holding Unicode line breaks.

    With allow_unicode, PyYAML writes U+0085 (NEL) raw inside a single-quoted scalar, and its own
    loader then reads it back as a line break: the text would not round-trip.
    """


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(ch in value for ch in "\x85\u2028\u2029"):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_ManifestDumper.add_representer(str, _represent_str)


def manifest_to_yaml(manifest: Mapping[str, Any]) -> str:
    """YAML text of a manifest, keys in rendering order."""
    text: str = yaml.dump(
        dict(manifest), Dumper=_ManifestDumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return text
