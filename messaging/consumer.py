"""A RabbitMQ consumer that keeps its connection alive while handlers run for a long time.

The pattern of pika's threaded consumer example: one thread owns the connection and does nothing
but pump it (so heartbeats are answered even while a sentence is being synthesized for a minute);
handlers run in a thread pool; their ack or nack travels back to the connection thread through
``connection.add_callback_threadsafe``, the only pika call that is safe from another thread.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel

from contract.retry import RetryPolicy
from contract.settings import Settings
from messaging.service import BackgroundService
from messaging.topology import bind_event_queue, connection_parameters, declare_topology
from messaging.types import BrokerError, Delivery, Handler, Outcome

log = logging.getLogger(__name__)

# How long the connection thread waits for I/O before it looks at the stop flag again. Stop
# requests also wake it at once through add_callback_threadsafe, so this only bounds the worst case.
_PUMP_INTERVAL_S = 1.0


class ConsumerCancelled(BrokerError):
    """RabbitMQ cancelled the consumer (the queue was deleted or its leader moved)."""


@dataclass
class _Session:
    """One connection's worth of state; handlers of a dead session cannot settle their messages."""

    connection: pika.BlockingConnection
    channel: BlockingChannel
    on_message: Callable[..., None]
    tag: str | None = None
    """The consumer tag while subscribed (``None`` while paused or cancelled)."""
    inflight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def done_one(self) -> None:
        with self.lock:
            self.inflight -= 1

    def idle(self) -> bool:
        with self.lock:
            return self.inflight == 0


