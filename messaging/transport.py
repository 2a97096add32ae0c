"""How the API reaches the queues: RabbitMQ (distributed mode) or in-process (embedded mode).

Both give the same three things: confirming publishers, consumers that run the same handler
functions, and a listener on this replica's own queue bound to the events fan-out exchange.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Protocol

import pika

from contract.messages import EventMessage, MessageError
from contract.settings import Settings
from messaging.consumer import Consumer
from messaging.memory import MemoryBroker, MemoryConsumer, MemoryPublisher
from messaging.publisher import Publisher
from messaging.service import BackgroundService
from messaging.topology import connection_parameters, topology_for
from messaging.types import (
    Delivery,
    Handler,
    MessagePublisher,
    Outcome,
    Topology,
)

log = logging.getLogger(__name__)

EventCallback = Callable[[EventMessage], None]


Service = BackgroundService
"""A background consumer the app starts and stops (RabbitMQ or in-process)."""


class Transport(Protocol):
    """What the API needs from a message transport."""

    topology: Topology
    durable: bool
    """Whether queued messages survive a restart of this process (RabbitMQ) or not (memory)."""

    def publisher(self, name: str) -> MessagePublisher:
        """A confirming publisher."""
        ...

    def consumer(self, queue: str, handler: Handler, *, concurrency: int, name: str) -> Service:
        """A consumer of ``queue`` that runs ``handler`` for every message."""
        ...

    def event_listener(self, on_event: EventCallback) -> Service:
        """A consumer of this replica's own queue on the events exchange."""
        ...

    def waiting(self, *queues: str) -> int:
        """Messages waiting in ``queues`` (ready ones; the in-process broker adds unacked ones)."""
        ...


def _parse_event(body: bytes) -> EventMessage | None:
    try:
        return EventMessage.from_wire(body)
    except MessageError as e:
        log.warning("ignoring an invalid event: %s", e)
        return None


class RabbitTransport:
    """RabbitMQ, through :mod:`messaging.publisher`."""

    durable = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = topology_for(settings)

    def publisher(self, name: str) -> MessagePublisher:
        """A :class:`messaging.publisher.Publisher`."""
        return Publisher(self.settings, name=name)

    def consumer(self, queue: str, handler: Handler, *, concurrency: int, name: str) -> Service:
        """A :class:`messaging.consumer.Consumer`."""
        return Consumer(self.settings, queue, handler, concurrency=concurrency, name=name)

    def event_listener(self, on_event: EventCallback) -> Service:
        """A consumer of this replica's own queue bound to the events exchange: a fresh
        server-named exclusive queue on every connection, so a replica that goes away leaves
        nothing behind. Events are notifications; one lost during a reconnect is repaired by the
        snapshot a browser gets when its stream reconnects."""
        handler = functools.partial(_deliver_event, on_event)
        return Consumer.for_events(self.settings, handler, name="voxmill-api-events")

    def waiting(self, *queues: str) -> int:
        """Ready messages in ``queues`` (passive declares on a short connection; RabbitMQ does
        not report unacknowledged ones there).

        Raises:
            pika.exceptions.AMQPError: RabbitMQ is unreachable or a queue does not exist.
        """
        connection = pika.BlockingConnection(
            connection_parameters(self.settings, "voxmill-api-sweep")
        )
        try:
            channel = connection.channel()
            return sum(
                int(channel.queue_declare(queue, passive=True).method.message_count)
                for queue in queues
            )
        finally:
            connection.close()


class MemoryTransport:
    """The in-process stand-in (:mod:`messaging.memory`) for the embedded mode and tests."""

    durable = False

    def __init__(self, settings: Settings, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker(settings)
        self.topology = self.broker.topology

    def publisher(self, name: str) -> MessagePublisher:
        """A :class:`messaging.memory.MemoryPublisher`."""
        return MemoryPublisher(self.broker)

    def consumer(self, queue: str, handler: Handler, *, concurrency: int, name: str) -> Service:
        """A :class:`messaging.memory.MemoryConsumer`."""
        return MemoryConsumer(self.broker, queue, handler, concurrency=concurrency)

    def event_listener(self, on_event: EventCallback) -> Service:
        """A consumer of a private queue bound to the in-process events exchange."""
        queue = self.broker.bind_event_queue()
        return MemoryConsumer(
            self.broker, queue, functools.partial(_deliver_event, on_event), concurrency=1
        )

    def waiting(self, *queues: str) -> int:
        """Messages in ``queues``, ready or handed out."""
        return sum(self.broker.depth(q) + self.broker.unacked(q) for q in queues)


def _deliver_event(on_event: EventCallback, delivery: Delivery) -> Outcome:
    event = _parse_event(delivery.body)
    if event is not None:
        on_event(event)
    return Outcome.ACK
