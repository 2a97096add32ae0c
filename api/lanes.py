"""Two lanes of synthesis work: *interactive* (REST speech, WebSocket streams, one-sentence
re-synthesis) and *bulk* (book conversions), so a user waiting for one sentence never waits
behind a book.

How the lanes are kept apart (docs/scaling.md says why this design):

- **Queues**: a re-synthesized sentence goes to ``<prefix>.tasks.interactive``, a book to
  ``<prefix>.tasks`` (:mod:`messaging.topology`); workers consume each lane with their own
  consumers (``voxmill worker --lanes``), and the chart scales each lane's workers on its own
  queue depth.
- **Voice servers** (distributed): the API's REST and WebSocket synthesis may use a TorchServe of
  their own (``VOXMILL_INTERACTIVE_TORCHSERVE_URL``), so a book's tasks never sit in front of them
  in TorchServe's job queue.
- **Admission** (every mode): :class:`LaneGate` bounds the interactive synthesizer calls of one
  API replica (``VOXMILL_INTERACTIVE_CONCURRENCY``); a call that finds no free slot within
  ``VOXMILL_INTERACTIVE_MAX_WAIT_S`` fails with :class:`OverloadedError`, which the routes turn
  into 503 + ``Retry-After`` (WebSocket: close 1013). In the embedded mode, where a book's
  sentences run on the same CPU as the API, a bulk task waits while interactive work is in
  flight (up to ``VOXMILL_BULK_YIELD_MAX_S``, so a book slows down but never stops).

``VOXMILL_PRIORITY_LANE=false`` restores the single lane (one queue, no yielding), the "before" of
``bench/priority_bench.py``.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio, EncodedAudio, Synthesizer, TransientSynthesisError

log = logging.getLogger(__name__)

# Seconds a client is told to wait after an overload 503 (or a 1013 close).
OVERLOAD_RETRY_AFTER_S = 2
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Lane(enum.StrEnum):
    """Which lane a piece of synthesis work runs in."""

    INTERACTIVE = "interactive"
    BULK = "bulk"


class OverloadedError(TransientSynthesisError):
    """No interactive slot came free in time: the voice servers are saturated.

    Attributes:
        retry_after_s: Seconds the client should wait before trying again.
    """

    def __init__(self, message: str, retry_after_s: int = OVERLOAD_RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class LaneMetrics:
    """Per-lane Prometheus metrics, registered into an app's registry."""

    waiting: Gauge
    in_flight: Gauge
    wait_seconds: Histogram
    rejected: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LaneMetrics:
        """The metrics, registered in ``registry``."""
        return cls(
            waiting=Gauge(
                "voxmill_lane_waiting",
                "Synthesis work waiting for its lane: interactive calls waiting for a slot, bulk "
                "tasks yielding to interactive work.",
                ["lane"],
                registry=registry,
            ),
            in_flight=Gauge(
                "voxmill_lane_in_flight",
                "Synthesizer calls running, by lane.",
                ["lane"],
                registry=registry,
            ),
            wait_seconds=Histogram(
                "voxmill_lane_wait_seconds",
                "Time from asking for a synthesizer call to its start, by lane.",
                ["lane"],
                buckets=_WAIT_BUCKETS,
                registry=registry,
            ),
            rejected=Counter(
                "voxmill_lane_rejected",
                "Interactive calls refused with 503 / close 1013 after waiting the bounded time.",
                ["lane"],
                registry=registry,
            ),
        )


