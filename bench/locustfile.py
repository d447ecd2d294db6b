"""Locust users of `make load` (bench/bench_load.py starts the servers and passes their addresses in LOAD_*)."""

from __future__ import annotations

import os

from locust import HttpUser, constant, task

JOB_ID = os.environ.get("LOAD_JOB_ID", "")
STOP_POLLING = 286  # the job card's "finished, stop polling" answer is not an error


class PortalUser(HttpUser):
    """A person with the portal open: catalog, active model, jobs, a page, and the install's job card."""

    wait_time = constant(float(os.environ.get("LOAD_THINK_SECONDS", "0.5")))

    @task(3)
    def models(self) -> None:
        self.client.get("/models", name="/models")

    @task(2)
    def active(self) -> None:
        self.client.get("/active", name="/active")

    @task(2)
    def jobs(self) -> None:
        self.client.get("/jobs", name="/jobs")

    @task(1)
    def catalog_page(self) -> None:
        self.client.get("/ui/catalog", name="/ui/catalog")

    @task(3)
    def job_card(self) -> None:
        with self.client.get(f"/ui/jobs/{JOB_ID}/card", name="/ui/jobs/{id}/card", catch_response=True) as answer:
            if answer.status_code in (200, STOP_POLLING):
                answer.success()


class SaturatingUser(HttpUser):
    """No think time: one path as fast as the server answers (saturation throughput)."""

    wait_time = constant(0)
    target = os.environ.get("LOAD_PATH", "/models")

    @task
    def one_path(self) -> None:
        self.client.get(self.target, name=self.target)
