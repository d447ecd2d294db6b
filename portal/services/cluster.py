"""Cluster gateway: the official Kubernetes client, configured once, with timeouts and error mapping.

Configuration order: a kubeconfig file (`KUBECONFIG`, the dev cluster's in demo mode, or
`~/.kube/config`), else in-cluster config. Every call goes through `Cluster.call`, which adds
connect/read timeouts and turns transport failures into 503 (unreachable) or 504 (timeout) and
unexpected API errors into 502, with a message a person can act on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from flask import Flask, current_app
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from portal.config import Settings
from portal.errors import NotConfigured, Unavailable, UpstreamError, UpstreamTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")

KSERVE_GROUP = "serving.kserve.io"
KSERVE_VERSION = "v1beta1"
ISVC_PLURAL = "inferenceservices"
SERVING_RUNTIME_VERSION = "v1alpha1"


@dataclass(frozen=True, order=True)
class Permission:
    """One RBAC grant: `verb` on `resource` of API `group`, in the namespace or cluster-wide."""

    group: str
    resource: str
    verb: str
    cluster_wide: bool = False


# Every Kubernetes API call the portal makes, as RBAC sees it. deploy/base/rbac.yaml grants exactly
# these (the namespaced ones in the Role, the cluster-wide ones in the ClusterRole);
# tests/test_deploy.py checks the table against that file and against the requests the operations
# below send to the dev cluster. Add a row here and a rule there when a new call is added.
KUBERNETES_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        # activation: read, create, replace (also as a server dry run) and delete the InferenceService
        Permission(KSERVE_GROUP, ISVC_PLURAL, "get"),
        Permission(KSERVE_GROUP, ISVC_PLURAL, "create"),
        Permission(KSERVE_GROUP, ISVC_PLURAL, "update"),
        Permission(KSERVE_GROUP, ISVC_PLURAL, "delete"),
        # validation: get_serving_runtime, get_pvc, get_secret, get_configmap (by name, never list)
        Permission(KSERVE_GROUP, "servingruntimes", "get"),
        Permission(KSERVE_GROUP, "clusterservingruntimes", "get", cluster_wide=True),
        Permission("", "persistentvolumeclaims", "get"),
        Permission("", "secrets", "get"),
        Permission("", "configmaps", "get"),
        # inventory.read_inventory: GPU nodes and the GPUs every pod holds
        Permission("", "nodes", "list", cluster_wide=True),
        Permission("", "pods", "list", cluster_wide=True),
        # cluster_watch: list + watch of the managed namespace's InferenceServices, the nodes and the pods
        Permission(KSERVE_GROUP, ISVC_PLURAL, "list"),
        Permission(KSERVE_GROUP, ISVC_PLURAL, "watch"),
        Permission("", "nodes", "watch", cluster_wide=True),
        Permission("", "pods", "watch", cluster_wide=True),
        # fit_measurement: the predictor pod of the active InferenceService and its start-up log
        Permission("", "pods", "list"),
        Permission("", "pods/log", "get"),
    }
)


class Cluster:
    """One configured connection to a Kubernetes API server."""

    def __init__(self, api_client: k8s.ApiClient | None, *, source: str, timeout: float, demo: bool) -> None:
        self.api_client = api_client
        self.source = source
        self.timeout = timeout
        self.demo = demo

    @property
    def configured(self) -> bool:
        """True when there is a cluster to talk to."""
        return self.api_client is not None

    def _client(self) -> k8s.ApiClient:
        if self.api_client is None:
            raise NotConfigured(
                "no Kubernetes cluster is configured: set KUBECONFIG, run in a pod, or use `make run` for the demo cluster",
                code="cluster_not_configured",
            )
        return self.api_client

    def custom(self) -> k8s.CustomObjectsApi:
        """The CustomObjectsApi (InferenceServices, ServingRuntimes)."""
        return k8s.CustomObjectsApi(self._client())

    def core(self) -> k8s.CoreV1Api:
        """The CoreV1Api (nodes, PVCs, secrets, configmaps, pods)."""
        return k8s.CoreV1Api(self._client())

    @property
    def request_timeout(self) -> tuple[float, float]:
        """(connect, read) seconds for every request."""
        return (min(5.0, self.timeout), self.timeout)

    def call(self, func: Callable[..., T], *args: Any, action: str = "talk to the cluster", **kwargs: Any) -> T:
        """Run one client call with timeouts; ApiException (an answer from the API) passes through."""
        kwargs.setdefault("_request_timeout", self.request_timeout)
        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 0 or exc.status is None:
                raise Unavailable(
                    f"could not {action}: the Kubernetes API did not answer ({exc.reason})", code="cluster_unreachable"
                ) from exc
            raise
        except urllib3.exceptions.NewConnectionError as exc:
            # Checked first: in urllib3 2.x a refused connection is a subclass of ConnectTimeoutError.
            raise Unavailable(
                f"could not {action}: the Kubernetes API at {self.host} is unreachable",
                code="cluster_unreachable",
                details={"source": self.source},
            ) from exc
        except (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError, TimeoutError) as exc:
            raise UpstreamTimeout(
                f"could not {action}: the Kubernetes API did not answer within {self.timeout:g}s",
                code="cluster_timeout",
                details={"source": self.source},
            ) from exc
        except urllib3.exceptions.MaxRetryError as exc:
            timed_out = (urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.ConnectTimeoutError)
            if isinstance(exc.reason, timed_out) and not isinstance(exc.reason, urllib3.exceptions.NewConnectionError):
                raise UpstreamTimeout(
                    f"could not {action}: the Kubernetes API did not answer within {self.timeout:g}s",
                    code="cluster_timeout",
                    details={"source": self.source},
                ) from exc
            raise Unavailable(
                f"could not {action}: the Kubernetes API at {self.host} is unreachable",
                code="cluster_unreachable",
                details={"source": self.source},
            ) from exc
        except (urllib3.exceptions.HTTPError, ConnectionError, OSError) as exc:
            raise Unavailable(
                f"could not {action}: the Kubernetes API at {self.host} is unreachable ({type(exc).__name__})",
                code="cluster_unreachable",
                details={"source": self.source},
            ) from exc

    @property
    def host(self) -> str:
        """The API server URL (for messages)."""
        if self.api_client is None:
            return "(none)"
        return str(self.api_client.configuration.host)


def api_error(exc: ApiException, action: str) -> UpstreamError:
    """A 502 for an API answer the caller did not expect, with the server's own message."""
    message = status_message(exc)
    return UpstreamError(
        f"could not {action}: the Kubernetes API answered {exc.status}: {message}",
        code="cluster_error",
        details={"status": exc.status, "reason": exc.reason},
    )