class Consumer(BackgroundService):
    """Consume one queue with manual acks, a thread pool and automatic reconnection.

    The handler gets a :class:`~messaging.types.Delivery` and returns an
    :class:`~messaging.types.Outcome`; the message is acked (or nacked) only after it returns,
    so a crash mid-task leaves the message to be redelivered. A handler that raises is logged and
    its message requeued (the queue's delivery limit stops a message that crashes every time).

    Args:
        settings: Broker URL, heartbeat, prefetch and queue prefix.
        queue: The queue to consume, or a function that declares one on each new channel and
            returns its name (for exclusive queues, which live and die with their connection; see
            :meth:`for_events`).
        handler: The function that does the work; runs in a worker thread.
        concurrency: Handler threads and prefetch count (default ``settings.prefetch``).
        name: Connection name shown by RabbitMQ.
        declare: Declare the topology after each (re)connect.
        policy: Its ``reconnect_backoff`` spaces reconnects (default: ``settings.retry_policy()``).
    """

    def __init__(
        self,
        settings: Settings,
        queue: str | Callable[[BlockingChannel], str],
        handler: Handler,
        *,
        concurrency: int | None = None,
        name: str = "voxmill-consumer",
        declare: bool = True,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(f"consumer-{queue if isinstance(queue, str) else name}")
        self._queue = queue
        self.queue = queue if isinstance(queue, str) else name
        """The queue's name (for a declared queue: known once connected)."""
        self.concurrency = max(1, concurrency or settings.prefetch)
        self.connections = 0
        """How many times a connection was established (1 + reconnects)."""
        self._settings = settings
        self._handler = handler
        self._params = connection_parameters(settings, name)
        self._declare = declare
        self._backoff = (policy or settings.retry_policy()).reconnect_backoff
        self._session: _Session | None = None
        self._paused = threading.Event()

    @property
    def paused(self) -> bool:
        """Whether :meth:`pause` holds new deliveries back."""
        return self._paused.is_set()

    def pause(self) -> None:
        """Stop taking new messages (cancel the subscription; the connection and the messages in
        hand stay). Safe from any thread; lasts across reconnects until :meth:`resume`."""
        self._paused.set()
        self._on_connection_thread(self._apply_pause)

    def resume(self) -> None:
        """Take messages again after :meth:`pause`."""
        self._paused.clear()
        self._on_connection_thread(self._apply_pause)

    def _on_connection_thread(self, callback: Callable[[_Session], None]) -> None:
        session = self._session
        if session is not None:
            with contextlib.suppress(pex.AMQPError):
                session.connection.add_callback_threadsafe(functools.partial(callback, session))

    def _apply_pause(self, session: _Session) -> None:
        """Runs on the connection thread: subscribe or cancel to match :attr:`paused`."""
        if not session.connection.is_open or self.stopping:
            return
        try:
            if self.paused and session.tag is not None:
                session.channel.basic_cancel(session.tag)
                session.tag = None
                log.info("paused consuming %s", self.queue)
            elif not self.paused and session.tag is None:
                session.tag = session.channel.basic_consume(self.queue, session.on_message)
                log.info("resumed consuming %s", self.queue)
        except pex.AMQPError as e:
            log.warning("could not pause or resume consuming %s: %r", self.queue, e)

    @classmethod
    def for_events(cls, settings: Settings, handler: Handler, **kwargs: Any) -> Consumer:
        """A consumer of live events: on every connection it binds a fresh exclusive queue to
        the events exchange, so each API replica sees every event while it is connected. One
        handler thread by default, so events reach the handler in the order they were published."""
        kwargs.setdefault("name", "voxmill-events")
        kwargs.setdefault("concurrency", 1)
        queue = functools.partial(bind_event_queue, settings=settings)
        return cls(settings, queue, handler, **kwargs)

    def _wake(self) -> None:
        session = self._session
        if session is not None:
            # Wake the connection thread now instead of at its next poll.
            with contextlib.suppress(pex.AMQPError):
                session.connection.add_callback_threadsafe(lambda: None)

    def run(self) -> None:
        """Consume until :meth:`stop`, reconnecting with exponential back-off after failures.

        A loop of its own rather than ``tenacity``: it never gives up, and a connection that
        worked resets the back-off, which a retry library's attempt counter does not model.
        """
        attempt = 0
        executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"handler-{self.queue}")
        try:
            while not self.stopping:
                connections_before = self.connections
                try:
                    self._consume(executor)
                except (pex.AMQPError, BrokerError, OSError) as e:
                    self._set_connected(False)
                    if self.stopping:
                        break
                    if self.connections > connections_before:
                        # A connection that worked and then dropped (a broker restart) deserves
                        # a quick first retry; only repeated failures to connect back off further.
                        attempt = 0
                    delay = self._backoff.delay(attempt)
                    attempt += 1
                    log.warning(
                        "consumer of %s lost RabbitMQ (%r); reconnecting in %.1fs",
                        self.queue,
                        e,
                        delay,
                    )
                    self._stop.wait(delay)
        finally:
            self._set_connected(False)
            # Handlers of a lost connection still finish; their messages are redelivered anyway.
            executor.shutdown(wait=True)
            log.info("consumer of %s stopped", self.queue)

    def _consume(self, executor: ThreadPoolExecutor) -> None:
        connection = pika.BlockingConnection(self._params)
        try:
            channel = connection.channel()
            if self._declare:
                declare_topology(channel, self._settings)
            if not isinstance(self._queue, str):
                self.queue = self._queue(channel)
            channel.basic_qos(prefetch_count=self.concurrency)
            session = _Session(connection, channel, on_message=lambda *a: None)
            session.on_message = functools.partial(self._on_message, session, executor)
            if not self.paused:
                session.tag = channel.basic_consume(self.queue, session.on_message)
            self._session = session
            self.connections += 1
            self._set_connected(True)
            log.info(
                "consuming %s (concurrency %d%s)",
                self.queue,
                self.concurrency,
                ", paused" if self.paused else "",
            )
            self._pump(session)
        finally:
            self._set_connected(False)
            self._session = None
            if connection.is_open:
                try:
                    connection.close()
                except pex.AMQPError as e:
                    log.debug("closing consumer connection: %s", e)

    def _pump(self, session: _Session) -> None:
        """Drive the connection until stopped and drained; raises when the connection is lost."""
        cancelled = False
        while True:
            session.connection.process_data_events(time_limit=_PUMP_INTERVAL_S)
            if self.stopping and not cancelled:
                # No new deliveries; what we hold is finished and settled before we close, so a
                # graceful stop neither loses nor needlessly redelivers work.
                if session.tag is not None:
                    session.channel.basic_cancel(session.tag)
                    session.tag = None
                cancelled = True
                self._set_connected(False)
                log.info("stopping consumer of %s; waiting for in-flight work", self.queue)
            if cancelled:
                if session.idle():
                    return
            elif session.tag is not None and not session.channel.consumer_tags:
                raise ConsumerCancelled(f"RabbitMQ cancelled the consumer of {self.queue}")

    def _on_message(
        self,
        session: _Session,
        executor: ThreadPoolExecutor,
        _channel: BlockingChannel,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        headers = dict(properties.headers or {})
        delivery = Delivery(
            body=body,
            delivery_count=int(headers.get("x-delivery-count") or 0),
            redelivered=bool(method.redelivered),
            headers=headers,
            message_id=properties.message_id,
        )
        with session.lock:
            session.inflight += 1
        executor.submit(self._work, session, method.delivery_tag, delivery)

    def _work(self, session: _Session, delivery_tag: int, delivery: Delivery) -> None:
        """Runs in a handler thread."""
        try:
            outcome = self._handler(delivery)
        except Exception:
            log.exception("handler for %s failed; requeueing the message", self.queue)
            outcome = Outcome.REQUEUE
        settle = functools.partial(self._settle, session, delivery_tag, outcome)
        try:
            session.connection.add_callback_threadsafe(settle)
        except pex.AMQPError:
            log.warning(
                "connection lost before %s of a message from %s; RabbitMQ will redeliver it",
                outcome.value,
                self.queue,
            )
            session.done_one()

    def _settle(self, session: _Session, delivery_tag: int, outcome: Outcome) -> None:
        """Runs on the connection thread."""
        try:
            if outcome is Outcome.ACK:
                session.channel.basic_ack(delivery_tag)
            elif outcome is Outcome.REJECT:
                session.channel.basic_nack(delivery_tag, requeue=False)
            else:
                session.channel.basic_nack(delivery_tag, requeue=True)
        except pex.AMQPError as e:
            log.warning("could not %s message from %s: %r", outcome.value, self.queue, e)
        finally:
            session.done_one()
