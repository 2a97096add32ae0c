"""Nothing stays ``queued`` for ever: dead-lettered tasks end their segments, lost tasks are sent
again.

- :func:`make_dead_letter_handler` consumes ``<prefix>.tasks.dead``. RabbitMQ dead-letters a task
  by itself when its delivery limit is reached (workers that crashed on it again and again); no
  worker answers such a task, so its segment would wait for ever. The handler turns the dead
  letter into a ``failed`` result carrying RabbitMQ's reason (the ``x-death`` header) and stores
  it exactly like a worker's result (:func:`api.results.make_result_handler`): only while the
  segment still waits for that task, once.
- :class:`StuckSweep` periodically finds segments ``queued`` for longer than
  :attr:`contract.retry.RetryPolicy.stuck_after_s` while RabbitMQ holds no task or result waiting
  (a task lost with a broker's disk, purged by an operator, or a message dropped in transit) and
  writes their tasks to the outbox again, with the same task ids, so a late result still counts
  once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.models import utcnow
from contract.messages import MessageError, ResultMessage, TaskMessage
from contract.retry import RetryPolicy
from messaging.service import BackgroundService
from messaging.types import Delivery, Handler, Outcome

log = logging.getLogger(__name__)

DEAD_LETTER_WORKER = "rabbitmq-dead-letter"
"""The ``worker`` recorded for a segment that a dead letter ended."""

_REASONS = {
    "delivery_limit": (
        "RabbitMQ gave up on this task after {count} deliveries (its delivery limit): the "
        "workers that took it stopped or crashed before answering"
    ),
    "rejected": "a worker rejected this task",
    "expired": "this task expired in the queue",
    "maxlen": "the task queue was full",
}


def dead_letter_reason(headers: Mapping[str, Any]) -> str:
    """Why RabbitMQ (or the in-process broker) dead-lettered a message, in words.

    Reads the first entry of ``x-death`` (RabbitMQ's list, newest first: ``reason``, ``queue``,
    ``count``), else ``x-first-death-reason``.
    """
    reason, count = "", 0
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        reason = str(deaths[0].get("reason", ""))
    reason = reason or str(headers.get("x-first-death-reason", "") or "unknown")
    count = count or int(headers.get("x-delivery-count", 0) or 0)
    template = _REASONS.get(reason, "RabbitMQ dead-lettered this task ({reason})")
    return template.format(reason=reason, count=count or "several")


def make_dead_letter_handler(store_result: Handler) -> Handler:
    """The handler for ``<prefix>.tasks.dead``.

    Args:
        store_result: The handler of ``<prefix>.results``
            (:func:`api.results.make_result_handler`); the dead letter becomes a ``failed``
            result for it, so storing, counting, events and idempotency are the same code.

    Returns:
        A handler that acks what it could settle (the dead-letter queue ends empty) and requeues
        while the database is unavailable (the result handler's rule).
    """

    def handle(delivery: Delivery) -> Outcome:
        try:
            task = TaskMessage.from_wire(delivery.body, delivery.headers)
        except MessageError as e:
            # Nothing to end: no segment can be named. Logged for an operator, then dropped.
            log.error("dropping a dead letter that is not a task (%s): %r", e, delivery.body[:200])
            return Outcome.ACK
        reason = dead_letter_reason(delivery.headers)
        log.warning(
            "task %s of segment %d dead-lettered: %s", task.task_id, task.segment_id, reason
        )
        result = ResultMessage(
            task_id=task.task_id,
            segment_id=task.segment_id,
            project_id=task.project_id,
            status="failed",
            error=f"{reason}; resynthesize the segment to try again",
            worker=DEAD_LETTER_WORKER,
        )
        wire = result.to_wire()
        return store_result(Delivery(body=wire.body, headers=dict(wire.headers)))

    return handle


class StuckSweep(BackgroundService):
    """Every ``interval_s``, re-queue segments stuck in ``queued`` (see the module docstring).

    Args:
        session_factory: Sessions on the application database.
        waiting: How many messages RabbitMQ holds ready in the task and result queues; the sweep
            does nothing while any wait (they may be the "stuck" segments' own).
        policy: Its ``stuck_after_s`` is the age of a stuck segment.
        interval_s: Seconds between sweeps.
        on_requeued: Called after re-queued rows were committed (wakes the outbox relay).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        waiting: Callable[[], int],
        *,
        policy: RetryPolicy,
        interval_s: float,
        on_requeued: Callable[[], None],
    ) -> None:
        super().__init__("stuck-sweep", daemon=True)
        self._session_factory = session_factory
        self._waiting = waiting
        self._stuck_after = timedelta(seconds=policy.stuck_after_s)
        self._interval_s = interval_s
        self._on_requeued = on_requeued
        self.requeued = 0
        """Tasks this sweep wrote to the outbox again, since it started."""

    def run(self) -> None:
        """Sweep until :meth:`stop`."""
        self._set_connected(True)
        while not self._stop.wait(self._interval_s):
            try:
                self.sweep_once()
            except Exception:  # a failed sweep is retried next round; it must not end the thread
                log.warning("stuck-segment sweep failed; trying again later", exc_info=True)
        self._set_connected(False)

    def sweep_once(self) -> int:
        """One sweep; returns how many tasks were written to the outbox again.

        Raises:
            SQLAlchemyError: The database failed (nothing changed).
            messaging.types.BrokerError: RabbitMQ could not be asked (nothing changed).
        """
        if self._waiting() > 0:
            return 0
        with self._session_factory.begin() as session:
            count = crud.requeue_unpublished(session, queued_before=utcnow() - self._stuck_after)
        if count:
            self.requeued += count
            log.warning("re-queued %d segments that waited with no task in RabbitMQ", count)
            self._on_requeued()
        return count