def status_message(exc: ApiException) -> str:
    """The `message` of a Kubernetes Status body, or the reason."""
    import json

    try:
        body = json.loads(exc.body or "{}")
        return str(body.get("message") or exc.reason)
    except (ValueError, TypeError):
        return str(exc.reason)


def status_body(exc: ApiException) -> dict[str, Any]:
    """The parsed Kubernetes Status body of an ApiException (empty when there is none)."""
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def build_cluster(settings: Settings) -> Cluster:
    """Configure the client: kubeconfig file, else in-cluster, else nothing (the UI says so)."""
    # Like kubectl: an explicit KUBECONFIG replaces the default ~/.kube/config.
    candidates = [p for p in (settings.kubeconfig or "").split(os.pathsep) if p]
    if not candidates:
        candidates.append(str(Path.home() / ".kube" / "config"))
    for path in candidates:
        if Path(path).is_file():
            configuration = k8s.Configuration()
            try:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=path, client_configuration=configuration, persist_config=False
                )
            except (ConfigException, OSError, ValueError) as exc:
                log.warning("kubeconfig %s is unusable: %s", path, exc)
                continue
            return _make(configuration, f"kubeconfig {path}", settings)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = k8s.Configuration()
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return _make(configuration, "in-cluster", settings)
        except ConfigException as exc:
            log.warning("in-cluster config is unusable: %s", exc)
    return Cluster(None, source="none", timeout=settings.kube_timeout, demo=settings.devcluster)


def _make(configuration: k8s.Configuration, source: str, settings: Settings) -> Cluster:
    # No urllib3 retries: an unreachable API must answer in seconds, not after three attempts.
    configuration.retries = 0
    return Cluster(k8s.ApiClient(configuration), source=source, timeout=settings.kube_timeout, demo=settings.devcluster)


_lock = threading.Lock()


def cluster_for(app: Flask) -> Cluster:
    """The app's Cluster (built on first use, then shared)."""
    existing = app.extensions.get("cluster")
    if isinstance(existing, Cluster):
        return existing
    with _lock:
        existing = app.extensions.get("cluster")
        if not isinstance(existing, Cluster):
            existing = build_cluster(app.config["SETTINGS"])
            app.extensions["cluster"] = existing
        return existing


