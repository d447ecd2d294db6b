"""Catalog entry validation: schema, manifest, vLLM support, fit, and what the cluster must provide.

Result: ``{"valid", "errors", "checks": [{name, status: pass|warn|fail, message, metadata}], "generatedAt"}``;
``valid`` = no schema error and no failed check. Checks that need the cluster answer ``warn`` with the
reason when it is unreachable, so validation works offline (the CLI) and never fails with a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from portal.config import Settings
from portal.devcluster.schema import validate_inference_service
from portal.errors import PortalError
from portal.extensions import current_settings
from portal.services import discovery, manifests, vllm_registry
from portal.services.catalog_entry import parse_entry
from portal.services.cluster import Cluster, get_cluster, get_configmap, get_pvc, get_secret, get_serving_runtime
from portal.services.fit import estimate_fit
from portal.services.manifests import render_inference_service
from portal.services.weights.paths import parse_pvc

Check = dict[str, Any]


def _check(name: str, status: str, message: str, **metadata: Any) -> Check:
    out: Check = {"name": name, "status": status, "message": message}
    if metadata:
        out["metadata"] = {k: str(v) for k, v in metadata.items() if v is not None}
    return out


def _references(entry: Mapping[str, Any], kind: str) -> dict[str, bool]:
    """Referenced Secret or ConfigMap names → optional (only when every reference is optional)."""
    refs: dict[str, bool] = {}

    def add(name: Any, optional: Any) -> None:
        if isinstance(name, str) and name:
            refs[name] = refs.get(name, True) and bool(optional)

    key_ref = "secretKeyRef" if kind == "secret" else "configMapKeyRef"
    for env in entry.get("env") or []:
        ref = (env.get("valueFrom") or {}).get(key_ref)
        if ref:
            add(ref.get("name"), ref.get("optional"))
    for volume in entry.get("volumes") or []:
        if kind == "secret" and volume.get("secret"):
            add(volume["secret"].get("secretName"), volume["secret"].get("optional"))
        if kind == "configmap" and volume.get("configMap"):
            add(volume["configMap"].get("name"), volume["configMap"].get("optional"))
    return refs


class _Validator:
    def __init__(self, settings: Settings, cluster: Cluster | None) -> None:
        self.settings = settings
        self.cluster = cluster
        self.cluster_problem: str | None = None
        if cluster is None or not cluster.configured:
            self.cluster_problem = "no Kubernetes cluster is configured"

    def cluster_call(self, name: str, func: Callable[[], Check]) -> Check:
        """Run a cluster check; an unreachable cluster makes it (and later ones) a warn with the reason."""
        if self.cluster_problem is not None:
            return _check(name, "warn", f"not checked: {self.cluster_problem}")
        try:
            return func()
        except PortalError as exc:
            if exc.status in (501, 503, 504):
                self.cluster_problem = exc.message
            return _check(name, "warn", f"not checked: {exc.message}")

    def manifest(self, entry: Mapping[str, Any]) -> Check:
        try:
            manifest = render_inference_service(entry, self.settings)
        except (KeyError, TypeError, ValueError) as exc:
            return _check("manifest", "fail", f"the InferenceService cannot be rendered: {exc}")
        result = validate_inference_service(manifest, strict=False)
        if not result.ok:
            causes = "; ".join(f"{c.get('field')}: {c.get('message')}" for c in result.causes[:5])
            return _check("manifest", "fail", f"InferenceService is invalid against the KServe CRD: {causes}")
        if result.warnings:
            return _check("manifest", "warn", "; ".join(result.warnings[:5]))
        return _check("manifest", "pass", "InferenceService is valid against the KServe CRD")

    def model_checks(self, entry: Mapping[str, Any]) -> list[Check]:
        try:
            inputs = discovery.inputs_for_entry(entry)
        except PortalError as exc:
            why = f"not checked: {exc.message}"
            return [_check("architecture", "warn", why), _check("fit", "warn", why)]
        registry = vllm_registry.active_registry()
        support = registry.check(inputs.config.get("architectures") or [])
        archs = ", ".join(support.architectures) or "none"
        if support.supported:
            arch = _check(
                "architecture",
                "pass",
                f"{', '.join(support.matched_names)} is supported by vLLM {registry.source.vllm_version}",
                source=inputs.source,
            )
        else:
            note = f" ({'; '.join(support.notes)})" if support.notes else ""
            arch = _check("architecture", "fail", f"no architecture of the model ({archs}) is registered in vLLM{note}")
        inv = discovery.inventory()
        profile = discovery.target_profile(entry, inv)
        if profile is None:
            return [arch, _check("fit", "warn", "not checked: the nodeSelector does not target a known GPU profile")]
        try:
            report = estimate_fit(
                inputs.shape,
                inputs.weights,
                profile,
                profiles=discovery.app_profiles(),
                **discovery.entry_settings(entry),
            )
        except PortalError as exc:
            return [arch, _check("fit", "fail", exc.message, gpu=profile.name)]
        status = "pass" if report.fits else "fail"
        return [arch, _check("fit", status, report.summary, gpu=profile.name, level=report.level)]

    def storage(self, entry: Mapping[str, Any]) -> list[Check]:
        uri = str(entry.get("storageUri") or "")
        ns = self.settings.validation_namespace
        if not uri:
            return [
                _check("storage", "warn", "model has no storageUri configured (weights download from the Hub at start)")
            ]
        parts = parse_pvc(uri)
        if parts is None:
            return [_check("storage", "pass", "storageUri does not reference a PVC")]
        pvc, sub = parts.claim, parts.path

        def pvc_check() -> Check:
            found = get_pvc(pvc, ns, cluster=self.cluster)
            if found is None:
                return _check("storage", "fail", f"PVC {pvc} not found in namespace {ns}", pvc=pvc)
            phase = (found.get("status") or {}).get("phase") or "Unknown"
            if pvc != self.settings.weights_pvc_name:
                return _check(
                    "storage",
                    "warn",
                    f"PVC {pvc} differs from configured cache {self.settings.weights_pvc_name}",
                    pvc=pvc,
                    phase=phase,
                )
            return _check(
                "storage",
                "pass",
                f"PVC {pvc} found (phase {phase})" + (f" subpath {sub}" if sub else ""),
                pvc=pvc,
                phase=phase,
            )

        checks = [self.cluster_call("storage", pvc_check)]
        local = discovery.local_weights_dir(self.settings, uri)
        if not sub:
            checks.append(_check("weights", "warn", "storageUri does not provide a PVC subpath"))
        elif local is None:
            checks.append(
                _check("weights", "warn", f"PVC {pvc} is not the weights volume mounted here; weights not checked")
            )
        elif not local.exists():
            checks.append(
                _check("weights", "warn", f"weights not present at {local} (PVC {pvc}): install them first", path=local)
            )
        elif not local.is_dir():
            checks.append(_check("weights", "fail", f"{local} exists but is not a directory", path=local))
        elif not (local / "config.json").is_file():
            checks.append(_check("weights", "fail", f"{local} has no config.json: not a complete model", path=local))
        else:
            checks.append(_check("weights", "pass", f"weights present at {local}", path=local))
        return checks

    def references(self, entry: Mapping[str, Any], kind: str) -> list[Check]:
        ns = self.settings.validation_namespace
        getter = get_secret if kind == "secret" else get_configmap
        checks = []
        for name, optional in sorted(_references(entry, kind).items()):

            def one(name: str = name, optional: bool = optional) -> Check:
                found = getter(name, ns, cluster=self.cluster)
                if found is not None:
                    return _check(f"{kind}:{name}", "pass", f"{kind} present")
                if optional:
                    return _check(f"{kind}:{name}", "warn", f"{kind} {name} not found (optional)")
                return _check(f"{kind}:{name}", "fail", f"{kind} {name} not found in namespace {ns}")

            checks.append(self.cluster_call(f"{kind}:{name}", one))
        return checks

    def gpu_capacity(self, entry: Mapping[str, Any]) -> Check:
        requested = discovery.gpu_resource(entry)
        if requested is None:
            return _check("gpu-capacity", "pass", "no GPU requirement detected")
        resource, count = requested

        def check() -> Check:
            inv = discovery.inventory(fresh=True)
            if not inv.available:
                raise PortalError(inv.message or "cluster unavailable", status=503)
            nodes = discovery.matching_nodes(entry, inv)
            enough = [n for n in nodes if n.free >= count]
            if enough:
                node = enough[0]
                return _check(
                    "gpu-capacity",
                    "pass",
                    f"node {node.name} satisfies {resource} >= {count} ({node.free} free)",
                    node=node.name,
                    capacity=node.allocatable,
                    free=node.free,
                    resource=resource,
                    gpuProduct=node.product,
                    profile=node.profile,
                )
            if nodes:
                names = ", ".join(f"{n.name} ({n.free} of {n.allocatable} free)" for n in nodes)
                return _check("gpu-capacity", "fail", f"matching nodes lack free {resource}: need {count}; {names}")
            return _check(
                "gpu-capacity",
                "fail",
                f"no node matches the nodeSelector and tolerations with {resource} >= {count}",
                resource=resource,
            )

        return self.cluster_call("gpu-capacity", check)

    def runtime(self, entry: Mapping[str, Any]) -> Check:
        name = str(entry.get("runtime") or manifests.DEFAULT_RUNTIME)
        ns = self.settings.validation_namespace

        def check() -> Check:
            found = get_serving_runtime(name, ns, cluster=self.cluster)
            if found is None:
                return _check(
                    "runtime", "fail", f"no ServingRuntime {name} in {ns} and no ClusterServingRuntime {name}"
                )
            kind = found.get("kind") or "ServingRuntime"
            return _check("runtime", "pass", f"{kind} {name} exists", runtime=name)

        return self.cluster_call("runtime", check)


def validate_entry(data: Any, *, use_cluster: bool = True) -> dict[str, Any]:
    """Validate raw entry JSON; every check runs even when the schema fails (best-effort entry)."""
    settings: Settings = current_settings()
    entry, issues = parse_entry(data)
    errors = [str(i) for i in issues if i.severity == "error"]
    cluster = get_cluster() if use_cluster else None
    v = _Validator(settings, cluster)
    checks: list[Check] = []
    if errors:
        checks.append(_check("schema", "fail", f"{len(errors)} schema error(s): " + "; ".join(errors[:3])))
    else:
        warnings = [str(i) for i in issues if i.severity == "warning"]
        checks.append(
            _check("schema", "warn" if warnings else "pass", "; ".join(warnings) or "entry matches the catalog schema")
        )
    if entry.get("id"):
        checks.append(v.manifest(entry))
        checks.extend(v.model_checks(entry))
    checks.extend(v.storage(entry))
    checks.extend(v.references(entry, "secret"))
    checks.extend(v.references(entry, "configmap"))
    checks.append(v.gpu_capacity(entry))
    checks.append(v.runtime(entry))
    valid = not errors and all(c["status"] != "fail" for c in checks)
    result: dict[str, Any] = {
        "valid": valid,
        "errors": errors,
        "checks": checks,
        "generatedAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    if not valid:
        result["status"] = "warning"
    return result


def preview_entry(data: Any) -> dict[str, Any]:
    """Validation plus the rendered manifest (best effort: an invalid entry still renders what it can)."""
    settings: Settings = current_settings()
    validation = validate_entry(data)
    entry, _issues = parse_entry(data)
    manifest: dict[str, Any] | None
    try:
        manifest = render_inference_service({"id": "preview", **entry}, settings)
    except (KeyError, TypeError, ValueError):
        manifest = None
    out: dict[str, Any] = {"model": entry, "validation": validation, "manifest": manifest}
    if not validation["valid"]:
        out["status"] = "warning"
    return out


def validate_file(path: Any, *, use_cluster: bool = True) -> dict[str, Any]:
    """Validate one catalog file; unreadable or non-JSON files fail the schema check."""
    import json
    from pathlib import Path

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return {
            "valid": False,
            "errors": [f"cannot read {path}: {exc}"],
            "checks": [_check("schema", "fail", f"cannot read {path}: {exc}")],
            "generatedAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
    return validate_entry(data, use_cluster=use_cluster)


def generate_and_validate(
    hf_id: str,
    *,
    display_name: str | None = None,
    gpu_type: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A generated catalog entry for a Hub model, its validation, and the fit it was sized with."""
    generated = discovery.generate_entry(hf_id, display_name=display_name, gpu_type=gpu_type, overrides=overrides)
    result = validate_entry(generated["entry"])
    out = {"model": generated["entry"], "validation": result, "gpuType": generated["gpuType"], "fit": generated["fit"]}
    if not result["valid"]:
        out["status"] = "warning"
    return out
