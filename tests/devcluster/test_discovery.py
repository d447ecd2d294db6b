"""Discovery and core reads through the official client."""

from __future__ import annotations

from kubernetes.client import ApiClient, ApiextensionsV1Api, ApisApi, CoreApi, CoreV1Api, CustomObjectsApi, VersionApi


def test_version(api_client: ApiClient) -> None:
    info = VersionApi(api_client).get_code()
    assert info.major == "1"
    assert info.git_version.startswith("v1.")


def test_api_and_apis(api_client: ApiClient) -> None:
    assert CoreApi(api_client).get_api_versions().versions == ["v1"]
    groups = {g.name: g for g in ApisApi(api_client).get_api_versions().groups}
    kserve = groups["serving.kserve.io"]
    assert kserve.preferred_version.version == "v1beta1"
    assert [v.version for v in kserve.versions] == ["v1beta1", "v1alpha1"]


def test_resource_lists(api_client: ApiClient) -> None:
    core = {r.name: r for r in CoreV1Api(api_client).get_api_resources().resources}
    assert core["nodes"].namespaced is False
    assert core["secrets"].namespaced is True
    assert "pods/log" in core
    custom = CustomObjectsApi(api_client)
    beta = {r.name: r for r in custom.get_api_resources("serving.kserve.io", "v1beta1").resources}
    assert beta["inferenceservices"].kind == "InferenceService"
    assert beta["inferenceservices"].short_names == ["isvc"]
    assert "inferenceservices/status" in beta
    alpha = {r.name: r for r in custom.get_api_resources("serving.kserve.io", "v1alpha1").resources}
    assert alpha["clusterservingruntimes"].namespaced is False
    assert alpha["servingruntimes"].namespaced is True


def test_seeded_nodes(core: CoreV1Api) -> None:
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == {"venus", "gpu-l4-1"}
    venus, l4 = nodes["venus"], nodes["gpu-l4-1"]
    assert venus.status.allocatable["amd.com/gpu"] == "1"
    assert venus.metadata.labels["amd.com/gpu.product"] == "AMD-Instinct-MI210"
    assert [(t.key, t.effect) for t in venus.spec.taints] == [("amd.com/gpu", "NoSchedule")]
    assert l4.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-L4"
    assert l4.metadata.labels["nvidia.com/gpu.memory"] == "23034"
    assert l4.status.allocatable["nvidia.com/gpu"] == "1"
    assert core.list_node(label_selector="nvidia.com/gpu.product=NVIDIA-L4").items[0].metadata.name == "gpu-l4-1"


def test_seeded_namespaced_objects(core: CoreV1Api, api_client: ApiClient) -> None:
    assert "ai" in {n.metadata.name for n in core.list_namespace().items}
    pvc = core.read_namespaced_persistent_volume_claim("venus-model-storage", "ai")
    assert pvc.status.phase == "Bound"
    secret = core.read_namespaced_secret("hf-token", "ai")
    assert "HUGGING_FACE_HUB_TOKEN" in secret.data
    crd = ApiextensionsV1Api(api_client).read_custom_resource_definition("inferenceservices.serving.kserve.io")
    assert crd.spec.names.short_names == ["isvc"]
