"""Nothing stays ``queued`` for ever: a task RabbitMQ dead-letters by itself ends its segment
with the reason, and a task lost on purpose is found by the stuck sweep and sent again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pika
import pytest
from sqlalchemy import select

from api.models import Segment, SegmentStatus
from contract.settings import Settings
from messaging.topology import topology_for

pytestmark = pytest.mark.integration

TIMEOUT = 60.0


def ready(settings: Settings, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def start_conversion(http: httpx.Client, sentences: int) -> tuple[int, int]:
    project = http.post("/v1/projects", json={"name": "stuck"}).json()
    text = " ".join(f"Sentence number {i} is here." for i in range(sentences))
    assert (
        http.post(f"/v1/projects/{project['id']}/documents", json={"text": text}).status_code == 201
    )
    conversion = http.post(f"/v1/projects/{project['id']}/conversions").json()
    return int(project["id"]), int(conversion["id"])


def finished(http: httpx.Client, conversion_id: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/v1/conversions/{conversion_id}").json()
        return body if body["state"] == "finished" else None

    return check


def test_tasks_rabbitmq_dead_letters_end_their_segments_with_the_reason(
    pipeline_settings: Settings, start_api: Callable[..., Any], wait_for: Callable[..., Any]
) -> None:
    api = start_api(pipeline_settings)
    topology = topology_for(pipeline_settings)
    with httpx.Client(base_url=api.url, timeout=10) as http:
        project_id, conversion_id = start_conversion(http, 2)
        wait_for(lambda: ready(pipeline_settings, topology.tasks) == 2, what="the two tasks")

        # Workers that crash on a task: each delivery is returned unanswered until RabbitMQ's
        # delivery limit (3 here) dead-letters it by itself.
        connection = pika.BlockingConnection(pika.URLParameters(pipeline_settings.broker_url))
        try:
            channel = connection.channel()
            for _ in range(40):
                method, _properties, _body = channel.basic_get(topology.tasks)
                if method is None:
                    if ready(pipeline_settings, topology.tasks) == 0:
                        break
                    continue
                channel.basic_nack(method.delivery_tag, requeue=True)
        finally:
            connection.close()

        progress = wait_for(finished(http, conversion_id), timeout=TIMEOUT, what="the end")
    assert (progress["done"], progress["failed"]) == (0, 2)
    with api.runtime.session_factory() as session:
        errors = session.scalars(
            select(Segment.last_error).where(
                Segment.project_id == project_id, Segment.status == SegmentStatus.FAILED
            )
        ).all()
    assert len(errors) == 2
    for error in errors:
        assert "delivery limit" in (error or "")
        assert "resynthesize" in (error or "")
    wait_for(lambda: ready(pipeline_settings, topology.tasks_dead) == 0, what="an empty DLQ")


def test_a_task_lost_on_purpose_is_sent_again_by_the_sweep(
    pipeline_settings: Settings,
    own_database_url: str,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    # A segment counts as stuck after twice the retry budget with nothing waiting in RabbitMQ.
    # Its own database: the sweep looks at every queued segment, other tests' included.
    settings = pipeline_settings.model_copy(
        update={
            "task_retry_budget_s": 4.0,
            "stuck_sweep_s": 0.5,
            "database_url": own_database_url,
        }
    )
    api = start_api(settings)
    topology = topology_for(settings)
    with httpx.Client(base_url=api.url, timeout=10) as http:
        project_id, conversion_id = start_conversion(http, 3)
        wait_for(lambda: ready(settings, topology.tasks) == 3, what="the three tasks")
        connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
        try:
            method, _properties, _lost = connection.channel().basic_get(
                topology.tasks, auto_ack=True
            )
            assert method is not None  # taken and acknowledged: gone, as if a disk was lost
        finally:
            connection.close()
        start_worker(settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)

        progress = wait_for(finished(http, conversion_id), timeout=TIMEOUT, what="the end")
    assert (progress["done"], progress["failed"]) == (3, 0)
    assert api.runtime.sweep.requeued == 1
    # Each sentence was synthesized once: the sweep sent only the lost task again.
    assert sorted(stub_torchserve.requests) == sorted(set(stub_torchserve.requests))
    assert stub_torchserve.count() == 3
    with api.runtime.session_factory() as session:
        statuses = session.scalars(
            select(Segment.status).where(Segment.project_id == project_id)
        ).all()
    assert statuses == [SegmentStatus.DONE] * 3
    assert ready(settings, topology.tasks_dead) == 0
