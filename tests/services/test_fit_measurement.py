"""After an activation, a real worker reads the predictor pod's log (pods/log) and records predicted vs measured."""

from __future__ import annotations

from typing import Any

import pytest
from rq import SimpleWorker

from portal.extensions import db, redis_holder
from portal.models import Job
from portal.services import activation, fit_measurement, history
from portal.services.vllm_logs import parse_startup_log
from tests.support.fixtures_discovery import llama_like
from tests.support.hub import HubServer


def run_queued_jobs(app: Any) -> None:
    holder = redis_holder(app)
    SimpleWorker([holder.queue], connection=holder.connection).work(burst=True)


def test_activation_measures_what_vllm_reserved(
    make_discovery_app: Any, hub: HubServer, cluster_catalog: Any, devcluster: Any
) -> None:
    llama_like(hub, "meta-llama/Llama-3.1-8B-Instruct")
    app = make_discovery_app(KUBECONFIG=str(devcluster.kubeconfig), MODEL_CATALOG_ROOT=str(cluster_catalog.parent))
    with app.app_context():
        holder = redis_holder(app)
        holder.queue.empty()
        activation.activate("llama-3.1-8b-instruct", actor="tester")
        job = db.session.scalars(db.select(Job).where(Job.type == fit_measurement.JOB_TYPE)).one()
        assert job.status == "pending" and job.model_id == "llama-3.1-8b-instruct"
        run_queued_jobs(app)
        db.session.expire_all()
        done = db.session.get(Job, job.id)
        assert done.status == "completed", (done.status, done.error)
        event = history.last_event(fit_measurement.EVENT, model_id="llama-3.1-8b-instruct")
        assert event is not None
        meta = event.meta
        # the simulated L4 node: 23034 MiB as NVML counts it, 22.05 GiB as CUDA does; utilization 0.92
        assert meta["gpuType"] == "nvidia-l4" and meta["measuredKvGiB"] == pytest.approx(22.05 * 0.92 - 3.9, abs=0.01)
        assert meta["predictedKvGiB"] > 0 and meta["predictedKvTokens"] > 0
        assert meta["measuredActivationGiB"] == 0.8 and meta["measuredNonTorchGiB"] == 0.2
        assert meta["vllmVersion"] == "0.6.3.post1"
        assert done.message.startswith("predicted ") and "vLLM reserved" in done.message
        page = app.test_client().get("/ui/models/llama-3.1-8b-instruct").get_data(as_text=True)
        assert 'id="fit_measured"' in page and f"predicted {meta['predictedKvGiB']:.2f} GiB KV" in page


def test_the_simulated_predictor_log_is_a_vllm_log(cluster_app: Any) -> None:
    from portal.devcluster.vllm_startup import startup_lines

    container = {"image": "vllm/vllm-openai:v0.19.0", "args": ["--max-model-len", "8192"]}
    node = {"metadata": {"labels": {"nvidia.com/gpu.memory": "81559"}}}
    parsed = parse_startup_log("\n".join(startup_lines(container, node, "2026-12-02T00:00:00Z")))
    assert parsed.log_format == "v1" and parsed.vllm_version == "0.19.0" and parsed.max_model_len == 8192
    assert parsed.kv_cache_gib == pytest.approx((81559 / 1024 - 0.44) * 0.9 - 3.9, abs=0.01)


def test_a_failed_apply_cancels_the_measurement(cluster_app: Any) -> None:
    job_id = fit_measurement.schedule("tiny-gpt2-test", actor="tester")
    assert job_id is not None
    fit_measurement.cancel(job_id, actor="tester")
    assert db.session.get(Job, job_id).status == "cancelled"
    fit_measurement.cancel(job_id, actor="tester")  # twice is harmless
