"""The worker against the real RabbitMQ: tasks in, results out; SIGTERM finishes in-flight work."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio.codecs import encode, media_type
from contract.messages import ResultMessage, SynthesisParams, TaskMessage
from contract.settings import Settings
from messaging.publisher import Publisher
from synthesis.base import (
    Audio,
    EncodedAudio,
    PermanentSynthesisError,
    TransientSynthesisError,
)
from worker.main import run_worker

pytestmark = pytest.mark.integration

TIMEOUT = 20.0
REPO = Path(__file__).resolve().parents[2]
RATE = 16000


def task(segment_id: int, text: str) -> TaskMessage:
    return TaskMessage(
        task_id=f"task-{segment_id}", project_id=9, segment_id=segment_id, voice="joe", text=text
    )


def collect_results(channel, queue: str, wait_for, count: int) -> dict[int, ResultMessage]:
    """Take ``count`` results off ``queue`` (acking them), keyed by segment."""
    results: dict[int, ResultMessage] = {}

    def more() -> bool:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is not None:
            result = ResultMessage.from_wire(body, properties.headers)
            results[result.segment_id] = result
        return len(results) >= count

    wait_for(more, timeout=TIMEOUT, what=f"{count} results")
    return results


def ready(channel, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


class StubSynth:
    """len(text) * 100 samples; 'busy…' is always 503, 'bad…' is refused."""

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        if text.startswith("busy"):
            raise TransientSynthesisError("TorchServe busy or failing (HTTP 503): no worker")
        if text.startswith("bad"):
            raise PermanentSynthesisError("TorchServe refused the text (HTTP 400): empty")
        return Audio(samples=np.full(len(text) * 100, 500, dtype=np.int16), sample_rate=RATE)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        audio = self.synthesize(voice, text, params)
        data = encode(audio.samples, audio.sample_rate, fmt)
        return EncodedAudio(data, fmt, audio.sample_rate, len(audio.samples))

    def voices(self) -> list[str]:
        return ["joe"]


def test_worker_turns_tasks_into_results_and_failures_stay_per_segment(
    rabbit_settings: Settings, amqp_channel, wait_for
) -> None:
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(rabbit_settings, StubSynth()),
        kwargs={"health_port": 0, "stop": stop},
    )
    with Publisher(rabbit_settings) as publisher:
        texts = {1: "First sentence.", 2: "busy all day", 3: "Third.", 4: "bad", 5: "Fifth one."}
        for segment_id, text in texts.items():
            publisher.publish_task(task(segment_id, text))
        publisher.publish(publisher.topology.tasks, b"\xffnot a task")
        worker.start()
        try:
            results = collect_results(amqp_channel, publisher.topology.results, wait_for, 5)
            dead: list[bytes] = []

            def one_dead_letter() -> bool:
                got = _get(amqp_channel, publisher.topology.tasks_dead)
                if got is not None:
                    dead.append(got[2])
                return len(dead) == 1

            # Only the unreadable message: the failed segments' tasks are answered by results.
            wait_for(one_dead_letter, what="the unreadable message in the dead-letter queue")
        finally:
            stop.set()
            worker.join(TIMEOUT)
    assert not worker.is_alive()

    assert {i: r.status for i, r in results.items()} == {
        1: "done",
        2: "failed",
        3: "done",
        4: "failed",
        5: "done",
    }
    assert results[4].error == "TorchServe refused the text (HTTP 400): empty"
    assert "HTTP 503" in (results[2].error or "")
    for i in (1, 3, 5):
        audio = results[i]
        assert audio.audio is not None
        samples, rate = sf.read(io.BytesIO(audio.audio))
        assert rate == RATE == audio.sample_rate
        assert len(samples) == len(texts[i]) * 100
        assert audio.duration_ms == round(1000 * len(texts[i]) * 100 / RATE)
    assert dead == [b"\xffnot a task"]
    assert ready(amqp_channel, publisher.topology.tasks_dead) == 0
    assert ready(amqp_channel, f"{rabbit_settings.queue_prefix}.tasks") == 0


def _get(channel, queue: str):
    method, properties, body = channel.basic_get(queue, auto_ack=True)
    return (method, properties, body) if method is not None else None


class FakeTorchServe:
    """Answers POST /predictions/<voice> like TorchServe with the Voxmill handler: audio in the
    asked format described by X-Sample-Rate / X-Audio-Samples, checking the bearer token.
    A text starting with 'slow' is held until :attr:`release` is set."""

    token = "inference-key-123"

    def __init__(self) -> None:
        self.slow_started = threading.Event()
        self.release = threading.Event()
        self.requests: list[dict[str, object]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._send(400, b'{"type": "InvalidKeyException"}', "application/json")
                fake.requests.append(body)
                if str(body["text"]).startswith("slow"):
                    fake.slow_started.set()
                    fake.release.wait(TIMEOUT)
                samples = np.full(len(str(body["text"])) * 100, 700, dtype=np.int16)
                fmt = str(body["format"])
                described = {"X-Sample-Rate": str(RATE), "X-Audio-Samples": str(len(samples))}
                self._send(200, encode(samples, RATE, fmt), media_type(fmt, RATE), described)

            def _send(
                self, status: int, data: bytes, kind: str, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_torchserve() -> Iterator[FakeTorchServe]:
    fake = FakeTorchServe()
    yield fake
    fake.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def test_worker_process_finishes_in_flight_task_on_sigterm(
    rabbit_settings: Settings,
    fake_torchserve: FakeTorchServe,
    amqp_channel,
    wait_for,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
    env.update(
        VOXMILL_MODE="distributed",
        VOXMILL_ENVIRONMENT="test",
        VOXMILL_BROKER_URL=rabbit_settings.broker_url,
        VOXMILL_QUEUE_PREFIX=rabbit_settings.queue_prefix,
        VOXMILL_DELIVERY_LIMIT=str(rabbit_settings.delivery_limit),
        VOXMILL_TORCHSERVE_URL=fake_torchserve.url,
        VOXMILL_TORCHSERVE_TOKEN=fake_torchserve.token,
        VOXMILL_PREFETCH="2",
        VOXMILL_HEARTBEAT_S="5",
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "worker.main", "--health-port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: health(port) == 200, timeout=TIMEOUT, what="the worker's /healthz")
        with Publisher(rabbit_settings) as publisher:
            publisher.publish_task(task(1, "Quick one."))
            first = collect_results(amqp_channel, publisher.topology.results, wait_for, 1)
            assert first[1].status == "done"
            assert fake_torchserve.requests[0] == {
                "text": "Quick one.",
                "speed": 1.0,
                "format": "flac",
            }
            # The worker forwards the voice server's FLAC as the message body, untouched.
            assert first[1].audio == encode(np.full(100 * 10, 700, dtype=np.int16), RATE, "flac")

            publisher.publish_task(task(2, "slow and long sentence."))
            assert fake_torchserve.slow_started.wait(TIMEOUT)
            worker.send_signal(signal.SIGTERM)
            with pytest.raises(subprocess.TimeoutExpired):
                worker.wait(0.5)  # still finishing the in-flight task
            fake_torchserve.release.set()
            assert worker.wait(TIMEOUT) == 0

            second = collect_results(amqp_channel, publisher.topology.results, wait_for, 1)
            assert second[2].status == "done"
            assert second[2].duration_ms == round(
                1000 * len("slow and long sentence.") * 100 / RATE
            )
            # Acked before exit: an unacked task would be back in the queue now.
            assert ready(amqp_channel, publisher.topology.tasks) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        sys.stderr.write(log_path.read_text())
