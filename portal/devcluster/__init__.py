"""A Kubernetes-API-compatible server with a simulated KServe, for demo mode and tests.

    from portal.devcluster import DevCluster

    with DevCluster(ready_delay=0.2) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        api = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))

See `cluster.DevCluster` for the knobs, `seed` for the seed format, `schema` for how custom
resources are validated, `controller` for what the simulated KServe does (`scheduler` places its
pods, `status` writes its status bodies), `apiserver` for the routing of the REST API (`reads`,
`writes`) and `openapi` for the documents kubectl downloads. Run it with `python -m
portal.devcluster` (`make devcluster`, port 8001).
"""

from portal.devcluster.cluster import DevCluster, RecordedRequest, run_devcluster
from portal.devcluster.schema import ValidationResult, validate_custom_resource, validate_inference_service
from portal.devcluster.seed import DEFAULT_SEED, SeedError

__all__ = [
    "DEFAULT_SEED",
    "DevCluster",
    "RecordedRequest",
    "SeedError",
    "ValidationResult",
    "run_devcluster",
    "validate_custom_resource",
    "validate_inference_service",
]
