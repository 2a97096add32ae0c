"""Load test of a running Voxmill: REST speech, WebSocket streaming and document conversions.

``make loadtest`` runs it headless against the local stack for a bounded time (``LOADTEST_TIME``)
and, at the end, prints per user type: requests, requests/s, time to first audio p50/p95/p99 and
errors. Locust's own table (every request) comes before it.

- :class:`SpeechUser`: ``POST /v1/audio/speech`` with two sentences; first audio = the first
  byte of the streamed answer.
- :class:`StreamUser`: ``/v1/audio/speech/stream``, a paragraph sent a word at a time; first
  audio = the first binary frame.
- :class:`ConversionUser`: a 20-sentence document converted as a project; first audio = its
  first segment done (the interactive users share the voice servers with it).

Run by hand: ``.venv-loadtest/bin/locust -f bench/locustfile.py --headless --host
http://127.0.0.1:8000 --users 6 --spawn-rate 2 --run-time 60s`` (``VOXMILL_API_KEY`` if keys are
on). Never part of ``make test``.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from typing import Any

from locust import HttpUser, between, events, task
from websockets.sync.client import connect

KEY = os.environ.get("VOXMILL_API_KEY", "")
HEADERS = {"Authorization": f"Bearer {KEY}"} if KEY else {}
SPEECH = "Your order has shipped. It will arrive on Tuesday before noon."
PARAGRAPH = (
    "The storm rolled in from the west. Rain drummed on the roof until midnight. "
    "By morning the sky had cleared."
)
DOCUMENT = " ".join(f"Sentence {i} of a short report, read aloud for a test." for i in range(20))
CONVERSION_CAP_S = 300.0

# Per user type: first-audio times (s), requests, errors. Filled by the users, printed at the end.
_FIRST_AUDIO: dict[str, list[float]] = defaultdict(list)
_COUNTS: dict[str, list[int]] = defaultdict(lambda: [0, 0])
_STARTED = time.perf_counter()


def _record(user: str, first_audio_s: float | None, error: Exception | None) -> None:
    counts = _COUNTS[user]
    counts[0] += 1
    if error is not None:
        counts[1] += 1
    elif first_audio_s is not None:
        _FIRST_AUDIO[user].append(first_audio_s)


def _fire(name: str, kind: str, start: float, length: int, error: Exception | None) -> None:
    events.request.fire(
        request_type=kind,
        name=name,
        response_time=(time.perf_counter() - start) * 1000,
        response_length=length,
        exception=error,
        context={},
    )


class SpeechUser(HttpUser):
    """REST speech, streamed per sentence."""

    wait_time = between(0.5, 2)
    weight = 3

    @task
    def speak(self) -> None:
        start = time.perf_counter()
        first: float | None = None
        error: Exception | None = None
        size = 0
        with self.client.post(
            "/v1/audio/speech",
            json={"input": SPEECH, "response_format": "pcm"},
            headers=HEADERS,
            stream=True,
            catch_response=True,
            name="POST /v1/audio/speech",
        ) as response:
            if response.status_code != 200:
                error = RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
                response.failure(str(error))
            else:
                for part in response.iter_content(4096):
                    if first is None and part:
                        first = time.perf_counter() - start
                    size += len(part)
                response.success()
        _record("rest speech", first, error)


class StreamUser(HttpUser):
    """WebSocket streaming: text a word at a time, audio back per sentence."""

    wait_time = between(0.5, 2)
    weight = 2

    @task
    def stream(self) -> None:
        url = self.host.replace("http", "ws", 1).rstrip("/") + "/v1/audio/speech/stream"
        start = time.perf_counter()
        first: float | None = None
        error: Exception | None = None
        size = 0
        try:
            with connect(url, additional_headers=HEADERS, max_size=None, open_timeout=30) as ws:
                for word in PARAGRAPH.split(" "):
                    ws.send(json.dumps({"type": "text", "text": word + " "}))
                ws.send(json.dumps({"type": "end"}))
                while True:
                    message = ws.recv(timeout=120)
                    if isinstance(message, bytes):
                        if first is None:
                            first = time.perf_counter() - start
                        size += len(message)
                        continue
                    body = json.loads(message)
                    if body["type"] == "done":
                        break
                    if body["type"] == "error":
                        raise RuntimeError(f"close {body['code']}: {body['detail']}")
        except Exception as e:  # every failure is counted, whatever its kind
            error = e
        _fire("WS /v1/audio/speech/stream", "WS", start, size, error)
        _record("websocket stream", first, error)


class ConversionUser(HttpUser):
    """A small document converted as a project, start to finish."""

    wait_time = between(5, 10)
    weight = 1

    @task
    def convert(self) -> None:
        start = time.perf_counter()
        first: float | None = None
        error: Exception | None = None
        try:
            project = self._json("POST", "/v1/projects", {"name": "load test"})
            pid = project["id"]
            self._json(
                "POST",
                f"/v1/projects/{pid}/documents",
                {"text": DOCUMENT},
                name="POST /v1/projects/{id}/documents",
            )
            conversion = self._json(
                "POST",
                f"/v1/projects/{pid}/conversions",
                None,
                name="POST /v1/projects/{id}/conversions",
            )
            while time.perf_counter() - start < CONVERSION_CAP_S:
                status = self._json(
                    "GET",
                    f"/v1/conversions/{conversion['id']}",
                    None,
                    name="GET /v1/conversions/{id}",
                )
                if first is None and status["done"] > 0:
                    first = time.perf_counter() - start
                if status["state"] == "finished":
                    if status["failed"]:
                        raise RuntimeError(f"{status['failed']} segments failed")
                    break
                time.sleep(1)
            else:
                raise RuntimeError(f"not finished within {CONVERSION_CAP_S:.0f} s")
        except Exception as e:  # every failure is counted, whatever its kind
            error = e
        _fire("conversion (20 sentences)", "JOB", start, 0, error)
        _record("document conversion", first, error)

    def _json(self, method: str, path: str, body: Any, name: str | None = None) -> Any:
        response = self.client.request(method, path, json=body, headers=HEADERS, name=name)
        response.raise_for_status()
        return response.json()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@events.quitting.add_listener
def _print_summary(environment: Any, **_kwargs: Any) -> None:
    elapsed = time.perf_counter() - _STARTED
    print("\n| user type | requests | requests/s | first audio p50 s | p95 s | p99 s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for user in ("rest speech", "websocket stream", "document conversion"):
        requests, errors = _COUNTS.get(user, [0, 0])
        times = _FIRST_AUDIO.get(user, [])
        cells = [f"{_percentile(times, q):.2f}" for q in (0.5, 0.95, 0.99)] if times else ["-"] * 3
        print(
            f"| {user} | {requests} | {requests / elapsed:.2f} | {' | '.join(cells)} | {errors} |"
        )
