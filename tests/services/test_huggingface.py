"""The one Hugging Face gateway: errors mapped once for discovery, fit and installs (local Hub over HTTP)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from portal.errors import PortalError
from portal.services import weights
from portal.services.huggingface import current_hub
from tests.support.hub import HubServer


def _error(call: Any) -> PortalError:
    with pytest.raises(PortalError) as caught:
        call()
    return caught.value


def test_a_gated_repo_has_one_code_for_details_and_installs(install_app: Flask, hub: HubServer) -> None:
    hub.add_repo("acme/gated", {"model.safetensors": b"\0" * 20_000}, gated=True, authorized_tokens={hub.token})
    install = _error(lambda: weights.resolve_files("acme/gated", None, []))
    details = _error(lambda: current_hub().config_json("acme/gated"))
    assert install.code == details.code == "hf_gated"
    assert install.status == details.status == 401
    assert "HUGGINGFACE_API_TOKEN" in install.message and install.details["hfModelId"] == "acme/gated"


def test_missing_repo_and_revision(install_app: Flask, hub: HubServer, small_repo: Any) -> None:
    missing = _error(lambda: weights.resolve_files("acme/nope", None, []))
    assert (missing.status, missing.code) == (404, "hf_not_found")
    assert _error(lambda: current_hub().model_info("acme/nope")).code == "hf_not_found"
    revision = _error(lambda: weights.resolve_files("acme/tiny-llm", "nobranch", []))
    assert (revision.status, revision.code) == (404, "hf_revision_not_found")
    assert revision.details == {"hfModelId": "acme/tiny-llm", "revision": "nobranch"}


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_an_unreachable_hub_is_503_and_raises_the_banner_from_installs_too(
    install_app: Flask, hub: HubServer, small_repo: Any, mode: str
) -> None:
    hub.set_down(True, mode=mode)  # type: ignore[arg-type]
    assert current_hub().unreachable_message() is None
    error = _error(lambda: weights.resolve_files("acme/tiny-llm", None, []))
    assert (error.status, error.code) == (503, "hf_unavailable")
    message = current_hub().unreachable_message()
    assert message is not None and message.startswith("Hugging Face is unreachable")
    hub.set_down(False)
    assert weights.resolve_files("acme/tiny-llm", None, [])[0] == small_repo.commit
    assert current_hub().unreachable_message() is None, "a successful call clears the banner"