class LaneGate:
    """Admission control between the lanes of one process.

    Interactive calls take one of ``concurrency`` slots, waiting at most ``max_wait_s``. Bulk
    work, where :meth:`bulk` is used (the embedded mode's workers), waits while any interactive
    call is in flight, at most ``bulk_yield_max_s``.

    A plain semaphore and condition, not a library: the rule (bounded interactive slots, bulk
    yields to interactive with a cap) is Voxmill's own scheduling policy, and it must work across
    the threads that run synthesizer calls (the event loop never blocks on it).

    Args:
        concurrency: Interactive calls at once.
        max_wait_s: How long an interactive call may wait for a slot.
        bulk_yield_max_s: How long a bulk task may wait for interactive work to finish.
        metrics: Where waits, slots and refusals are counted (``None``: not counted).
        enabled: ``False`` (``VOXMILL_PRIORITY_LANE=false``): bulk never yields; interactive
            calls still have bounded slots.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        max_wait_s: float,
        bulk_yield_max_s: float,
        metrics: LaneMetrics | None = None,
        enabled: bool = True,
    ) -> None:
        self.concurrency = concurrency
        self.max_wait_s = max_wait_s
        self.bulk_yield_max_s = bulk_yield_max_s
        self.enabled = enabled
        self._metrics = metrics
        self._cond = threading.Condition()
        self._interactive = 0

    @property
    def interactive_in_flight(self) -> int:
        """Interactive calls holding a slot now."""
        with self._cond:
            return self._interactive

    @contextlib.contextmanager
    def interactive(self, *, bounded: bool = True) -> Iterator[None]:
        """Hold an interactive slot for the duration of the block.

        Args:
            bounded: ``False`` for the interactive lane's queued tasks: they are already
                bounded by their consumer's concurrency, so they never wait here, but bulk work
                still yields to them.

        Raises:
            OverloadedError: No slot came free within ``max_wait_s``.
        """
        start = time.perf_counter()
        self._gauge("waiting", Lane.INTERACTIVE, +1)
        try:
            with self._cond:
                admitted = not bounded or self._cond.wait_for(
                    lambda: self._interactive < self.concurrency, self.max_wait_s
                )
                if admitted:
                    self._interactive += 1
        finally:
            self._gauge("waiting", Lane.INTERACTIVE, -1)
        waited = time.perf_counter() - start
        if not admitted:
            if self._metrics is not None:
                self._metrics.rejected.labels(Lane.INTERACTIVE).inc()
            raise OverloadedError(
                f"the voice servers are saturated: {self.concurrency} interactive syntheses are "
                f"running and none finished within {self.max_wait_s:g} s; retry in "
                f"{OVERLOAD_RETRY_AFTER_S} s"
            )
        self._observe(Lane.INTERACTIVE, waited)
        self._gauge("in_flight", Lane.INTERACTIVE, +1)
        try:
            yield
        finally:
            self._gauge("in_flight", Lane.INTERACTIVE, -1)
            with self._cond:
                self._interactive -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """Run a bulk task once no interactive call is in flight (or ``bulk_yield_max_s`` has
        passed: a book slows down under interactive load, it never stops)."""
        start = time.perf_counter()
        if self.enabled:
            self._gauge("waiting", Lane.BULK, +1)
            try:
                with self._cond:
                    self._cond.wait_for(lambda: self._interactive == 0, self.bulk_yield_max_s)
            finally:
                self._gauge("waiting", Lane.BULK, -1)
        self._observe(Lane.BULK, time.perf_counter() - start)
        self._gauge("in_flight", Lane.BULK, +1)
        try:
            yield
        finally:
            self._gauge("in_flight", Lane.BULK, -1)

    def _gauge(self, name: str, lane: Lane, delta: int) -> None:
        if self._metrics is not None:
            getattr(self._metrics, name).labels(lane).inc(delta)

    def _observe(self, lane: Lane, seconds: float) -> None:
        if self._metrics is not None:
            self._metrics.wait_seconds.labels(lane).observe(seconds)


class AdmittedSynthesizer:
    """A :class:`~synthesis.base.Synthesizer` whose calls hold an interactive slot of a
    :class:`LaneGate`: what the REST and WebSocket routes synthesize through.

    Everything other than the two synthesis calls (``voices``, ``set_voice``, ``ping``...) is
    the wrapped synthesizer's own.

    Raises (from the synthesis calls):
        OverloadedError: No slot within the gate's ``max_wait_s``; else the wrapped errors.
    """

    def __init__(self, synthesizer: Synthesizer, gate: LaneGate) -> None:
        self.inner = synthesizer
        self.gate = gate

    def synthesize(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        version: str | None = None,
        pool: str | None = None,
    ) -> Audio:
        """As :meth:`synthesis.base.Synthesizer.synthesize`, in an interactive slot."""
        with self.gate.interactive():
            return self.inner.synthesize(voice, text, params, **_target(version, pool))

    def synthesize_encoded(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        fmt: str = "flac",
        version: str | None = None,
        pool: str | None = None,
    ) -> EncodedAudio:
        """As :meth:`synthesis.base.Synthesizer.synthesize_encoded`, in an interactive slot."""
        with self.gate.interactive():
            return self.inner.synthesize_encoded(
                voice, text, params, fmt=fmt, **_target(version, pool)
            )

    def voices(self) -> list[str]:
        """The wrapped synthesizer's voices."""
        return self.inner.voices()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class QueueDepthCollector:
    """``voxmill_lane_queue_depth{lane}``: tasks ready in each lane's queue, read at scrape time
    from a queue that can say (the embedded mode's in-process broker). With RabbitMQ the broker's
    own metrics say it (``rabbitmq_queue_messages_ready`` per queue), as KEDA reads it.

    Args:
        depth: Ready messages of a queue by name.
        queues: Each lane's queue name.
    """

    def __init__(self, depth: Callable[[str], int], queues: dict[Lane, str]) -> None:
        self._depth = depth
        self._queues = queues

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The current depth of each lane's queue."""
        family = GaugeMetricFamily(
            "voxmill_lane_queue_depth", "Tasks ready in each lane's queue.", labels=["lane"]
        )
        for lane, queue in self._queues.items():
            family.add_metric([lane.value], self._depth(queue))
        yield family


def interactive_synthesizer(
    settings: Settings, synthesizer: Synthesizer | None, gate: LaneGate
) -> Synthesizer | None:
    """What the REST and WebSocket routes synthesize with: ``synthesizer`` (or, with
    ``VOXMILL_INTERACTIVE_TORCHSERVE_URL`` and the priority lane on, a client of the interactive
    lane's own TorchServe) behind ``gate``'s interactive slots; ``None`` without a synthesizer."""
    if settings.priority_lane and settings.interactive_torchserve_url:
        from synthesis.torchserve import TorchServeSynthesizer

        lane_settings = settings.model_copy(
            update={
                "torchserve_url": settings.interactive_torchserve_url,
                "voice_routes": {},
                "torchserve_pools": {},
            }
        )
        return AdmittedSynthesizer(TorchServeSynthesizer(lane_settings), gate)
    if synthesizer is None:
        return None
    return AdmittedSynthesizer(synthesizer, gate)


def _target(version: str | None, pool: str | None) -> dict[str, Any]:
    # Only what was asked for: older synthesizers (and test stand-ins) take neither keyword.
    return {k: v for k, v in (("version", version), ("pool", pool)) if v is not None}


def yielding_handler(handler: Callable[[Any], Any], gate: LaneGate) -> Callable[[Any], Any]:
    """``handler`` (a bulk task handler) run inside ``gate.bulk()``."""

    def run(delivery: Any) -> Any:
        with gate.bulk():
            return handler(delivery)

    return run
