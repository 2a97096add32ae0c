"""An in-process stand-in for RabbitMQ, for the embedded mode (one process, no broker).

Same interface as :mod:`messaging.publisher` where it matters: :class:`MemoryPublisher` is a
:class:`~messaging.types.MessagePublisher` with ``publish_task`` / ``publish_result`` /
``publish_event``, :class:`MemoryConsumer` runs the same handler functions as
:class:`messaging.consumer.Consumer` and settles with the same :class:`~messaging.types.Outcome`.
The semantics follow RabbitMQ's quorum queues: a requeued message's delivery count grows, and past
the delivery limit (or when rejected) it moves to the dead-letter queue. Nothing is persisted: a
process restart loses queued messages, which the embedded mode re-creates from its database.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from contract.messages import JSON_CONTENT_TYPE
from contract.settings import Settings
from messaging.service import BackgroundService
from messaging.types import (
    Delivery,
    Handler,
    Outcome,
    PublishError,
    Topology,
    TypedPublishMixin,
)

log = logging.getLogger(__name__)


@dataclass
class _Queue:
    name: str
    delivery_limit: int | None = None
    dead_letter: str | None = None
    messages: deque[Delivery] = field(default_factory=deque)
    unacked: int = 0


class MemoryBroker:
    """Named queues and fan-out exchanges in memory, shared by publishers and consumers.

    Args:
        settings: ``queue_prefix`` and the delivery limits of its retry policy, as for RabbitMQ.
    """

    def __init__(self, settings: Settings) -> None:
        self.topology = Topology(settings.queue_prefix)
        self._cond = threading.Condition()
        self._queues: dict[str, _Queue] = {}
        self._fanouts: dict[str, set[str]] = {self.topology.events: set()}
        self._next_private = 0
        t = self.topology
        policy = settings.retry_policy()
        self.declare_queue(t.tasks_dead)
        self.declare_queue(t.results_dead)
        self.declare_queue(
            t.tasks, delivery_limit=policy.task_delivery_limit, dead_letter=t.tasks_dead
        )
        self.declare_queue(
            t.results, delivery_limit=policy.result_delivery_limit, dead_letter=t.results_dead
        )
        self.declare_queue(
            t.tasks_interactive,
            delivery_limit=policy.task_delivery_limit,
            dead_letter=t.tasks_dead,
        )

    def declare_queue(
        self, name: str, *, delivery_limit: int | None = None, dead_letter: str | None = None
    ) -> None:
        """Create a queue (no-op when it exists)."""
        with self._cond:
            self._queues.setdefault(name, _Queue(name, delivery_limit, dead_letter))

    def bind_event_queue(self) -> str:
        """A private queue that receives every event (one per listener, like an API replica's)."""
        with self._cond:
            self._next_private += 1
            name = f"{self.topology.events}.listener-{self._next_private}"
            self._queues[name] = _Queue(name)
            self._fanouts[self.topology.events].add(name)
            return name

    def unbind_event_queue(self, name: str) -> None:
        """Drop a queue made by :meth:`bind_event_queue`."""
        with self._cond:
            self._fanouts[self.topology.events].discard(name)
            self._queues.pop(name, None)

    def put(
        self,
        routing_key: str,
        body: bytes,
        *,
        exchange: str = "",
        mandatory: bool = True,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Route a message like RabbitMQ: default exchange by queue name, fan-out to all bound."""
        with self._cond:
            if exchange:
                if exchange not in self._fanouts:
                    raise PublishError(f"no exchange {exchange!r}")
                targets = sorted(self._fanouts[exchange])
            else:
                targets = [routing_key] if routing_key in self._queues else []
            if not targets and mandatory:
                raise PublishError(
                    f"no queue is bound to receive {routing_key!r} on exchange "
                    f"{exchange or '(default)'!r}"
                )
            for name in targets:
                self._queues[name].messages.append(
                    Delivery(body=body, headers=dict(headers or {}), message_id=message_id)
                )
            self._cond.notify_all()

    def get(self, queue: str, timeout: float | None = None) -> Delivery | None:
        """Take the next message (now unacked), waiting up to ``timeout``; ``None`` if none came."""
        with self._cond:
            q = self._queue(queue)
            if not self._cond.wait_for(lambda: bool(q.messages), timeout):
                return None
            q.unacked += 1
            return q.messages.popleft()

    def settle(self, queue: str, delivery: Delivery, outcome: Outcome) -> None:
        """Apply a handler's outcome to a message taken with :meth:`get`."""
        with self._cond:
            q = self._queue(queue)
            q.unacked -= 1
            if outcome is Outcome.ACK:
                pass
            elif outcome is Outcome.REJECT:
                self._dead_letter(q, delivery, "rejected")
            else:
                count = delivery.delivery_count + 1
                if q.delivery_limit is not None and count > q.delivery_limit:
                    self._dead_letter(q, delivery, "delivery_limit")
                else:
                    q.messages.append(replace(delivery, delivery_count=count, redelivered=True))
            self._cond.notify_all()

    def depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting unacked ones)."""
        with self._cond:
            return len(self._queue(queue).messages)

    def unacked(self, queue: str) -> int:
        """Messages of ``queue`` handed out and not yet settled."""
        with self._cond:
            return self._queue(queue).unacked

    def wait_idle(self, queue: str, timeout: float) -> bool:
        """Wait until ``queue`` has nothing ready and nothing unacked."""
        with self._cond:
            q = self._queue(queue)
            return self._cond.wait_for(lambda: not q.messages and q.unacked == 0, timeout)

    def _queue(self, name: str) -> _Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise KeyError(f"no queue {name!r} in the in-process broker") from None

    def _dead_letter(self, q: _Queue, delivery: Delivery, reason: str) -> None:
        if q.dead_letter is None:
            log.warning("dropping message from %s (%s): no dead-letter queue", q.name, reason)
            return
        headers = {
            **delivery.headers,
            "x-first-death-queue": q.name,
            "x-first-death-reason": reason,
        }
        self._queues[q.dead_letter].messages.append(
            Delivery(body=delivery.body, headers=headers, message_id=delivery.message_id)
        )
        log.warning("message from %s dead-lettered (%s)", q.name, reason)


class MemoryPublisher(TypedPublishMixin):
    """The in-process counterpart of :class:`messaging.publisher.Publisher`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.topology = broker.topology
        self._broker = broker
        self._closed = False

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
        """Enqueue at once; raises :class:`PublishError` when unroutable or closed."""
        if self._closed:
            raise PublishError("the publisher is closed")
        self._broker.put(
            routing_key,
            body,
            exchange=exchange,
            mandatory=mandatory,
            message_id=message_id,
            headers=headers,
        )

    def close(self) -> None:
        """Refuse further publishes."""
        self._closed = True


class MemoryConsumer(BackgroundService):
    """The in-process counterpart of :class:`messaging.consumer.Consumer`: handlers run in a thread
    pool of ``concurrency`` threads and their outcome settles the message.

    Args:
        broker: The shared in-process broker.
        queue: The queue to consume.
        handler: The same handler function the RabbitMQ consumer would run.
        concurrency: Parallel handlers (default ``settings.prefetch`` is up to the caller).
    """

    def __init__(
        self, broker: MemoryBroker, queue: str, handler: Handler, *, concurrency: int = 1
    ) -> None:
        super().__init__(f"memconsumer-{queue}")
        self.queue = queue
        self.concurrency = max(1, concurrency)
        self._broker = broker
        self._handler = handler
        self._slots = threading.Semaphore(self.concurrency)

    def run(self) -> None:
        """Consume until :meth:`stop`."""
        self._set_connected(True)
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"mem-{self.queue}") as pool:
            try:
                while not self.stopping:
                    # Take a message only when a handler thread is free: like prefetch, so a
                    # stopping consumer does not hold messages it has not started.
                    if not self._slots.acquire(timeout=0.2):
                        continue
                    if self.stopping:
                        self._slots.release()
                        break
                    delivery = self._broker.get(self.queue, timeout=0.2)
                    if delivery is None:
                        self._slots.release()
                        continue
                    pool.submit(self._work, delivery)
            finally:
                self._set_connected(False)

    def _work(self, delivery: Delivery) -> None:
        try:
            outcome = self._handler(delivery)
        except Exception:
            log.exception("handler for %s failed; requeueing the message", self.queue)
            outcome = Outcome.REQUEUE
        finally:
            self._slots.release()
        self._broker.settle(self.queue, delivery, outcome)
