"""The RabbitMQ layer against the real broker: topology, confirms, acks, limits, heartbeats,
reconnection."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest

from contract.messages import EventMessage, TaskMessage
from contract.settings import Settings
from messaging.consumer import Consumer
from messaging.memory import MemoryBroker, MemoryConsumer, MemoryPublisher
from messaging.publisher import Publisher
from messaging.topology import bind_event_queue, declare_topology
from messaging.types import Delivery, Handler, Outcome, PublishError

pytestmark = pytest.mark.integration

TIMEOUT = 15.0


def make_task(n: int = 1) -> TaskMessage:
    return TaskMessage(task_id=f"t-{n}", project_id=1, segment_id=n, voice="joe", text=f"Line {n}.")


@pytest.fixture
def publisher(rabbit_settings: Settings) -> Iterator[Publisher]:
    with Publisher(rabbit_settings, name=f"{rabbit_settings.queue_prefix}-publisher") as p:
        p.connect()
        yield p


@pytest.fixture
def consumers(rabbit_settings: Settings) -> Iterator[Callable[..., Consumer]]:
    """Start consumers of the tasks queue; all are stopped after the test."""
    started: list[Consumer] = []

    def start(handler: Handler, settings: Settings | None = None, **kwargs: Any) -> Consumer:
        settings = settings or rabbit_settings
        kwargs.setdefault("name", f"{settings.queue_prefix}-consumer")
        consumer = Consumer(settings, f"{settings.queue_prefix}.tasks", handler, **kwargs)
        consumer.start()
        started.append(consumer)
        assert consumer.wait_connected(TIMEOUT), "consumer did not connect"
        return consumer

    yield start
    for consumer in started:
        consumer.stop()
        assert consumer.join(TIMEOUT), "consumer did not stop"


@pytest.fixture
def release(consumers) -> Iterator[threading.Event]:
    """An event blocked handlers wait on; set at teardown (before the consumers stop) so a failing
    test does not wait out the handlers' timeouts."""
    event = threading.Event()
    yield event
    event.set()


def test_topology_has_delivery_limits_and_dead_letter_queues(
    rabbit_settings: Settings, amqp_channel, queue_info
) -> None:
    topology = declare_topology(amqp_channel, rabbit_settings)
    declare_topology(amqp_channel, rabbit_settings)  # idempotent

    queues = queue_info(topology.prefix + ".")
    assert set(queues) == set(topology.queues())
    tasks = queues[topology.tasks]
    assert tasks["type"] == "quorum" and tasks["durable"] is True
    assert tasks["arguments"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 3,
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-dead-letter-routing-key": topology.tasks_dead,
    }
    results = queues[topology.results]
    assert results["type"] == "quorum" and results["durable"] is True
    assert results["arguments"]["x-delivery-limit"] >= 1
    assert results["arguments"]["x-dead-letter-routing-key"] == topology.results_dead
    for dead in (topology.tasks_dead, topology.results_dead):
        assert queues[dead]["durable"] is True
    amqp_channel.exchange_declare(topology.events, "fanout", passive=True)
    amqp_channel.exchange_declare(topology.dead_letter_exchange, "direct", passive=True)

    # The arguments are enforced: a process with another delivery limit cannot silently differ.
    other = rabbit_settings.model_copy(update={"delivery_limit": 9})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-delivery-limit"):
        declare_topology(amqp_channel.connection.channel(), other)


def ready(channel, queue: str) -> int:
    """Messages ready in ``queue``, answered by the queue itself (unacked ones not counted)."""
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def test_publish_is_confirmed_persistent_and_routed(publisher: Publisher, amqp_channel) -> None:
    publisher.publish_task(make_task(1))

    method, properties, body = amqp_channel.basic_get(publisher.topology.tasks, auto_ack=True)
    assert method is not None
    assert TaskMessage.from_wire(body) == make_task(1)
    assert properties.delivery_mode == 2
    assert properties.message_id == "t-1"
    assert properties.content_type == "application/json"


def test_unroutable_mandatory_publish_raises(publisher: Publisher, amqp_channel) -> None:
    with pytest.raises(PublishError, match="no queue is bound"):
        publisher.publish(f"{publisher.topology.prefix}.nowhere", b"lost?")
    with pytest.raises(PublishError, match="NOT_FOUND"):
        publisher.publish("x", b"y", exchange=f"{publisher.topology.prefix}.no-such-exchange")
    publisher.publish_task(make_task(2))  # the publisher recovers its channel
    assert amqp_channel.queue_declare(publisher.topology.tasks, passive=True).method.message_count


