"""The resource types the dev cluster serves, and how each one behaves."""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")

KSERVE_GROUP = "serving.kserve.io"
ISVC_LABEL = "serving.kserve.io/inferenceservice"
"""The label KServe puts on an InferenceService's predictor Pods."""


@dataclass(frozen=True)
class ResourceType:
    """One REST resource: where it lives in the URL space and how the server treats it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    subresources: tuple[str, ...] = ()
    crd: str | None = None
    # Secrets, config maps and friends answer a delete with a Status; pods, PVCs and custom
    # resources answer with the object as it was removed.
    delete_returns_object: bool = True
    # Custom resources refuse an update without metadata.resourceVersion; core types do not.
    unconditional_update: bool = True

    @property
    def api_version(self) -> str:
        """`v1` or `group/version`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`secrets` or `inferenceservices.serving.kserve.io`, as in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`Secret` or `InferenceService.serving.kserve.io`, as in Invalid messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def list_kind(self) -> str:
        """`SecretList`."""
        return f"{self.kind}List"

    @property
    def is_custom(self) -> bool:
        """True for types defined by a CustomResourceDefinition."""
        return self.crd is not None


INFERENCE_SERVICES = ResourceType(
    KSERVE_GROUP,
    "v1beta1",
    "InferenceService",
    "inferenceservices",
    "inferenceservice",
    namespaced=True,
    short_names=("isvc",),
    subresources=("status",),
    crd="inferenceservices.serving.kserve.io",
    unconditional_update=False,
)
SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "ServingRuntime",
    "servingruntimes",
    "servingruntime",
    namespaced=True,
    crd="servingruntimes.serving.kserve.io",
    unconditional_update=False,
)
CLUSTER_SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "ClusterServingRuntime",
    "clusterservingruntimes",
    "clusterservingruntime",
    namespaced=False,
    crd="clusterservingruntimes.serving.kserve.io",
    unconditional_update=False,
)
CUSTOM_RESOURCE_DEFINITIONS = ResourceType(
    "apiextensions.k8s.io",
    "v1",
    "CustomResourceDefinition",
    "customresourcedefinitions",
    "customresourcedefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    verbs=READ_VERBS,
)

NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",), subresources=("status",))
NODES = ResourceType(
    "", "v1", "Node", "nodes", "node", False, ("no",), subresources=("status",), delete_returns_object=False
)
PODS = ResourceType("", "v1", "Pod", "pods", "pod", True, ("po",), subresources=("status", "log"))
PERSISTENT_VOLUME_CLAIMS = ResourceType(
    "", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", True, ("pvc",),
    subresources=("status",),
)  # fmt: skip
PERSISTENT_VOLUMES = ResourceType(
    "", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", False, ("pv",), subresources=("status",)
)
SECRETS = ResourceType("", "v1", "Secret", "secrets", "secret", True, delete_returns_object=False)
CONFIG_MAPS = ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",), delete_returns_object=False)
EVENTS = ResourceType("", "v1", "Event", "events", "event", True, ("ev",), delete_returns_object=False)
SERVICES = ResourceType(
    "", "v1", "Service", "services", "service", True, ("svc",), subresources=("status",), delete_returns_object=False
)
SERVICE_ACCOUNTS = ResourceType(
    "", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",), delete_returns_object=False
)
# Stored and validated only (nothing runs them): enough to dry-run the manifests of deploy/.
DEPLOYMENTS = ResourceType(
    "apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), subresources=("status",)
)
_RBAC = "rbac.authorization.k8s.io"
ROLES = ResourceType(_RBAC, "v1", "Role", "roles", "role", True, delete_returns_object=False)
ROLE_BINDINGS = ResourceType(
    _RBAC, "v1", "RoleBinding", "rolebindings", "rolebinding", True, delete_returns_object=False
)
CLUSTER_ROLES = ResourceType(
    _RBAC, "v1", "ClusterRole", "clusterroles", "clusterrole", False, delete_returns_object=False
)
CLUSTER_ROLE_BINDINGS = ResourceType(
    _RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", False, delete_returns_object=False
)

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    PERSISTENT_VOLUME_CLAIMS,
    PERSISTENT_VOLUMES,
    SECRETS,
    CONFIG_MAPS,
    EVENTS,
    SERVICES,
    SERVICE_ACCOUNTS,
    INFERENCE_SERVICES,
    SERVING_RUNTIMES,
    CLUSTER_SERVING_RUNTIMES,
    CUSTOM_RESOURCE_DEFINITIONS,
    DEPLOYMENTS,
    ROLES,
    ROLE_BINDINGS,
    CLUSTER_ROLES,
    CLUSTER_ROLE_BINDINGS,
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCE_TYPES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCE_TYPES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The type served at `/apis/<group>/<version>/<plural>` (group "" for `/api/v1`)."""
    return _BY_PATH.get((group, version, plural))


def lookup_kind(api_version: str, kind: str) -> ResourceType | None:
    """The type for an object's `apiVersion` and `kind`."""
    return _BY_KIND.get((api_version, kind))


def group_versions() -> dict[str, list[str]]:
    """Each non-core API group with its versions, preferred version first."""
    groups: dict[str, list[str]] = {}
    for rtype in RESOURCE_TYPES:
        if rtype.group:
            versions = groups.setdefault(rtype.group, [])
            if rtype.version not in versions:
                versions.append(rtype.version)
    return groups
