"""The retry and delivery policy of every Voxmill process, in one object.

Who reads what:

- ``messaging.topology`` / ``messaging.memory``: the queues' delivery limits (``x-delivery-limit``);
- ``messaging.publisher``: how long a publish keeps reconnecting, and its back-off;
- ``messaging.consumer``: the back-off between reconnects to RabbitMQ;
- ``api.outbox``: the back-off of the relay that publishes tasks;
- ``worker.task`` / ``worker.main``: synthesis attempts, their back-off, and the delivery on which
  a task that keeps failing is answered ``failed`` instead of requeued;
- ``synthesis.torchserve``: which HTTP statuses are worth another attempt;
- ``api.results``: how long storing a result waits for the database.

The policy is built from :class:`~contract.settings.Settings` (``VOXMILL_DELIVERY_LIMIT``,
``VOXMILL_TASK_RETRIES``, ``VOXMILL_TASK_BACKOFF_S``; the chart's ``config.deliveryLimit``) with
:meth:`RetryPolicy.from_settings`. Waits are in seconds, so budgets ("keep trying for 30 s") and
attempt counts read the same way.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Backoff:
    """Exponential back-off with "equal jitter".

    The wait before retry ``n`` (0-based) is between half and all of
    ``min(cap_s, first_s * 2**n)``: the jitter spreads the retries of many processes that failed at
    the same moment (a TorchServe or RabbitMQ restart) so they do not all come back at once, and
    the guaranteed half keeps the back-off growing.

    Attributes:
        first_s: The wait before the first retry, before jitter.
        cap_s: The longest wait.
    """

    first_s: float
    cap_s: float

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry ``attempt`` (0 for the first retry)."""
        ceiling = min(self.cap_s, self.first_s * (2 ** max(0, attempt)))
        return ceiling / 2 + rng() * ceiling / 2

    def wait(self, state: RetryState) -> float:
        """The delay for a ``tenacity`` retry state (usable as ``Retrying(wait=backoff.wait)``)."""
        return self.delay(state.attempt_number - 1)


class RetryState(Protocol):
    """The part of ``tenacity.RetryCallState`` that :meth:`Backoff.wait` reads."""

    attempt_number: int


# Statuses of a voice server worth another attempt besides every 5xx: TorchServe answers 503 when a
# model has no free worker and 500 when a handler crashed (for example out of GPU memory); 408, 425
# and 429 are timeouts and rate limits of gateways in front of it.
_TRANSIENT_4XX = frozenset({408, 425, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard each part of Voxmill tries before it gives up, and what it does then.

    Attributes:
        task_delivery_limit: Deliveries of one task before RabbitMQ dead-letters it
            (``x-delivery-limit`` of ``<prefix>.tasks``).
        result_delivery_limit: The same for ``<prefix>.results``. Results are small and storing
            them is idempotent; one the API cannot store after this many deliveries (a segment
            deleted meanwhile) goes to the results dead-letter queue.
        synthesis_attempts: Calls to the voice server for one task delivery (first + retries) when
            the failures are transient.
        synthesis_backoff: Wait between those calls.
        publish_retry_for_s: How long one publish keeps reconnecting to RabbitMQ.
        publish_backoff: Wait between those reconnects.
        reconnect_backoff: Wait between a consumer's reconnects (it never gives up).
        relay_backoff: Wait between the API outbox relay's failed rounds (it never gives up).
        store_retry_for_s: How long storing one result waits for the database before the result
            is returned to the queue.
        store_backoff: Wait between those attempts.
        transient_statuses: HTTP statuses of a voice server worth another attempt (and every 5xx).
        synthesis_budget_s: How long one task waits for a voice server that is *unavailable*
            (refused connection, 502/503/504): time, not attempts, so a restart of any length
            within it delays segments and fails none. Other transient errors (a 500 of the
            handler, a read timeout) of a server that answers count ``synthesis_attempts``.
        breaker_failures: Consecutive unavailable answers that open a worker's circuit breaker
            (it stops consuming and probes the server until it answers).
        probe_backoff: Wait between the probes of an open breaker.
    """

    task_delivery_limit: int = 5
    result_delivery_limit: int = 10
    synthesis_attempts: int = 4
    synthesis_backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 30.0))
    publish_retry_for_s: float = 30.0
    publish_backoff: Backoff = field(default_factory=lambda: Backoff(0.25, 5.0))
    reconnect_backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 30.0))
    relay_backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 10.0))
    store_retry_for_s: float = 30.0
    store_backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 5.0))
    transient_statuses: frozenset[int] = _TRANSIENT_4XX
    synthesis_budget_s: float = 600.0
    breaker_failures: int = 3
    probe_backoff: Backoff = field(default_factory=lambda: Backoff(0.5, 10.0))

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy that ``settings`` configure; the rest keeps its defaults."""
        return cls(
            task_delivery_limit=settings.delivery_limit,
            synthesis_attempts=max(0, settings.task_retries) + 1,
            synthesis_backoff=Backoff(settings.task_backoff_s, 30.0),
            synthesis_budget_s=settings.task_retry_budget_s,
            breaker_failures=settings.breaker_failures,
            probe_backoff=Backoff(min(0.5, settings.task_backoff_s), 10.0),
        )

    @property
    def stuck_after_s(self) -> float:
        """How long a segment may stay ``queued`` with no task waiting in RabbitMQ before the API's
        sweep publishes its task again: twice the synthesis budget, since a worker may hold a task
        for the whole budget (waiting for its voice server) plus its attempts."""
        return 2 * self.synthesis_budget_s

    @property
    def last_task_delivery(self) -> int:
        """The delivery count (0-based) on which a task is answered ``failed`` rather than requeued.

        RabbitMQ dead-letters a message once it was returned ``task_delivery_limit`` times;
        answering one delivery before that leaves a spare one for a worker that dies on the last
        attempt, so the segment still ends with its error.
        """
        return max(0, self.task_delivery_limit - 1)

    def is_transient_status(self, status: int) -> bool:
        """Whether a voice server's HTTP ``status`` is worth another attempt."""
        return status >= 500 or status in self.transient_statuses


class RetrySettings(Protocol):
    """The settings :meth:`RetryPolicy.from_settings` reads (``contract.settings.Settings``)."""

    delivery_limit: int
    task_retries: int
    task_backoff_s: float
    task_retry_budget_s: float
    breaker_failures: int
