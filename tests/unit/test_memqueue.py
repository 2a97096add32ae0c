"""The in-process queue behaves like RabbitMQ's topology: routing, delivery limit, dead letters."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from contract.messages import EventMessage
from contract.settings import Settings
from messaging.memory import MemoryBroker, MemoryConsumer, MemoryPublisher
from messaging.types import Delivery, Outcome, PublishError

TIMEOUT = 5.0


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(Settings(queue_prefix="mq", delivery_limit=2))


@pytest.fixture
def running() -> Iterator[Callable[[MemoryConsumer], MemoryConsumer]]:
    started: list[MemoryConsumer] = []

    def start(consumer: MemoryConsumer) -> MemoryConsumer:
        consumer.start()
        started.append(consumer)
        assert consumer.wait_connected(TIMEOUT)
        return consumer

    yield start
    for consumer in started:
        consumer.stop()
        assert consumer.join(TIMEOUT)


def test_topology_names_follow_the_prefix(broker: MemoryBroker) -> None:
    assert broker.topology.tasks == "mq.tasks"
    assert broker.topology.tasks_dead == "mq.tasks.dead"
    assert broker.topology.results == "mq.results"
    assert broker.topology.events == "mq.events"


def test_publish_then_consume_and_ack(broker: MemoryBroker, running) -> None:
    MemoryPublisher(broker).publish("mq.tasks", b"one", message_id="m1")
    seen: list[Delivery] = []

    def handler(delivery: Delivery) -> Outcome:
        seen.append(delivery)
        return Outcome.ACK

    running(MemoryConsumer(broker, "mq.tasks", handler))
    assert broker.wait_idle("mq.tasks", TIMEOUT)
    assert [(d.body, d.delivery_count, d.message_id) for d in seen] == [(b"one", 0, "m1")]
    assert broker.depth("mq.tasks.dead") == 0


def test_unroutable_mandatory_publish_raises(broker: MemoryBroker) -> None:
    with pytest.raises(PublishError, match="no queue"):
        MemoryPublisher(broker).publish("mq.nowhere", b"x")
    MemoryPublisher(broker).publish("mq.nowhere", b"x", mandatory=False)  # dropped quietly


def test_reject_dead_letters_at_once(broker: MemoryBroker, running) -> None:
    MemoryPublisher(broker).publish("mq.tasks", b"not json")
    running(MemoryConsumer(broker, "mq.tasks", lambda d: Outcome.REJECT))
    assert broker.wait_idle("mq.tasks", TIMEOUT)
    dead = broker.get("mq.tasks.dead", timeout=0)
    assert dead is not None
    assert dead.body == b"not json"
    assert dead.headers["x-first-death-reason"] == "rejected"


def test_requeue_counts_deliveries_until_the_limit(broker: MemoryBroker, running) -> None:
    # Same numbers as RabbitMQ 3.x quorum queues: with x-delivery-limit=2 a message is delivered
    # with x-delivery-count 0, 1 and 2, then dead-lettered (see test_broker_rabbitmq.py).
    counts: list[int] = []

    def handler(delivery: Delivery) -> Outcome:
        counts.append(delivery.delivery_count)
        return Outcome.REQUEUE

    MemoryPublisher(broker).publish("mq.tasks", b"task")
    running(MemoryConsumer(broker, "mq.tasks", handler))
    wait_until(lambda: broker.depth("mq.tasks.dead") == 1)
    assert broker.wait_idle("mq.tasks", TIMEOUT)
    assert counts == [0, 1, 2]
    dead = broker.get("mq.tasks.dead", timeout=0)
    assert dead is not None and dead.headers["x-first-death-reason"] == "delivery_limit"


def test_handler_exception_requeues(broker: MemoryBroker, running) -> None:
    calls: list[int] = []

    def handler(delivery: Delivery) -> Outcome:
        calls.append(delivery.delivery_count)
        if len(calls) == 1:
            raise RuntimeError("bug")
        return Outcome.ACK

    MemoryPublisher(broker).publish("mq.tasks", b"task")
    running(MemoryConsumer(broker, "mq.tasks", handler))
    wait_until(lambda: len(calls) == 2)
    assert broker.wait_idle("mq.tasks", TIMEOUT)
    assert calls == [0, 1]


def test_events_fan_out_to_every_listener(broker: MemoryBroker) -> None:
    publisher = MemoryPublisher(broker)
    publisher.publish_event(EventMessage(type="nobody", project_id=1))  # no listener: fine
    first, second = broker.bind_event_queue(), broker.bind_event_queue()
    publisher.publish_event(EventMessage(type="segment", project_id=1))
    for queue in (first, second):
        got = broker.get(queue, timeout=0)
        assert got is not None
        assert EventMessage.from_wire(got.body) == EventMessage(type="segment", project_id=1)
    broker.unbind_event_queue(first)
    publisher.publish_event(EventMessage(type="again", project_id=1))
    assert broker.depth(second) == 1


def test_stop_finishes_in_flight_work(broker: MemoryBroker) -> None:
    started, release = threading.Event(), threading.Event()

    def handler(delivery: Delivery) -> Outcome:
        started.set()
        release.wait(TIMEOUT)
        return Outcome.ACK

    publisher = MemoryPublisher(broker)
    publisher.publish("mq.tasks", b"slow")
    publisher.publish("mq.tasks", b"waiting")
    consumer = MemoryConsumer(broker, "mq.tasks", handler, concurrency=1)
    consumer.start()
    assert started.wait(TIMEOUT)
    consumer.stop()
    assert not consumer.join(0.05)  # still finishing the slow one
    release.set()
    assert consumer.join(TIMEOUT)
    assert broker.unacked("mq.tasks") == 0
    # The message it had not started stays queued for the next consumer.
    assert broker.depth("mq.tasks") == 1


def test_closed_publisher_refuses(broker: MemoryBroker) -> None:
    publisher = MemoryPublisher(broker)
    publisher.close()
    with pytest.raises(PublishError, match="closed"):
        publisher.publish("mq.tasks", b"x")
