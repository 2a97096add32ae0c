"""Transport-neutral pieces of the queue layer, shared by RabbitMQ (:mod:`messaging.publisher`,
:mod:`messaging.consumer`) and the in-process stand-in (:mod:`messaging.memory`).

Nothing here imports pika, so the embedded mode and unit tests can use the same handler functions
and publisher interface without a broker.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from contract.messages import JSON_CONTENT_TYPE, EventMessage, ResultMessage, TaskMessage, Wire


class BrokerError(Exception):
    """The message broker could not do what was asked."""


class PublishError(BrokerError):
    """The broker did not accept a message: nacked, unroutable, or the broker is unreachable."""


class Outcome(enum.Enum):
    """What a handler wants done with the message it was given."""

    ACK = "ack"
    """Done; the effect is durable. Remove the message."""
    REJECT = "reject"
    """Poison (for example an invalid body): dead-letter it now, never redeliver."""
    REQUEUE = "requeue"
    """Try again later, maybe on another consumer. Counts towards the queue's delivery limit."""


@dataclass(frozen=True)
class Delivery:
    """One message as a handler sees it.

    Attributes:
        body: The raw message body.
        delivery_count: How many times the message was returned to the queue before this delivery
            (RabbitMQ's ``x-delivery-count``; 0 on the first delivery).
        redelivered: The broker's redelivered flag (the message may have been seen before).
        headers: The message headers.
        message_id: The publisher's message id, if any.
    """

    body: bytes
    delivery_count: int = 0
    redelivered: bool = False
    headers: Mapping[str, Any] = field(default_factory=dict)
    message_id: str | None = None


Handler = Callable[[Delivery], Outcome]
"""A function that does the work for one message and says how to settle it. It runs in a worker
thread, never on the connection thread, so it may block for as long as inference takes."""


@dataclass(frozen=True)
class Topology:
    """The names of every exchange and queue, all derived from ``Settings.queue_prefix``."""

    prefix: str

    @property
    def tasks(self) -> str:
        """Quorum queue of segment tasks."""
        return f"{self.prefix}.tasks"

    @property
    def tasks_interactive(self) -> str:
        """Quorum queue of the interactive lane's tasks (re-synthesized sentences): consumed
        apart from the books' ``tasks`` so that a user never waits behind a book."""
        return f"{self.prefix}.tasks.interactive"

    @property
    def tasks_dead(self) -> str:
        """Dead-letter queue for tasks past the delivery limit or rejected as poison."""
        return f"{self.prefix}.tasks.dead"

    @property
    def results(self) -> str:
        """Quorum queue of results, consumed by the API."""
        return f"{self.prefix}.results"

    @property
    def results_dead(self) -> str:
        """Dead-letter queue for results the API could not store."""
        return f"{self.prefix}.results.dead"

    @property
    def dead_letter_exchange(self) -> str:
        """Direct exchange that routes dead letters to the ``*.dead`` queues by queue name."""
        return f"{self.prefix}.dlx"

    @property
    def events(self) -> str:
        """Fan-out exchange of live updates; every API replica binds its own exclusive queue."""
        return f"{self.prefix}.events"

    def queues(self) -> tuple[str, ...]:
        """Every durable queue of the topology."""
        return (
            self.tasks,
            self.tasks_interactive,
            self.tasks_dead,
            self.results,
            self.results_dead,
        )

    def exchanges(self) -> tuple[str, ...]:
        """Every exchange of the topology."""
        return (self.dead_letter_exchange, self.events)


class MessagePublisher(Protocol):
    """What the worker and the API need from a publisher (RabbitMQ or in-process)."""

    topology: Topology

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
        """Publish and wait until the broker has taken responsibility, else raise PublishError."""
        ...

    def publish_task(self, task: TaskMessage) -> None:
        """Queue a segment task."""
        ...

    def publish_result(self, result: ResultMessage) -> None:
        """Queue a task's result."""
        ...

    def publish_event(self, event: EventMessage) -> None:
        """Fan a live update out to every API replica."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class TypedPublishMixin:
    """``publish_task`` / ``publish_result`` / ``publish_event`` on top of ``publish``."""

    topology: Topology

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
        raise NotImplementedError

    def publish_wire(
        self,
        routing_key: str,
        wire: Wire,
        *,
        exchange: str = "",
        mandatory: bool = True,
        message_id: str | None = None,
    ) -> None:
        """Publish a message in its wire form (:meth:`contract.messages.Wire`)."""
        self.publish(
            routing_key,
            wire.body,
            exchange=exchange,
            mandatory=mandatory,
            message_id=message_id,
            content_type=wire.content_type,
            headers=wire.headers,
        )

    def publish_task(self, task: TaskMessage) -> None:
        """Queue a segment task (confirmed, persistent, must be routable)."""
        self.publish_wire(self.topology.tasks, task.to_wire(), message_id=task.task_id)

    def publish_result(self, result: ResultMessage) -> None:
        """Queue a task's result (confirmed, persistent, must be routable)."""
        self.publish_wire(self.topology.results, result.to_wire(), message_id=result.task_id)

    def publish_event(self, event: EventMessage) -> None:
        """Fan a live update out to every API replica.

        Not mandatory: with no replica listening there is nobody to tell, which is not an error.
        """
        self.publish_wire("", event.to_wire(), exchange=self.topology.events, mandatory=False)
