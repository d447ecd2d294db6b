"""First browser test: the portal shell renders, htmx loads, the console stays clean."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_home_page_in_a_real_browser(live_server: Any, page: Any) -> None:
    server = live_server()
    page.goto(f"{server.url}/ui/")
    nav = page.get_by_role("navigation", name="Main")
    for label in ("Jobs", "History", "System"):
        assert nav.get_by_role("link", name=label).is_visible()
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("window.htmx.version").startswith("2.")
    page.get_by_role("link", name="System").click()
    page.wait_for_url("**/ui/system")
    assert page.get_by_role("heading", name="System").is_visible()
    page.wait_for_load_state("networkidle")
    assert page.problems == []


def test_swagger_ui_renders_offline(live_server: Any, page: Any) -> None:
    server = live_server()
    page.goto(f"{server.url}/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    assert "Model Manager" in page.inner_text(".swagger-ui .info .title")
    assert page.problems == []
