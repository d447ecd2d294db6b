"""Browser: submit the install form, watch the job card's progress bar reach 100 %, copy buttons appear."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fixtures_weights import isolated_queue
from tests.support.hub import HubServer

pytestmark = pytest.mark.browser


def test_install_from_the_weights_page(
    live_server: Any, page: Any, hub: HubServer, small_repo: Any, worker_process: Any
) -> None:
    server = live_server(HF_ENDPOINT=hub.url, **isolated_queue())
    worker_process(burst=False)
    hub.throttle(600_000)  # ~2.5 s: long enough to see the bar move
    card_polls: list[str] = []
    page.on("request", lambda request: card_polls.append(request.url) if request.url.endswith("/card") else None)
    page.goto(f"{server.url}/ui/weights")
    page.get_by_label("Hugging Face model id").fill("not-an-id")
    page.get_by_role("button", name="Install").click()
    page.wait_for_selector("#hfModelId-error")
    assert "invalid Hugging Face model id" in page.inner_text("#hfModelId-error")
    page.get_by_label("Hugging Face model id").fill("acme/tiny-llm")
    page.get_by_role("button", name="Install").click()
    bar = page.locator("#job_card [role=progressbar]")
    bar.wait_for(timeout=10_000)
    seen: set[int] = set()
    for _ in range(300):
        seen.add(int(bar.get_attribute("aria-valuenow") or 0))
        if page.locator("#job_card[data-status=completed]").count():
            break
        page.wait_for_timeout(100)
    assert bar.get_attribute("aria-valuenow") == "100"
    assert len(seen) >= 2, seen
    card = page.locator("#job_card")
    assert "pvc://venus-model-storage/acme/tiny-llm" in card.inner_text()
    assert card.locator("button[data-copy]").count() == 2
    assert card.get_by_role("link", name="Create catalog entry from this").is_visible()
    # The installs table reloads itself when the job completes (HX-Trigger: weights-changed).
    page.locator("#installs", has_text="acme/tiny-llm").wait_for(timeout=5_000)
    # Polling stops on 286: no card request after the completed one, over more than two poll intervals.
    polls_at_completion = len(card_polls)
    page.wait_for_timeout(2500)
    assert len(card_polls) == polls_at_completion, "the job card kept polling after it completed"
    assert polls_at_completion >= 2, card_polls  # it did poll while the install ran
    assert page.locator("#job_card[data-status=completed]").count() == 1
    # Chromium logs every 4xx as a console error; the 422 of the invalid form is the expected one.
    assert [p for p in page.problems if "status of 422" not in p] == []
