"""End to end in the distributed mode with the real voice: the API on Postgres and RabbitMQ, two
worker processes, and TorchServe serving model-store/joe.mar."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pika
import pytest
from sqlalchemy import select

from api.models import Segment, SegmentStatus
from audio import codecs as audio
from contract import limits
from contract.settings import Settings
from messaging.topology import topology_for

pytestmark = pytest.mark.integration

TIMEOUT = 120.0
BOOK = """# The Beginning

It was a quiet morning in the harbour town. The boats rocked gently.

Nobody expected the letter to arrive.

# The Letter

The envelope was yellow and very old. It smelled of salt.

### A Smaller Heading

Inside was a single line of text.

# The End

They never found out who sent it.
"""


@pytest.fixture
def pipeline(
    pipeline_settings: Settings,
    torchserve: Any,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
) -> Iterator[Any]:
    api = start_api(pipeline_settings)
    for _ in range(2):
        start_worker(
            pipeline_settings,
            VOXMILL_TORCHSERVE_URL=torchserve.inference_url,
            VOXMILL_TORCHSERVE_KEY_FILE=str(torchserve.key_file),
            VOXMILL_TORCHSERVE_TIMEOUT_S="60",
        )
    yield api


def sse_events(url: str, stop: Callable[[dict[str, Any]], bool], into: list[Any]) -> None:
    """Read an event stream into ``into`` until ``stop(event)`` is true."""
    with (
        httpx.Client(timeout=httpx.Timeout(10, read=TIMEOUT)) as http,
        http.stream("GET", url) as response,
    ):
        name, data = "message", ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "" and data:
                event = {"event": name, "data": json.loads(data)}
                into.append(event)
                if stop(event):
                    return
                name, data = "message", ""


def segment_events(count: int, into: list[Any]) -> Callable[[dict[str, Any]], bool]:
    """Stop after ``count`` segment events (they may arrive out of order, so not at the first
    one that says the conversion finished)."""
    return lambda _event: sum(e["event"] == "segment" for e in into) >= count


def wait_finished(http: httpx.Client, conversion_id: int, wait_for: Any) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/v1/conversions/{conversion_id}").json()
        return body if body["state"] == "finished" else None

    return dict(wait_for(check, timeout=TIMEOUT, what="the conversion"))


def test_multi_chapter_markdown_converts_end_to_end(
    pipeline: Any, wait_for: Callable[..., Any]
) -> None:
    api = pipeline
    with httpx.Client(base_url=api.url, timeout=30) as http:
        project = http.post("/v1/projects", json={"name": "Harbour"}).json()
        files = {"file": ("harbour.md", BOOK.encode(), "text/markdown")}
        doc = http.post(f"/v1/projects/{project['id']}/documents", files=files).json()
        assert [c["title"] for c in doc["chapters"]] == ["The Beginning", "The Letter", "The End"]

        events: list[Any] = []
        url = f"{api.url}/v1/projects/{project['id']}/events"
        listener = threading.Thread(
            target=sse_events, args=(url, segment_events(doc["segments"], events), events)
        )
        listener.start()
        wait_for(lambda: events, what="the snapshot")
        conversion = http.post(f"/v1/projects/{project['id']}/conversions").json()
        progress = wait_finished(http, conversion["id"], wait_for)
        listener.join(TIMEOUT)

        total = doc["segments"]
        assert (progress["total"], progress["done"], progress["failed"]) == (total, total, 0)
        shown = http.get(f"/v1/projects/{project['id']}").json()
        assert shown["counts"]["done"] == total
        # Each segment's word times came back with its audio (worker -> RabbitMQ -> Postgres).
        timed = http.get(f"/v1/projects/{project['id']}/timings").json()
        assert len(timed["sentences"]) == total
        assert len(timed["words"]) >= total
        chapter_lengths = []
        for chapter in shown["chapters"]:
            detail = http.get(f"/v1/chapters/{chapter['id']}").json()
            assert {s["status"] for b in detail["blocks"] for s in b["segments"]} == {"done"}
            pieces = [
                [
                    audio.decode(http.get(f"/v1/segments/{s['id']}/audio").content)[0]
                    for s in b["segments"]
                ]
                for b in detail["blocks"]
            ]
            assert all(len(p) > 0.3 * 22050 for b in pieces for p in b)  # real speech
            samples, rate = audio.decode(http.get(f"/v1/chapters/{chapter['id']}/audio").content)
            expected = audio.joined_length(
                [[len(p) for p in b] for b in pieces],
                rate,
                sentence_pause_ms=limits.SENTENCE_PAUSE_MS,
                paragraph_pause_ms=limits.PARAGRAPH_PAUSE_MS,
            )
            assert len(samples) == expected  # its segments plus 250/700 ms pauses
            assert np.array_equal(samples[: len(pieces[0][0])], pieces[0][0])
            chapter_lengths.append(len(samples))
        whole, rate = audio.decode(http.get(f"/v1/projects/{project['id']}/audio").content)
        assert len(whole) == sum(chapter_lengths) + 2 * audio.pause_samples(1500, rate)

    assert events[0]["event"] == "snapshot" and events[0]["data"]["counts"]["pending"] == total
    statuses = [e["data"]["status"] for e in events if e["event"] == "segment"]
    assert statuses == ["done"] * total
    assert max(e["data"]["conversion"]["done"] for e in events if e["event"] == "segment") == total
    with api.runtime.session_factory() as session:
        rates = set(
            session.scalars(select(Segment.sample_rate).where(Segment.project_id == project["id"]))
        )
    assert rates == {22050}


def test_text_the_voice_refuses_fails_alone(
    pipeline: Any, pipeline_settings: Settings, wait_for: Callable[..., Any]
) -> None:
    api = pipeline
    # Fifteen-digit numbers are read in full: 24 of them say far more than the voice takes per
    # request. A plain sentence like that is cut until each piece fits; inside an SSML element
    # it cannot be cut (the element stays whole), so it stays one segment and TorchServe refuses
    # that task. The "– — …" paragraph has nothing to say: it becomes a pause and succeeds.
    numbers = '<prosody rate="100%">' + " ".join(["999999999999999"] * 24) + "</prosody>"
    text = f"The sentence before is fine.\n\n{numbers}\n\n– — …\n\nThe sentence after is fine too."
    with httpx.Client(base_url=api.url, timeout=30) as http:
        project = http.post("/v1/projects", json={"name": "poison"}).json()
        http.post(f"/v1/projects/{project['id']}/documents", json={"text": text})
        conversion = http.post(f"/v1/projects/{project['id']}/conversions").json()
        progress = wait_finished(http, conversion["id"], wait_for)

    assert (progress["done"], progress["failed"]) == (3, 1)
    with api.runtime.session_factory() as session:
        segments = list(
            session.scalars(
                select(Segment).where(Segment.project_id == project["id"]).order_by(Segment.id)
            )
        )
    assert [s.status for s in segments] == [
        SegmentStatus.DONE,
        SegmentStatus.FAILED,
        SegmentStatus.DONE,
        SegmentStatus.DONE,
    ]
    assert "the limit is 2000" in (segments[1].last_error or "")
    assert segments[2].duration_ms == 500  # the unspeakable paragraph: a pause
    assert segments[1].attempts == 1
    # The refused task is answered by its failed result, so nothing is left in the dead-letter
    # queue (whose consumer would otherwise end the segment again).
    dead_queue = topology_for(pipeline_settings).tasks_dead
    connection = pika.BlockingConnection(pika.URLParameters(pipeline_settings.broker_url))
    try:
        channel = connection.channel()
        assert channel.queue_declare(dead_queue, passive=True).method.message_count == 0
    finally:
        connection.close()
