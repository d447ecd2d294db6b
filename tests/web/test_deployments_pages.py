"""Deployments pages: cards polling until Ready, new deployment with placements, capacity bars, header counts."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from portal.devcluster.cluster import DevCluster
from tests.web.helpers import csrf_token

HTMX = {"HX-Request": "true"}


def poll_until_stopped(client: FlaskClient, timeout: float = 10.0) -> str:
    """Poll the cards partial as htmx would until it answers 286."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/ui/deployments/list", headers=HTMX)
        if response.status_code == 286:
            return response.get_data(as_text=True)
        assert response.status_code == 200
        assert 'hx-trigger="every 1s"' in response.get_data(as_text=True)
        time.sleep(0.1)
    raise AssertionError("the cards never stopped polling")


def test_new_deployment_to_ready_then_switch_roll_back_delete(deploy_app: Flask, devcluster: DevCluster) -> None:
    devcluster.ready_delay = 600  # stays Pending until the test moves the cluster's clock
    client = deploy_app.test_client()
    token = csrf_token(client, "/ui/deployments/new")
    placements = client.get("/ui/deployments/placements?model=small-a", headers=HTMX).get_data(as_text=True)
    assert placements.startswith('<fieldset id="placements"')
    assert 'value="gpu-l4-1:1" checked' in placements and "venus" in placements

    bad = client.post("/ui/deployments", data={"name": "Bad_Name", "model": "small-a", "csrf_token": token})
    assert bad.status_code == 422 and "DNS-1035" in bad.get_data(as_text=True)

    created = client.post(
        "/ui/deployments", data={"name": "chat", "model": "small-a", "placement": "venus:1", "csrf_token": token}
    )
    assert created.status_code == 302 and created.headers["Location"].endswith("/ui/deployments")
    page = client.get("/ui/deployments").get_data(as_text=True)
    assert 'id="deployment_list"' in page and "chat" in page and "on venus" in page
    assert 'hx-trigger="every 1s"' in page, "pending: the cards poll"
    assert client.get("/ui/deployments/list", headers=HTMX).status_code == 200
    devcluster.advance(601)
    final = poll_until_stopped(client)
    assert 'data-phase="ready"' in final and 'data-copy="#url-chat"' in final

    header = client.get("/ui/deployments/header", headers=HTMX).get_data(as_text=True)
    assert header.startswith('<div id="header_deployments"') and "1 Ready" in header and "0 not Ready" in header

    capacity = client.get("/ui/deployments/capacity", headers=HTMX).get_data(as_text=True)
    assert capacity.startswith('<section id="capacity"') and 'class="dep-0"' in capacity and "style=" not in capacity
    assert "chat: 1" in capacity and "free: 1" in capacity

    headers = {**HTMX, "X-CSRFToken": token}
    switched = client.post("/ui/deployments/chat/switch", data={"model": "small-b"}, headers=headers)
    assert switched.status_code == 200 and "small-b" in switched.get_data(as_text=True)
    assert switched.headers["HX-Trigger"] == "deployments-changed"
    back = client.post("/ui/deployments/chat/rollback", headers=headers)
    assert back.status_code == 200 and "Rolled back to small-a" in back.get_data(as_text=True)
    gone = client.post("/ui/deployments/chat/delete", headers=headers)
    assert gone.status_code == 200 and "No deployments yet" in gone.get_data(as_text=True)
    again = client.post("/ui/deployments/chat/delete", headers=headers)
    assert again.status_code == 422 and "no deployment named" in again.get_data(as_text=True)


def test_pages_answer_whole_and_say_when_nothing_fits(deploy_app: Flask) -> None:
    client = deploy_app.test_client()
    page = client.get("/ui/deployments/new?model=huge", headers=HTMX).get_data(as_text=True)
    assert page.startswith("<!doctype html>") and 'id="header_deployments"' in page
    assert "fits nowhere" in page and "does not start" in page
