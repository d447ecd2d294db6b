"""Discovery and fit: Hub insights, fit reports per GPU profile, compatibility, recommendations, entry generation.

The package is split along its seams; this module re-exports the public names so callers keep
writing ``discovery.X``:

- ``context``: GPU profiles loaded at start-up, the cached inventory, the Hub client, fit profiles;
- ``insights``: the insight shared by search results and model details, search, model detail;
- ``inputs``: what the estimator needs for a model (local weights first, else the Hub);
- ``compatibility``: entry settings, GPU requests, matching nodes, entry fit, recommendations;
- ``entries``: generated catalog entries, vLLM architecture details, GPU info.

Tunables (``INVENTORY_TTL``, ``SEARCH_WORKERS``) live in the module that reads them.
"""

from portal.services.discovery.compatibility import (
    compatibility,
    entry_fit,
    entry_settings,
    gpu_requests,
    gpu_resource,
    matching_nodes,
    profile_listing,
    recommendations,
    target_profile,
    tolerates,
)
from portal.services.discovery.context import app_profiles, fit_profiles, hub_client, init_app, inventory
from portal.services.discovery.entries import (
    architecture_detail,
    cached_architectures,
    generate_entry,
    gpu_info,
    safe_id,
)
from portal.services.discovery.inputs import (
    ModelInputs,
    inputs_for_entry,
    inputs_from_directory,
    inputs_from_hub,
    installed_path_for,
    local_weights_dir,
)
from portal.services.discovery.insights import (
    build_insight,
    config_summary,
    fit_reports,
    fit_row,
    model_detail,
    search,
    search_query,
    weights_for,
)

__all__ = [
    "ModelInputs",
    "app_profiles",
    "architecture_detail",
    "build_insight",
    "cached_architectures",
    "compatibility",
    "config_summary",
    "entry_fit",
    "entry_settings",
    "fit_profiles",
    "fit_reports",
    "fit_row",
    "generate_entry",
    "gpu_info",
    "gpu_requests",
    "gpu_resource",
    "hub_client",
    "init_app",
    "inputs_for_entry",
    "inputs_from_directory",
    "inputs_from_hub",
    "installed_path_for",
    "inventory",
    "local_weights_dir",
    "matching_nodes",
    "model_detail",
    "profile_listing",
    "recommendations",
    "safe_id",
    "search",
    "search_query",
    "target_profile",
    "tolerates",
    "weights_for",
]
