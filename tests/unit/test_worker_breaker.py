"""Outages delay segments, never fail them within the budget; the breaker stops the worker from
cycling tasks through a server that is down; a refused key is never a segment's failure."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from audio.codecs import encode
from contract.messages import SynthesisParams, TaskMessage
from contract.retry import Backoff, RetryPolicy
from contract.settings import Settings
from messaging.memory import MemoryBroker, MemoryPublisher
from messaging.types import Delivery, Outcome
from synthesis.base import (
    EncodedAudio,
    TransientSynthesisError,
    VoiceServerAuthError,
    VoiceServerUnavailable,
)
from worker.breaker import VoiceBreaker
from worker.health import HealthServer
from worker.main import make_task_handler
from worker.task import process_task

RATE = 16000


class Clock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FlakySynth:
    """Raises ``error`` while ``down`` is set (or for the first ``failures`` calls), then speaks."""

    def __init__(self, error: Exception, failures: int = 10**9) -> None:
        self.error = error
        self.failures = failures
        self.calls = 0
        self.down = threading.Event()
        self.lock = threading.Lock()

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        with self.lock:
            self.calls += 1
            failing = self.down.is_set() or self.calls <= self.failures
        if failing:
            raise self.error
        samples = np.full(800, 1000, dtype=np.int16)
        return EncodedAudio(encode(samples, RATE, fmt), fmt, RATE, len(samples))

    def voices(self) -> list[str]:
        return ["joe"]


def task(text: str = "Hello.") -> TaskMessage:
    return TaskMessage(task_id="t-1", project_id=1, segment_id=1, voice="joe", text=text)


def policy(budget_s: float = 600.0, attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(
        synthesis_attempts=attempts,
        synthesis_backoff=Backoff(1.0, 30.0),
        synthesis_budget_s=budget_s,
        breaker_failures=3,
        probe_backoff=Backoff(0.01, 0.05),
    )


def test_an_outage_shorter_than_the_budget_delays_the_segment_and_fails_nothing() -> None:
    # Down for 20 calls: five times the attempts, and within ten minutes of back-off (at most
    # 1 + 2 + 4 + 8 + 16 + 15 * 30 s).
    synth = FlakySynth(VoiceServerUnavailable("TorchServe unreachable: refused"), failures=20)
    clock = Clock()
    result = process_task(task(), synth, policy=policy(), sleep=clock.sleep, clock=clock)
    assert result.status == "done"
    assert synth.calls == 21
    assert 60 < clock.now <= 600  # it waited minutes, backing off up to 30 s between calls
    assert max(clock.sleeps) <= 30


def test_an_outage_longer_than_the_budget_fails_with_a_readable_reason() -> None:
    synth = FlakySynth(VoiceServerUnavailable("TorchServe unreachable: refused"))
    clock = Clock()
    result = process_task(
        task(), synth, policy=policy(budget_s=120), sleep=clock.sleep, clock=clock
    )
    assert result.status == "failed"
    assert clock.now == pytest.approx(120)  # never sleeps past the budget
    assert result.error is not None
    assert result.error.startswith("the voice server stayed unavailable for 2 minutes")
    assert "TorchServe unreachable" in result.error
    assert "resynthesize" in result.error


def test_a_failing_handler_of_a_server_that_answers_counts_attempts_not_time() -> None:
    synth = FlakySynth(TransientSynthesisError("TorchServe busy or failing (HTTP 500): boom"))
    clock = Clock()
    result = process_task(task(), synth, policy=policy(attempts=3), sleep=clock.sleep, clock=clock)
    assert result.status == "failed"
    assert synth.calls == 3
    assert result.error == "TorchServe busy or failing (HTTP 500): boom (gave up after 3 attempts)"


def breaker_for(synth: FlakySynth, changes: list[bool]) -> VoiceBreaker:
    return VoiceBreaker(
        failures=3,
        probe=lambda: not synth.down.is_set(),
        backoff=Backoff(0.01, 0.05),
        on_change=changes.append,
    )


def test_the_breaker_opens_on_an_outage_and_tasks_wait_for_its_probe() -> None:
    synth = FlakySynth(VoiceServerUnavailable("TorchServe unreachable: refused"), failures=0)
    synth.down.set()
    changes: list[bool] = []
    breaker = breaker_for(synth, changes)
    outcome: list[str] = []

    def run() -> None:
        r = process_task(task(), synth, policy=policy(), sleep=lambda s: None, breaker=breaker)
        outcome.append(r.status)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 5
    while not breaker.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert breaker.is_open and changes == [False]  # the worker was told to stop consuming
    time.sleep(0.2)
    calls_while_open = synth.calls
    assert calls_while_open == 3  # no task is cycled through a server known to be down
    synth.down.clear()  # TorchServe is back: the probe closes the breaker
    thread.join(5)
    assert outcome == ["done"]
    assert changes == [False, True]
    assert not breaker.is_open


def test_a_refused_key_is_the_workers_problem_never_the_segments() -> None:
    synth = FlakySynth(VoiceServerAuthError("TorchServe refused the token (HTTP 400)"), failures=0)
    synth.down.set()
    changes: list[bool] = []
    breaker = breaker_for(synth, changes)
    settings = Settings(queue_prefix="w", task_retry_budget_s=0.3, task_backoff_s=0.01)
    broker = MemoryBroker(settings)
    handle = make_task_handler(settings, synth, MemoryPublisher(broker), breaker=breaker)

    # The key stays wrong for longer than the budget: the task goes back to the queue, unfailed.
    body = task().to_wire().body
    assert handle(Delivery(body=body)) is Outcome.REQUEUE
    assert broker.depth(broker.topology.results) == 0
    assert breaker.is_open and breaker.refused_key and changes == [False]
    assert synth.calls == 1  # the refusal opened the breaker at once; no task retried it

    synth.down.clear()  # a new key in the key file: the probe re-reads it and succeeds
    assert handle(Delivery(body=body, delivery_count=1)) is Outcome.ACK
    assert changes == [False, True]
    assert broker.depth(broker.topology.results) == 1


def test_a_server_back_with_a_key_the_worker_cannot_use_is_loud_and_fails_no_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # TorchServe went down (the breaker opened) and came back with a new key the worker has not
    # got: its probe is refused for the key. That is no outage that ends by itself, and the task
    # in hand must go back to the queue when its budget passes, not fail "unavailable".
    synth = FlakySynth(VoiceServerUnavailable("TorchServe unreachable: refused"), failures=0)
    synth.down.set()
    refusing = threading.Event()
    refusing.set()

    def probe() -> bool:
        if refusing.is_set():
            raise VoiceServerAuthError("TorchServe http://ts:8080 refused the inference key")
        return not synth.down.is_set()

    changes: list[bool] = []
    breaker = VoiceBreaker(
        failures=3, probe=probe, backoff=Backoff(0.01, 0.05), on_change=changes.append
    )
    settings = Settings(queue_prefix="w", task_retry_budget_s=1.0, task_backoff_s=0.01)
    broker = MemoryBroker(settings)
    handle = make_task_handler(settings, synth, MemoryPublisher(broker), breaker=breaker)

    body = task().to_wire().body
    assert handle(Delivery(body=body)) is Outcome.REQUEUE
    assert broker.depth(broker.topology.results) == 0  # no failed result for the segment
    assert breaker.is_open and breaker.refused_key and changes == [False]
    assert "refused the inference key" in breaker.reason  # what the worker's /readyz shows
    loud = [r for r in caplog.records if r.levelname == "ERROR" and "refuses" in r.getMessage()]
    assert loud and "refused the inference key" in loud[0].getMessage()
    assert synth.calls == 3  # the probe, not the task, met the refusal

    refusing.clear()  # the key file now holds the key the server accepts
    synth.down.clear()
    assert handle(Delivery(body=body, delivery_count=1)) is Outcome.ACK
    assert changes == [False, True] and not breaker.refused_key
    assert broker.depth(broker.topology.results) == 1


def test_readiness_reports_an_open_breaker_while_liveness_stays_up() -> None:
    reason: list[str | None] = [None]
    server = HealthServer("127.0.0.1", 0, lambda: True, ready=lambda: reason[0]).start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            assert response.status == 200
        reason[0] = "not taking tasks: voice server unavailable"
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        assert info.value.code == 503
        assert b"voice server unavailable" in info.value.read()
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            assert response.status == 200  # alive: a restart would not bring TorchServe back
    finally:
        server.close()


def test_the_health_endpoint_binds_loopback_by_default() -> None:
    import inspect

    from worker.main import cli, run_worker

    assert inspect.signature(run_worker).parameters["health_host"].default == "127.0.0.1"
    assert "127.0.0.1" in inspect.getsource(cli)