def test_consumer_acks_only_after_the_handler_returns(
    publisher: Publisher, consumers, amqp_channel, release, wait_for
) -> None:
    entered: list[bytes] = []

    def handler(delivery: Delivery) -> Outcome:
        entered.append(delivery.body)
        release.wait(TIMEOUT)
        return Outcome.ACK

    # One handler thread, prefetch 1: RabbitMQ sends the second task only once the first is acked.
    consumer = consumers(handler, concurrency=1)
    publisher.publish_task(make_task(1))
    wait_for(lambda: len(entered) == 1, what="the first task")
    publisher.publish_task(make_task(2))
    tasks = publisher.topology.tasks
    assert ready(amqp_channel, tasks) == 1, "the second task should wait for the first's ack"
    release.set()
    wait_for(lambda: len(entered) == 2, what="the second task after the first's ack")

    consumer.stop()
    assert consumer.join(TIMEOUT)
    # Unacked messages return to the queue when the consumer's channel closes: none did.
    assert ready(amqp_channel, tasks) == 0


def test_rejected_message_is_dead_lettered(publisher: Publisher, consumers, amqp_channel, wait_for):
    consumers(lambda d: Outcome.REJECT)
    publisher.publish(publisher.topology.tasks, b"{not json")
    dead = publisher.topology.tasks_dead
    _, properties, body = wait_for(lambda: _get(amqp_channel, dead), what="the dead letter")
    assert body == b"{not json"
    assert properties.headers["x-first-death-reason"] == "rejected"


def _get(channel, queue: str) -> tuple[Any, Any, bytes] | None:
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    return (method, properties, body) if method is not None else None


def test_requeued_message_ends_in_the_dead_letter_queue_after_the_limit(
    rabbit_settings: Settings, publisher: Publisher, consumers, amqp_channel, wait_for
) -> None:
    counts: list[int] = []

    def handler(delivery: Delivery) -> Outcome:
        counts.append(delivery.delivery_count)
        return Outcome.REQUEUE

    consumers(handler)
    publisher.publish_task(make_task())
    _, properties, body = wait_for(
        lambda: _get(amqp_channel, publisher.topology.tasks_dead), what="the dead letter"
    )
    assert TaskMessage.from_wire(body) == make_task()
    assert properties.headers["x-first-death-reason"] == "delivery_limit"
    # delivery_limit=3: delivered with x-delivery-count 0..3, then dead-lettered.
    assert counts == [0, 1, 2, 3]

    # The in-process queue of the embedded mode counts the same way.
    memory = MemoryBroker(rabbit_settings)
    mem_counts: list[int] = []

    def mem_handler(delivery: Delivery) -> Outcome:
        mem_counts.append(delivery.delivery_count)
        return Outcome.REQUEUE

    MemoryPublisher(memory).publish_task(make_task())
    consumer = MemoryConsumer(memory, memory.topology.tasks, mem_handler)
    consumer.start()
    wait_for(lambda: memory.depth(memory.topology.tasks_dead) == 1, what="memqueue dead letter")
    consumer.stop()
    assert consumer.join(TIMEOUT)
    assert mem_counts == counts


def test_heartbeats_continue_while_a_handler_runs_long(
    rabbit_settings: Settings, consumers, amqp_channel
) -> None:
    # heartbeat 1 s: RabbitMQ drops a connection that stays silent for two intervals. The handler
    # takes 4 s; a consumer that ran it on the connection thread would lose its connection.
    settings = rabbit_settings.model_copy(update={"heartbeat_s": 1})
    finished = threading.Event()

    def slow(delivery: Delivery) -> Outcome:
        threading.Event().wait(4.0)  # stands in for a long inference
        finished.set()
        return Outcome.ACK

    with Publisher(settings) as publisher:
        publisher.publish_task(make_task())
        consumer = consumers(slow, settings=settings)
        assert finished.wait(TIMEOUT)
        consumer.stop()
        assert consumer.join(TIMEOUT)
        assert consumer.connections == 1, "the consumer's connection was lost"
        assert ready(amqp_channel, publisher.topology.tasks) == 0, "the task was not acked"
        # The publisher was idle all along; its keep-alive kept its connection too.
        publisher.publish_task(make_task(2))
        assert publisher.connections == 1


