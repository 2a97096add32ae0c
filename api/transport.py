"""How the API reaches the queues: RabbitMQ (distributed mode) or in-process (embedded mode).

Both give the same three things: confirming publishers, consumers that run the same handler
functions, and a listener on this replica's own queue bound to the events fan-out exchange.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Protocol

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel

from voxmill.broker import (
    Consumer,
    Publisher,
    bind_event_queue,
    connection_parameters,
    topology_for,
)
from voxmill.broker_types import (
    BrokerError,
    Delivery,
    Handler,
    MessagePublisher,
    Outcome,
    Topology,
    backoff_delay,
)
from voxmill.config import Settings
from voxmill.memqueue import MemoryBroker, MemoryConsumer, MemoryPublisher
from voxmill.messages import EventMessage, MessageError

log = logging.getLogger(__name__)

EventCallback = Callable[[EventMessage], None]


class Service(Protocol):
    """A background consumer the app starts and stops."""

    @property
    def connected(self) -> bool:
        """Attached to its queue right now."""
        ...

    def wait_connected(self, timeout: float) -> bool:
        """Block until attached to its queue; ``False`` after ``timeout``."""
        ...

    def start(self) -> threading.Thread:
        """Run in a background thread."""
        ...

    def stop(self) -> None:
        """Finish in-flight work, then return from the thread."""
        ...

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread."""
        ...


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


def _parse_event(body: bytes) -> EventMessage | None:
    try:
        event = EventMessage.from_bytes(body)
    except MessageError as e:
        log.warning("ignoring an invalid event: %s", e)
        return None
    assert isinstance(event, EventMessage)
    return event


class RabbitTransport:
    """RabbitMQ, through :mod:`voxmill.broker`."""

    durable = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topology = topology_for(settings)

    def publisher(self, name: str) -> MessagePublisher:
        """A :class:`voxmill.broker.Publisher`."""
        return Publisher(self.settings, name=name)

    def consumer(self, queue: str, handler: Handler, *, concurrency: int, name: str) -> Service:
        """A :class:`voxmill.broker.Consumer`."""
        return Consumer(self.settings, queue, handler, concurrency=concurrency, name=name)

    def event_listener(self, on_event: EventCallback) -> Service:
        """A :class:`RabbitEventListener`."""
        return RabbitEventListener(self.settings, on_event)


class RabbitEventListener:
    """Consume a server-named, exclusive, auto-delete queue bound to the events exchange.

    The queue lives and dies with this connection (so a replica that goes away leaves nothing
    behind); after a lost connection a new one is declared. Events are notifications, so they are
    consumed with automatic acks: one lost during a reconnect is repaired by the snapshot a
    browser gets when its stream reconnects.
    """

    def __init__(self, settings: Settings, on_event: EventCallback) -> None:
        self._settings = settings
        self._on_event = on_event
        self._params = connection_parameters(settings, "voxmill-api-events")
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._connection: pika.BlockingConnection | None = None
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        """Whether the queue is bound and consumed right now."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected; ``False`` after ``timeout``."""
        return self._connected.wait(timeout)

    def start(self) -> threading.Thread:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="events-listener", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop consuming (wakes the connection thread at once)."""
        self._stop.set()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(pex.AMQPError):
                connection.add_callback_threadsafe(lambda: None)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; ``True`` when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> None:
        """Listen until :meth:`stop`, reconnecting with back-off."""
        attempt = 0
        while not self._stop.is_set():
            try:
                self._listen()
                attempt = 0
            except (pex.AMQPError, BrokerError, OSError) as e:
                delay = backoff_delay(attempt, base=0.5, cap=15.0)
                attempt += 1
                log.warning("events listener lost RabbitMQ (%r); reconnecting in %.1fs", e, delay)
                self._stop.wait(delay)
            finally:
                self._connected.clear()

    def _listen(self) -> None:
        connection = pika.BlockingConnection(self._params)
        self._connection = connection
        try:
            channel = connection.channel()
            queue = bind_event_queue(channel, self._settings)
            channel.basic_consume(queue, self._deliver, auto_ack=True)
            self._connected.set()
            log.info("listening for events on %s", queue)
            while not self._stop.is_set():
                connection.process_data_events(time_limit=1.0)
        finally:
            self._connection = None
            if connection.is_open:
                try:
                    connection.close()
                except pex.AMQPError as e:
                    log.debug("closing events connection: %s", e)

    def _deliver(
        self,
        _channel: BlockingChannel,
        _method: pika.spec.Basic.Deliver,
        _properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        event = _parse_event(body)
        if event is not None:
            self._on_event(event)


class MemoryTransport:
    """The in-process stand-in (:mod:`voxmill.memqueue`) for the embedded mode and tests."""

    durable = False

    def __init__(self, settings: Settings, broker: MemoryBroker | None = None) -> None:
        self.broker = broker or MemoryBroker(settings)
        self.topology = self.broker.topology

    def publisher(self, name: str) -> MessagePublisher:
        """A :class:`voxmill.memqueue.MemoryPublisher`."""
        return MemoryPublisher(self.broker)

    def consumer(self, queue: str, handler: Handler, *, concurrency: int, name: str) -> Service:
        """A :class:`voxmill.memqueue.MemoryConsumer`."""
        return MemoryConsumer(self.broker, queue, handler, concurrency=concurrency)

    def event_listener(self, on_event: EventCallback) -> Service:
        """A consumer of a private queue bound to the in-process events exchange."""
        queue = self.broker.bind_event_queue()
        return MemoryConsumer(
            self.broker, queue, functools.partial(_deliver_event, on_event), concurrency=1
        )


def _deliver_event(on_event: EventCallback, delivery: Delivery) -> Outcome:
    event = _parse_event(delivery.body)
    if event is not None:
        on_event(event)
    return Outcome.ACK
