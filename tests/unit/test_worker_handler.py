"""The worker's task handler and health endpoint, on the in-process queue (no RabbitMQ)."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from audio.codecs import encode
from contract.messages import ResultMessage, SynthesisParams, TaskMessage
from contract.settings import Settings
from messaging.memory import MemoryBroker, MemoryConsumer, MemoryPublisher
from messaging.types import Delivery, Outcome, PublishError
from synthesis.base import (
    Audio,
    EncodedAudio,
    PermanentSynthesisError,
    TransientSynthesisError,
)
from worker.health import HealthServer
from worker.main import make_task_handler

TIMEOUT = 5.0


class StubSynth:
    """Audio of len(text) * 100 samples; texts starting with 'busy'/'bad' fail accordingly."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        with self.lock:
            self.calls += 1
        if text.startswith("busy"):
            raise TransientSynthesisError("HTTP 503: no free worker")
        if text.startswith("bad"):
            raise PermanentSynthesisError("text is not speakable")
        return Audio(samples=np.full(len(text) * 100, 1000, dtype=np.int16), sample_rate=16000)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        audio = self.synthesize(voice, text, params)
        data = encode(audio.samples, audio.sample_rate, fmt)
        return EncodedAudio(data, fmt, audio.sample_rate, len(audio.samples))

    def voices(self) -> list[str]:
        return ["joe"]


class UnreachablePublisher(MemoryPublisher):
    def publish(self, routing_key: str, body: bytes, **_options: object) -> None:
        raise PublishError("RabbitMQ unreachable")


def settings() -> Settings:
    return Settings(queue_prefix="w", delivery_limit=3, task_retries=1, task_backoff_s=0.0)


def task_body(text: str, segment_id: int = 1) -> bytes:
    return (
        TaskMessage(
            task_id=f"t-{segment_id}", project_id=1, segment_id=segment_id, voice="joe", text=text
        )
        .to_wire()
        .body
    )


def results(broker: MemoryBroker) -> list[ResultMessage]:
    out = []
    while (d := broker.get(broker.topology.results, timeout=0)) is not None:
        result = ResultMessage.from_wire(d.body, d.headers)
        out.append(result)
    return out


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(settings())


def test_success_publishes_the_result_then_acks(broker: MemoryBroker) -> None:
    handle = make_task_handler(settings(), StubSynth(), MemoryPublisher(broker), worker="w1")
    assert handle(Delivery(body=task_body("Hello."))) is Outcome.ACK
    (result,) = results(broker)
    assert result.status == "done"
    assert result.duration_ms == 38  # 600 samples at 16 kHz
    assert result.worker == "w1"


def test_invalid_message_is_rejected_to_the_dead_letter_queue(broker: MemoryBroker) -> None:
    handle = make_task_handler(settings(), StubSynth(), MemoryPublisher(broker))
    assert handle(Delivery(body=b"{not json")) is Outcome.REJECT
    assert handle(Delivery(body=b'{"schema": "voxmill.task/9"}')) is Outcome.REJECT
    assert results(broker) == []


def test_permanent_failure_publishes_failed_and_acks(broker: MemoryBroker) -> None:
    # The failed result carries the error; the task is not dead-lettered on top of it.
    handle = make_task_handler(settings(), StubSynth(), MemoryPublisher(broker))
    assert handle(Delivery(body=task_body("bad one"))) is Outcome.ACK
    (result,) = results(broker)
    assert (result.status, result.error) == ("failed", "text is not speakable")


def test_transient_failure_requeues_until_the_last_delivery(broker: MemoryBroker) -> None:
    synth = StubSynth()
    handle = make_task_handler(settings(), synth, MemoryPublisher(broker))
    # delivery_limit=3: deliveries 0 and 1 requeue, delivery 2 (= limit - 1) answers "failed".
    assert handle(Delivery(body=task_body("busy"), delivery_count=0)) is Outcome.REQUEUE
    assert handle(Delivery(body=task_body("busy"), delivery_count=1)) is Outcome.REQUEUE
    assert results(broker) == []
    assert handle(Delivery(body=task_body("busy"), delivery_count=2)) is Outcome.ACK
    (result,) = results(broker)
    assert result.status == "failed"
    assert result.error == "HTTP 503: no free worker (gave up after 2 attempts)"
    assert synth.calls == 6  # task_retries=1: two attempts per delivery


def test_unpublished_result_requeues_the_task(broker: MemoryBroker) -> None:
    handle = make_task_handler(settings(), StubSynth(), UnreachablePublisher(broker))
    assert handle(Delivery(body=task_body("Hello."))) is Outcome.REQUEUE


def test_shutdown_cuts_a_retry_backoff_short(broker: MemoryBroker) -> None:
    slow = settings().model_copy(update={"task_backoff_s": 60.0})
    stopping = threading.Event()
    handle = make_task_handler(slow, StubSynth(), MemoryPublisher(broker), stopping=stopping)
    outcome: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcome.append(handle(Delivery(task_body("busy")))))
    thread.start()
    started = time.monotonic()
    stopping.set()
    thread.join(TIMEOUT)
    assert outcome == [Outcome.REQUEUE]
    assert time.monotonic() - started < TIMEOUT


def test_conversion_completes_with_one_failing_segment(broker: MemoryBroker) -> None:
    """Embedded mode end to end: every segment ends done or failed, a poison message ends dead."""
    publisher = MemoryPublisher(broker)
    texts = ["One.", "busy forever", "Three.", "bad input", "Five."]
    for i, text in enumerate(texts, start=1):
        publisher.publish(broker.topology.tasks, task_body(text, segment_id=i))
    publisher.publish(broker.topology.tasks, b"\x00poison")
    consumer = MemoryConsumer(
        broker,
        broker.topology.tasks,
        make_task_handler(settings(), StubSynth(), publisher),
        concurrency=3,
    )
    consumer.start()
    try:
        assert broker.wait_idle(broker.topology.tasks, TIMEOUT)
    finally:
        consumer.stop()
        assert consumer.join(TIMEOUT)
    by_segment = {r.segment_id: r for r in results(broker)}
    assert sorted(by_segment) == [1, 2, 3, 4, 5]
    assert {i: r.status for i, r in by_segment.items()} == {
        1: "done",
        2: "failed",
        3: "done",
        4: "failed",
        5: "done",
    }
    assert "503" in (by_segment[2].error or "")
    # Only the unreadable message is dead-lettered: the failed segments have their results.
    dead = []
    while (message := broker.get(broker.topology.tasks_dead, timeout=0)) is not None:
        dead.append(message.body)
    assert dead == [b"\x00poison"]


def test_health_endpoint_follows_the_consumer() -> None:
    connected = threading.Event()
    server = HealthServer("127.0.0.1", 0, connected.is_set).start()
    url = f"http://127.0.0.1:{server.port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{url}/healthz", timeout=TIMEOUT)
        assert info.value.code == 503
        connected.set()
        with urllib.request.urlopen(f"{url}/healthz", timeout=TIMEOUT) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{url}/other", timeout=TIMEOUT)
        assert info.value.code == 404
    finally:
        server.close()