def test_consumer_reconnects_after_its_connection_is_closed(
    rabbit_settings: Settings, publisher: Publisher, consumers, release, close_connections, wait_for
) -> None:
    seen: list[Delivery] = []
    first_entered = threading.Event()

    def handler(delivery: Delivery) -> Outcome:
        seen.append(delivery)
        if len(seen) == 1:
            first_entered.set()
            release.wait(TIMEOUT)
        return Outcome.ACK

    consumer = consumers(handler, name=f"{rabbit_settings.queue_prefix}-reconnecting")
    publisher.publish_task(make_task(1))
    assert first_entered.wait(TIMEOUT)

    assert close_connections(f"{rabbit_settings.queue_prefix}-reconnecting") == 1
    release.set()  # its ack has nowhere to go: the task must come back

    wait_for(lambda: consumer.connections == 2 and consumer.connected, what="the reconnect")
    wait_for(lambda: len(seen) == 2, what="the redelivery")
    assert seen[1].body == seen[0].body and seen[1].redelivered
    publisher.publish_task(make_task(2))
    wait_for(lambda: len(seen) == 3, what="a new message after the reconnect")


def test_publisher_reconnects_after_its_connection_is_closed(
    rabbit_settings: Settings, publisher: Publisher, close_connections, amqp_channel
) -> None:
    publisher.publish_task(make_task(1))
    assert close_connections(f"{rabbit_settings.queue_prefix}-publisher") == 1
    publisher.publish_task(make_task(2))
    assert publisher.connections == 2
    ok = amqp_channel.queue_declare(publisher.topology.tasks, passive=True)
    assert ok.method.message_count == 2


def test_stop_lets_in_flight_work_finish_and_ack(
    publisher: Publisher, consumers, amqp_channel, release
) -> None:
    entered = threading.Event()

    def handler(delivery: Delivery) -> Outcome:
        entered.set()
        release.wait(TIMEOUT)
        return Outcome.ACK

    consumer = consumers(handler)
    publisher.publish_task(make_task())
    assert entered.wait(TIMEOUT)
    consumer.stop()
    assert not consumer.join(0.3), "stopped before the in-flight handler finished"
    release.set()
    assert consumer.join(TIMEOUT)
    assert not consumer.connected
    assert ready(amqp_channel, publisher.topology.tasks) == 0


def test_events_fan_out_to_every_bound_queue(
    rabbit_settings: Settings, publisher: Publisher, amqp_channel, wait_for
) -> None:
    publisher.publish_event(EventMessage(type="nobody-listens", project_id=1))  # not an error
    other = amqp_channel.connection.channel()
    queues = [
        (amqp_channel, bind_event_queue(amqp_channel, rabbit_settings)),
        (other, bind_event_queue(other, rabbit_settings)),
    ]
    event = EventMessage(type="segment.done", project_id=1, data={"segment_id": 3})
    publisher.publish_event(event)
    for channel, queue in queues:
        _, _, body = wait_for(lambda c=channel, q=queue: _get(c, q), what="the event")
        assert EventMessage.from_wire(body) == event


def test_event_consumers_each_get_every_event(
    rabbit_settings: Settings, publisher: Publisher, wait_for
) -> None:
    received: dict[int, list[EventMessage]] = {1: [], 2: []}
    listeners = []
    for replica in received:

        def handler(delivery: Delivery, got: list[EventMessage] = received[replica]) -> Outcome:
            event = EventMessage.from_wire(delivery.body)
            assert isinstance(event, EventMessage)
            got.append(event)
            return Outcome.ACK

        consumer = Consumer.for_events(rabbit_settings, handler, name=f"events-{replica}")
        consumer.start()
        listeners.append(consumer)
    try:
        for consumer in listeners:
            assert consumer.wait_connected(TIMEOUT)
            assert consumer.queue.startswith("amq.gen-")  # server-named, exclusive
        events = [EventMessage(type="segment.done", project_id=1, data={"n": n}) for n in range(3)]
        for event in events:
            publisher.publish_event(event)
        wait_for(lambda: all(len(got) == 3 for got in received.values()), what="the events")
        assert received[1] == received[2] == events
    finally:
        for consumer in listeners:
            consumer.stop()
            assert consumer.join(TIMEOUT)
