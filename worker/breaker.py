"""The circuit breaker between a worker and its voice server.

While TorchServe is down (or refuses the worker's key), cycling tasks through it would fail
them or burn their delivery counts; instead the worker stops taking tasks, lets the backlog wait
in RabbitMQ, probes the server with back-off, and takes tasks again once it answers.

Written here rather than taken from ``pybreaker``: its ``CircuitBreaker.call`` holds one lock
while the wrapped function runs, which would serialize a worker's parallel syntheses, and its
half-open state lets a *task* be the trial call; here a probe (``/ping`` with the current key)
is the trial, and tasks in hand wait for the outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from contract.retry import Backoff
from synthesis.base import VoiceServerAuthError

log = logging.getLogger(__name__)


class VoiceBreaker:
    """Closed (tasks flow) or open (no calls; a probe thread waits for the server).

    Thread-safe: every handler thread records its outcomes here and waits on it.

    Args:
        failures: Consecutive "unavailable" outcomes that open it.
        probe: Whether the voice server answers (with the key re-read); runs in the probe thread
            while open. :class:`~synthesis.base.VoiceServerAuthError` says the server answers
            but refuses the key (logged at ERROR, and the breaker counts as opened for the key);
            any other exception counts as ``False``.
        backoff: Wait between probes.
        on_change: Called with ``True`` when it closes and ``False`` when it opens (pause and
            resume consuming, readiness).
    """

    def __init__(
        self,
        *,
        failures: int,
        probe: Callable[[], bool],
        backoff: Backoff,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._failures_to_open = max(1, failures)
        self._probe = probe
        self._backoff = backoff
        self._on_change = on_change
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._closed.set()
        self._stop = threading.Event()
        self._failures = 0
        self.reason = ""
        """Why it is open ("" while closed)."""
        self.refused_key = False
        """Whether the server refused the worker's key since it opened (tasks in hand are then
        handed back, never failed)."""
        self.openings = 0
        """How many times it opened (for tests and logs)."""

    @property
    def is_open(self) -> bool:
        """Whether calls are held back now."""
        return not self._closed.is_set()

    def record_success(self) -> None:
        """A call reached the server: the failure streak ends."""
        with self._lock:
            self._failures = 0

    def record_unavailable(self, error: BaseException) -> None:
        """A call found the server down; opens after ``failures`` in a row."""
        with self._lock:
            self._failures += 1
            trip = self._failures >= self._failures_to_open
        if trip:
            self.open(f"voice server unavailable: {error}")

    def open(self, reason: str, *, loud: bool = False) -> None:
        """Hold calls back and start probing (no-op when already open).

        Args:
            reason: Logged, and shown by the worker's ``/readyz``.
            loud: Log at ERROR (a refused key needs an operator); else WARNING.
        """
        with self._lock:
            if not self._closed.is_set():
                return
            self._closed.clear()
            self.reason = reason
            self.refused_key = loud
            self.openings += 1
        log.log(
            logging.ERROR if loud else logging.WARNING,
            "circuit breaker open, not taking tasks until the voice server answers: %s",
            reason,
        )
        if self._on_change is not None:
            self._on_change(False)
        threading.Thread(target=self._probe_until_closed, name="breaker-probe", daemon=True).start()

    def wait_closed(self, timeout: float) -> bool:
        """Block until closed; ``False`` after ``timeout`` seconds or when stopped."""
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._closed.is_set() and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # Short slices, so a stop is seen promptly.
            self._closed.wait(min(left, 0.5))
        return self._closed.is_set()

    def stop(self) -> None:
        """Stop probing (the worker is shutting down); waiting calls return ``False``."""
        self._stop.set()

    def _close(self) -> None:
        with self._lock:
            self._failures = 0
            self.reason = ""
            self.refused_key = False
            self._closed.set()
        log.warning("circuit breaker closed: the voice server answers again; taking tasks")
        if self._on_change is not None:
            self._on_change(True)

    def _key_refused(self, reason: str) -> None:
        # The server is back but refuses this worker: no outage that ends by itself. Loud at every
        # probe (at most one a back-off apart), so the operator sees it until the key works.
        with self._lock:
            self.reason = reason
            self.refused_key = True
        log.error("not taking tasks: the voice server refuses this worker's key: %s", reason)

    def _probe_until_closed(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._stop.wait(self._backoff.delay(attempt)):
                return
            attempt += 1
            try:
                healthy = self._probe()
            except VoiceServerAuthError as e:
                self._key_refused(str(e))
                continue
            except Exception:  # a probe that crashes is a failed probe, never a dead thread
                log.exception("voice server probe failed")
                healthy = False
            if healthy:
                self._close()
                return
            log.info("voice server still unavailable (%s); probe %d", self.reason, attempt)
