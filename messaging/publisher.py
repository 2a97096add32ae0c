"""A confirming RabbitMQ publisher: persistent messages, publisher confirms, ``mandatory``;
reconnects with back-off; thread-safe.

The rest of the RabbitMQ layer sits beside it: :mod:`messaging.topology` declares the queues,
:mod:`messaging.consumer` consumes them, and :mod:`messaging.memory` offers the same interface
in-process for the embedded mode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

import pika
import pika.exceptions as pex
from pika.adapters.blocking_connection import BlockingChannel
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_delay

from contract.messages import JSON_CONTENT_TYPE
from contract.retry import RetryPolicy
from contract.settings import Settings
from messaging.topology import connection_parameters, declare_topology, topology_for
from messaging.types import PublishError, TypedPublishMixin

log = logging.getLogger(__name__)

# Errors after which the connection (or its channel) is unusable and a fresh one may succeed.
_CONNECTION_ERRORS = (
    pex.AMQPConnectionError,
    pex.ChannelClosed,
    pex.ChannelWrongStateError,
    pex.StreamLostError,
    ConnectionError,
    OSError,
)


class Publisher(TypedPublishMixin):
    """A thread-safe, confirming RabbitMQ publisher.

    Every message is persistent (``delivery_mode=2``) and, by default, ``mandatory``: ``publish``
    returns only once RabbitMQ has confirmed that the message is stored in a queue, and raises
    :class:`PublishError` otherwise. A lost connection is re-opened with the policy's
    ``publish_backoff`` for up to ``publish_retry_for_s``; a message whose confirm was lost with
    the connection is published again, so consumers must be idempotent (they are, on
    ``task_id`` / ``segment_id``).

    Args:
        settings: Broker URL, heartbeat, blocked-connection timeout and queue prefix.
        name: Connection name shown by RabbitMQ.
        policy: How long one ``publish`` keeps reconnecting, and the back-off between tries
            (default: ``settings.retry_policy()``).
        declare: Declare the topology on every (re)connect, so a fresh broker works at once.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "voxmill-publisher",
        policy: RetryPolicy | None = None,
        declare: bool = True,
    ) -> None:
        self.topology = topology_for(settings)
        self.connections = 0
        """How many connections were opened (1 + reconnects)."""
        self._settings = settings
        self._params = connection_parameters(settings, name)
        self._policy = policy or settings.retry_policy()
        self._declare = declare
        self._lock = threading.Lock()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None
        self._closed = threading.Event()
        self._keepalive: threading.Thread | None = None

    def connect(self) -> None:
        """Open the connection now (``publish`` also does it lazily).

        Raises:
            PublishError: RabbitMQ cannot be reached or refused the topology.
        """
        with self._lock:
            try:
                self._ensure_channel()
            except _CONNECTION_ERRORS as e:
                self._drop_connection()
                raise PublishError(self._unreachable(e)) from e

    def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        exchange: str = "",
        mandatory: bool = True,
        message_id: str | None = None,
        content_type: str = JSON_CONTENT_TYPE,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Publish one persistent message and wait for the broker's confirm.

        Args:
            routing_key: The queue name when ``exchange`` is the default exchange.
            body: The message body (see :class:`contract.messages.Wire`).
            exchange: The exchange; ``""`` is RabbitMQ's default (direct to queue by name).
            mandatory: Fail when no queue receives the message (instead of RabbitMQ dropping it).
            message_id: Stored in the message properties, for tracing.
            content_type: The body's media type.
            headers: Message headers (for a result: its JSON metadata).

        Raises:
            PublishError: The broker nacked the message, it was unroutable, or RabbitMQ stayed
                unreachable for the policy's ``publish_retry_for_s``.
        """
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type=content_type,
            headers=dict(headers) if headers else None,
            message_id=message_id,
            timestamp=int(time.time()),
            app_id="voxmill",
        )
        budget = self._policy.publish_retry_for_s
        backoff = self._policy.publish_backoff

        def wait(state: RetryCallState) -> float:
            return max(0.0, min(backoff.wait(state), budget - (state.seconds_since_start or 0.0)))

        def sleep(delay: float) -> None:
            if self._closed.wait(delay):
                raise PublishError("the publisher is closed")

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning("publish failed (%s); reconnecting in %.1fs", error, state.upcoming_sleep)

        retrying = Retrying(
            retry=retry_if_exception_type(_CONNECTION_ERRORS),
            stop=stop_after_delay(budget),
            wait=wait,
            sleep=sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        with self._lock:
            try:
                retrying(self._publish_once, exchange, routing_key, body, properties, mandatory)
            except _CONNECTION_ERRORS as e:
                raise PublishError(self._unreachable(e)) from e

    def _publish_once(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        mandatory: bool,
    ) -> None:
        """One try; a connection error (after dropping the connection) means "try again".
        Caller holds the lock."""
        if self._closed.is_set():
            raise PublishError("the publisher is closed")
        try:
            channel = self._ensure_channel()
            channel.basic_publish(exchange, routing_key, body, properties, mandatory=mandatory)
        except pex.UnroutableError as e:
            raise PublishError(
                f"no queue is bound to receive {routing_key!r} on exchange "
                f"{exchange or '(default)'!r}; declare the topology first "
                "(the worker and the API do it at start-up)"
            ) from e
        except pex.NackError as e:
            raise PublishError(
                f"RabbitMQ refused the message for {routing_key!r} (nack); "
                "the queue may be over its length limit"
            ) from e
        except pex.ChannelClosedByBroker as e:
            self._channel = None
            raise PublishError(f"RabbitMQ closed the channel: {e.reply_code} {e.reply_text}") from e
        except pex.ConnectionBlockedTimeout as e:
            self._drop_connection()
            raise PublishError(
                f"RabbitMQ blocked publishing for over {self._settings.blocked_timeout_s}s "
                "(a memory or disk alarm on the broker); free resources there"
            ) from e
        except _CONNECTION_ERRORS:
            self._drop_connection()
            raise

    def close(self) -> None:
        """Close the connection; later ``publish`` calls raise :class:`PublishError`."""
        self._closed.set()
        with self._lock:
            if self._connection is not None and self._connection.is_open:
                try:
                    self._connection.close()
                except pex.AMQPError as e:
                    log.debug("closing publisher connection: %s", e)
            self._connection = None
            self._channel = None
        if self._keepalive is not None and self._keepalive is not threading.current_thread():
            self._keepalive.join(timeout=5)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unreachable(self, error: BaseException) -> str:
        where = f"{self._params.host}:{self._params.port}"
        return (
            f"RabbitMQ at {where} is unreachable ({error!r}) after "
            f"{self._policy.publish_retry_for_s:.0f}s of "
            "retries; check VOXMILL_BROKER_URL and that RabbitMQ is running"
        )

    def _ensure_channel(self) -> BlockingChannel:
        """The open channel, connecting first when needed. Caller holds the lock."""
        if self._connection is None or not self._connection.is_open:
            self._connection = pika.BlockingConnection(self._params)
            self._channel = None
            self.connections += 1
        if self._channel is None or not self._channel.is_open:
            channel = self._connection.channel()
            channel.confirm_delivery()
            if self._declare:
                declare_topology(channel, self._settings)
            self._channel = channel
            self._start_keepalive()
        return self._channel

    def _drop_connection(self) -> None:
        """Forget a broken connection. Caller holds the lock."""
        if self._connection is not None and self._connection.is_open:
            try:
                self._connection.close()
            except Exception as e:  # already half-dead; nothing more to do
                log.debug("closing broken publisher connection: %s", e)
        self._connection = None
        self._channel = None

    def _start_keepalive(self) -> None:
        # A BlockingConnection only answers heartbeats while someone calls into it. An idle
        # publisher (no task for minutes) would be dropped by the broker, so a small thread pumps
        # the connection between publishes, under the same lock as every other use.
        if self._settings.heartbeat_s <= 0 or self._keepalive is not None:
            return
        self._keepalive = threading.Thread(
            target=self._keep_alive, name="voxmill-publisher-heartbeat", daemon=True
        )
        self._keepalive.start()

    def _keep_alive(self) -> None:
        interval = max(0.5, self._settings.heartbeat_s / 2)
        while not self._closed.wait(interval):
            with self._lock:
                if self._connection is None or not self._connection.is_open:
                    continue
                try:
                    self._connection.process_data_events(time_limit=0)
                except pex.AMQPError as e:
                    log.info("publisher connection lost while idle (%s); will reconnect", e)
                    self._drop_connection()
