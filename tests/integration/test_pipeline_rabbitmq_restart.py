"""RabbitMQ restarts in the middle of a conversion: the conversion still completes, nothing is
lost and nothing is counted twice.

This stops and starts the shared RabbitMQ application (``rabbitmqctl stop_app`` / ``start_app``,
not the whole service), which disturbs anything else using the broker at that moment: the test
is marked ``service_restart`` so that it runs after every other test, and must not run beside
another test session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from contract.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.service_restart]

TIMEOUT = 120.0


def test_conversion_survives_a_rabbitmq_restart(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    rabbitmqctl: Callable[..., str],
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.2
    api = start_api(pipeline_settings)
    start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    stats = api.runtime.result_stats
    text = " ".join(f"Sentence {i} survives the restart." for i in range(20))
    with httpx.Client(base_url=api.url, timeout=10) as http:
        project = http.post("/v1/projects", json={"name": "restart"}).json()
        http.post(f"/v1/projects/{project['id']}/documents", json={"text": text})
        conversion = http.post(f"/v1/projects/{project['id']}/conversions").json()
        wait_for(lambda: stats.applied >= 4, timeout=TIMEOUT, what="the first results")

        try:
            rabbitmqctl("stop_app")
            # Work continues meanwhile: the worker keeps synthesizing what it holds, and fails
            # to publish or ack it until the broker is back.
            wait_for(lambda: not api.runtime.results_consumer.connected, what="the disconnect")
        finally:
            rabbitmqctl("start_app")

        def done() -> dict[str, Any] | None:
            body: dict[str, Any] = http.get(f"/v1/conversions/{conversion['id']}").json()
            return body if body["state"] == "finished" else None

        progress = wait_for(done, timeout=TIMEOUT, what="the conversion after the restart")
        project_audio = http.get(f"/v1/projects/{project['id']}/audio")

    assert (progress["total"], progress["done"], progress["failed"]) == (20, 20, 0)
    assert stats.applied == 20
    assert project_audio.status_code == 200
    wait_for(lambda: api.runtime.results_consumer.connected, what="the reconnect")
