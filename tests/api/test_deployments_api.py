"""Several deployments on the dev cluster's two GPU nodes (NVIDIA L4 and AMD MI210), over HTTP."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from portal.devcluster.cluster import DevCluster
from portal.services import history

GROUP_VERSION = "serving.kserve.io/v1beta1"


def spec_of(devcluster: DevCluster, name: str) -> tuple[Any, Any, Any]:
    """What a change to a deployment would change: spec, generation and annotations."""
    live = devcluster.get(GROUP_VERSION, "InferenceService", name, "ai")
    assert live is not None
    return live["spec"], live["metadata"]["generation"], live["metadata"]["annotations"]


def wait_ready(client: FlaskClient, name: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/deployments/{name}").json
        if body.get("phase") == "ready":
            return body
        time.sleep(0.05)
    raise AssertionError(f"{name} never became Ready: {body}")


def test_two_fit_side_by_side_and_a_third_is_refused_with_the_reason(deploy_app: Flask) -> None:
    client = deploy_app.test_client()
    first = client.post("/deployments", json={"name": "chat", "model": "small-a"})
    assert first.status_code == 201, first.json
    # Best placement: the smallest GPU that holds the model at full context.
    assert first.json["deployment"]["node"] == "gpu-l4-1"
    assert first.json["deployment"]["gpus"] == {"resource": "nvidia.com/gpu", "count": 1}
    second = client.post("/deployments", json={"name": "code", "model": "small-b"})
    assert second.status_code == 201, second.json
    assert second.json["deployment"]["node"] == "venus"
    assert second.json["deployment"]["gpus"] == {"resource": "amd.com/gpu", "count": 1}

    third = client.post("/deployments", json={"name": "more", "model": "small-c"})
    assert third.status_code == 409 and third.json["code"] == "no_placement"
    refused = {r["node"]: r for r in third.json["details"]["refused"]}
    assert refused["gpu-l4-1"]["code"] == refused["venus"]["code"] == "not_enough_free_gpus"
    assert "chat" in refused["gpu-l4-1"]["message"] and "code" in refused["venus"]["message"]

    again = client.post("/deployments", json={"name": "chat", "model": "small-c"})
    assert again.status_code == 409 and again.json["code"] == "deployment_exists"

    ready = wait_ready(client, "chat")
    assert ready["url"].startswith("http://chat.ai") and ready["predicted"]["kvTokens"] > 0
    listing = client.get("/deployments").json
    assert [d["name"] for d in listing["deployments"]] == ["chat", "code"]
    capacity = {n["name"]: n for n in client.get("/capacity").json["nodes"]}
    assert capacity["gpu-l4-1"]["free"] == 0
    assert [h["deployment"] for h in capacity["gpu-l4-1"]["holders"]] == ["chat"]


def test_placements_list_every_option_and_every_refusal(deploy_app: Flask) -> None:
    client = deploy_app.test_client()
    small = client.get("/placements?model=small-a").json
    assert small["fits"] is True
    assert [p["node"] for p in small["placements"]] == ["gpu-l4-1", "venus"]
    best = small["placements"][0]
    assert best["gpus"] == 1 and best["maxModelLen"] == 4096 and best["kvTokens"] > 4096

    huge = client.get("/placements?model=huge").json
    assert huge["fits"] is False and huge["placements"] == []
    assert {r["code"] for r in huge["refused"]} == {"gpu_too_small"}

    pinned = client.get("/placements?model=pinned").json  # the entry's nodeSelector asks for an MI210
    assert [p["node"] for p in pinned["placements"]] == ["venus"]
    assert {r["node"]: r["code"] for r in pinned["refused"]} == {"gpu-l4-1": "node_selector"}

    assert client.get("/placements").status_code == 400
    assert client.get("/placements?model=small-a&hfModelId=acme/x").status_code == 400
    assert client.get("/placements?model=nope").status_code == 404


def test_explicit_node_and_gpus_are_checked(deploy_app: Flask, devcluster: DevCluster) -> None:
    client = deploy_app.test_client()
    too_many = client.post("/deployments", json={"name": "wide", "model": "small-a", "node": "gpu-l4-1", "gpus": 2})
    assert too_many.status_code == 409 and too_many.json["code"] == "no_placement"
    assert "gpu-l4-1" in too_many.json["error"]
    unknown = client.post("/deployments", json={"name": "wide", "model": "small-a", "node": "nowhere"})
    assert unknown.status_code == 404 and unknown.json["code"] == "node_not_found"
    on_venus = client.post("/deployments", json={"name": "amd", "model": "small-a", "node": "venus", "gpus": 1})
    assert on_venus.status_code == 201, on_venus.json
    live = devcluster.get(GROUP_VERSION, "InferenceService", "amd", "ai")
    assert live is not None
    predictor = live["spec"]["predictor"]
    assert predictor["nodeSelector"]["kubernetes.io/hostname"] == "venus"
    assert {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor["tolerations"]
    assert predictor["model"]["resources"]["limits"]["amd.com/gpu"] == "1"
    assert live["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "model-manager",
        "model-manager/deployment": "amd",
    }
    for bad in ("Chat", "1chat", "chat-", "a" * 64, "chat_1"):
        response = client.post("/deployments", json={"name": bad, "model": "small-a"})
        assert response.status_code == 400 and response.json["code"] in ("invalid_deployment_name", "validation_error")
    assert devcluster.get(GROUP_VERSION, "InferenceService", "wide", "ai") is None
    elsewhere = client.post("/deployments", json={"name": "x", "model": "small-a", "namespace": "other"})
    assert elsewhere.status_code == 404 and elsewhere.json["code"] == "namespace_not_managed"
    assert client.get("/deployments/Not_A_Name").json["code"] == "deployment_not_found"


def test_switch_rollback_and_delete_touch_one_deployment_only(deploy_app: Flask, devcluster: DevCluster) -> None:
    client = deploy_app.test_client()
    assert client.post("/deployments", json={"name": "chat", "model": "small-a"}).status_code == 201
    assert client.post("/deployments", json={"name": "code", "model": "small-b"}).status_code == 201
    other_before = spec_of(devcluster, "code")

    switched = client.put("/deployments/chat", json={"model": "small-c"})
    assert switched.status_code == 200, switched.json
    assert switched.json["deployment"]["modelId"] == "small-c"
    # Its own GPU is free for the new model: it stays on its node.
    assert switched.json["deployment"]["node"] == "gpu-l4-1"
    assert spec_of(devcluster, "code") == other_before

    back = client.post("/deployments/chat/rollback")
    assert back.status_code == 200, back.json
    assert back.json["rollback"] == {"from": "small-c", "to": "small-a"}
    assert client.get("/deployments/chat").json["modelId"] == "small-a"
    nothing = client.post("/deployments/code/rollback")
    assert nothing.status_code == 409 and nothing.json["code"] == "no_rollback_target"

    with deploy_app.app_context():
        rows, _ = history.query_events(event="model_activated", limit=20)
    assert [(r.meta["name"], r.model_id) for r in reversed(rows)] == [
        ("chat", "small-a"),
        ("code", "small-b"),
        ("chat", "small-c"),
        ("chat", "small-a"),
    ]

    gone = client.delete("/deployments/chat")
    assert gone.status_code == 200 and gone.json["result"]["action"] == "deleted"
    assert client.get("/deployments/chat").status_code == 404
    assert client.delete("/deployments/chat").status_code == 404
    assert [d["name"] for d in client.get("/deployments").json["deployments"]] == ["code"]
    assert spec_of(devcluster, "code") == other_before


def test_seed_endpoints_keep_acting_on_the_default_deployment(deploy_app: Flask, devcluster: DevCluster) -> None:
    client = deploy_app.test_client()
    assert client.post("/deployments", json={"name": "chat", "model": "small-a"}).status_code == 201
    assert client.post("/models/activate", json={"id": "tiny-gpt2-test"}).status_code == 200
    active = client.get("/active").json
    assert active["modelId"] == "tiny-gpt2-test" and active["inferenceservice"]["metadata"]["name"] == "active-llm"
    names = {d["name"]: d for d in client.get("/deployments").json["deployments"]}
    assert names["active-llm"]["default"] is True and names["chat"]["default"] is False
    assert client.post("/models/deactivate").json["result"]["name"] == "active-llm"
    assert devcluster.get(GROUP_VERSION, "InferenceService", "chat", "ai") is not None
    assert client.get("/active").json["status"] == "none"


def test_weights_of_every_deployment_are_guarded(deploy_app: Flask) -> None:
    client = deploy_app.test_client()
    assert client.post("/deployments", json={"name": "chat", "model": "small-a"}).status_code == 201
    refused = client.delete("/weights/acme/small-a")
    assert refused.status_code == 409 and refused.json["code"] == "weights_in_use"
    assert "chat" in refused.json["error"]
    assert client.delete("/weights/acme/small-b").status_code == 200
    assert client.delete("/weights/acme/small-a?force=true").status_code == 200


def test_capacity_says_what_would_no_longer_fit(deploy_app: Flask) -> None:
    client = deploy_app.test_client()
    assert client.post("/deployments", json={"name": "chat", "model": "small-a"}).status_code == 201
    plan = client.get("/capacity?add=small-b").json["ifAdded"]
    assert plan["fits"] is True and plan["placement"]["node"] == "venus"
    # Once venus is taken too, every model that fits today on the free GPU would not fit any more.
    assert plan["noLongerFits"] == ["pinned", "small-a", "small-c"]
    assert "huge" not in plan["noLongerFits"] and "tiny-gpt2-test" in plan["notEstimated"]
    assert client.get("/capacity?add=nope").status_code == 404
    html = client.get("/ui/deployments/capacity?add=small-b").get_data(as_text=True)
    assert "would go on <strong>venus</strong>" in html and "pinned, small-a, small-c" in html