def get_cluster() -> Cluster:
    """The current app's Cluster."""
    return cluster_for(current_app._get_current_object())  # type: ignore[attr-defined]


# --- read helpers shared by several areas -------------------------------------------------------
# Each returns plain JSON-shaped dicts (what the API server sent), or None when the object does not
# exist; any other API answer becomes a 502 through `api_error`.


def _sanitize(cluster: Cluster, obj: Any) -> Any:
    assert cluster.api_client is not None
    return cluster.api_client.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]


def _get_or_none(cluster: Cluster, func: Callable[..., Any], *args: Any, action: str) -> dict[str, Any] | None:
    try:
        found = cluster.call(func, *args, action=action)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise api_error(exc, action) from exc
    result = _sanitize(cluster, found)
    return result if isinstance(result, dict) else None


def list_nodes(cluster: Cluster | None = None, label_selector: str | None = None) -> list[dict[str, Any]]:
    """Every node (optionally filtered by a label selector), as dicts."""
    cluster = cluster or get_cluster()
    kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
    try:
        found = cluster.call(cluster.core().list_node, action="list the cluster's nodes", **kwargs)
    except ApiException as exc:
        raise api_error(exc, "list the cluster's nodes") from exc
    items = _sanitize(cluster, found).get("items") or []
    return [item for item in items if isinstance(item, dict)]


def list_pods(
    namespace: str, label_selector: str | None = None, cluster: Cluster | None = None
) -> list[dict[str, Any]]:
    """Pods of a namespace (optionally filtered by a label selector), as dicts."""
    cluster = cluster or get_cluster()
    kwargs: dict[str, Any] = {"label_selector": label_selector} if label_selector else {}
    try:
        found = cluster.call(
            cluster.core().list_namespaced_pod, namespace, action=f"list pods in {namespace}", **kwargs
        )
    except ApiException as exc:
        raise api_error(exc, f"list pods in {namespace}") from exc
    items = _sanitize(cluster, found).get("items") or []
    return [item for item in items if isinstance(item, dict)]


def get_pvc(name: str, namespace: str, cluster: Cluster | None = None) -> dict[str, Any] | None:
    """A PersistentVolumeClaim, or None when absent."""
    cluster = cluster or get_cluster()
    return _get_or_none(
        cluster,
        cluster.core().read_namespaced_persistent_volume_claim,
        name,
        namespace,
        action=f"read PVC {namespace}/{name}",
    )


def get_secret(name: str, namespace: str, cluster: Cluster | None = None) -> dict[str, Any] | None:
    """A Secret (with its data, base64 as sent), or None when absent; never log or return its values."""
    cluster = cluster or get_cluster()
    return _get_or_none(
        cluster, cluster.core().read_namespaced_secret, name, namespace, action=f"read secret {namespace}/{name}"
    )


def get_configmap(name: str, namespace: str, cluster: Cluster | None = None) -> dict[str, Any] | None:
    """A ConfigMap, or None when absent."""
    cluster = cluster or get_cluster()
    return _get_or_none(
        cluster,
        cluster.core().read_namespaced_config_map,
        name,
        namespace,
        action=f"read configmap {namespace}/{name}",
    )


def get_serving_runtime(name: str, namespace: str, cluster: Cluster | None = None) -> dict[str, Any] | None:
    """The namespaced ServingRuntime `name`, else the ClusterServingRuntime `name`, else None."""
    cluster = cluster or get_cluster()
    custom = cluster.custom()
    found = _get_or_none(
        cluster,
        custom.get_namespaced_custom_object,
        KSERVE_GROUP,
        SERVING_RUNTIME_VERSION,
        namespace,
        "servingruntimes",
        name,
        action=f"read ServingRuntime {namespace}/{name}",
    )
    if found is not None:
        return found
    return _get_or_none(
        cluster,
        custom.get_cluster_custom_object,
        KSERVE_GROUP,
        SERVING_RUNTIME_VERSION,
        "clusterservingruntimes",
        name,
        action=f"read ClusterServingRuntime {name}",
    )


def cluster_info(settings: Settings) -> dict[str, Any]:
    """The `cluster` section of /system/info (no API call: the page must stay fast)."""
    cluster = get_cluster()
    return {
        "cluster": {
            "configured": cluster.configured,
            "source": cluster.source,
            "host": cluster.host,
            "demo": cluster.demo,
            "timeoutSeconds": cluster.timeout,
            "namespace": settings.active_namespace,
            "inferenceService": settings.active_inferenceservice_name,
        }
    }
