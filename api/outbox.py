"""The transactional outbox relay: publish committed outbox rows, delete them after the confirm.

Starting a conversion commits segment statuses and one outbox row per task in one transaction;
nothing is published inside it. This relay then publishes the rows with publisher confirms and
deletes each batch only once every message in it was confirmed. A crash anywhere in between
leaves rows (or re-publishes confirmed ones, which the idempotent consumers absorb), never loses
a task. On Postgres the batch is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` so several API
replicas relay side by side without publishing the same row twice.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.crud import OUTBOX_INTERACTIVE_TASK, OUTBOX_TASK
from api.models import OutboxMessage
from contract.retry import Backoff, RetryPolicy
from messaging.service import BackgroundService
from messaging.types import MessagePublisher, PublishError

log = logging.getLogger(__name__)

BATCH_SIZE = 200


class OutboxRelay(BackgroundService):
    """Publishes outbox rows from a background thread.

    Args:
        session_factory: Sessions on the application database.
        publisher: A confirming publisher (RabbitMQ or in-process).
        poll_s: How often to look for rows when nobody called :meth:`wake` (rows left by a crash,
            or committed by another replica whose relay is down).
        batch_size: Rows claimed per transaction.
        backoff: Wait between failed rounds (default: the :class:`RetryPolicy` default).
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        publisher: MessagePublisher,
        *,
        poll_s: float = 1.0,
        batch_size: int = BATCH_SIZE,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__("outbox-relay", daemon=True)
        self._session_factory = session_factory
        self._publisher = publisher
        self._poll_s = poll_s
        self._batch_size = batch_size
        self._backoff = backoff or RetryPolicy().relay_backoff
        self._woken = threading.Event()
        self.published = 0
        """Messages published (and confirmed) by this relay since it started."""
        self.healthy = True
        """False after a failed round, until one succeeds (for readiness and logs)."""

    def wake(self) -> None:
        """Look for rows now (called after committing new ones)."""
        self._woken.set()

    def _wake(self) -> None:
        self._woken.set()

    def run(self) -> None:
        """Relay until :meth:`stop`."""
        failures = 0
        self._set_connected(True)
        while not self.stopping:
            try:
                count = self.relay_once()
            except (PublishError, SQLAlchemyError) as e:
                self.healthy = False
                delay = self._backoff.delay(failures)
                failures += 1
                log.warning("outbox relay failed (%s); retrying in %.1fs", e, delay)
                self._stop.wait(delay)
                continue
            failures = 0
            self.healthy = True
            if count < self._batch_size:  # a full batch means more may be waiting
                self._woken.wait(self._poll_s)
                self._woken.clear()
        self._set_connected(False)
        log.info("outbox relay stopped after publishing %d messages", self.published)

    def relay_once(self) -> int:
        """Publish and delete one batch of rows.

        Returns:
            How many rows were published.

        Raises:
            PublishError: The broker refused a message or stayed unreachable; the rows already
                confirmed in this batch are deleted, the rest stay for the next round.
            SQLAlchemyError: The database failed; rows stay (and may be published again).
        """
        error: PublishError | None = None
        published: list[int] = []
        with self._session_factory.begin() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .order_by(OutboxMessage.id)
                .limit(self._batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                try:
                    self._publish(row)
                except PublishError as e:
                    error = e
                    break
                published.append(row.id)
            if published:
                session.execute(
                    delete(OutboxMessage)
                    .where(OutboxMessage.id.in_(published))
                    .execution_options(synchronize_session=False)
                )
        self.published += len(published)
        if published:
            log.debug("outbox relay published %d messages", len(published))
        if error is not None:
            raise error
        return len(published)

    def _publish(self, row: OutboxMessage) -> None:
        if row.kind not in (OUTBOX_TASK, OUTBOX_INTERACTIVE_TASK):
            # Written by a newer version during a rolling upgrade, or a bug: never let one row
            # block every task behind it.
            log.error("dropping outbox row %d of unknown kind %r", row.id, row.kind)
            return
        topology = self._publisher.topology
        interactive = row.kind == OUTBOX_INTERACTIVE_TASK
        queue = topology.tasks_interactive if interactive else topology.tasks
        self._publisher.publish(queue, row.body.encode(), message_id=row.message_id)
