"""Live updates: the per-project hub, and the SSE stream a browser reads (a real HTTP server)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from api.event_payloads import SegmentEvent
from api.events import RESYNC, EventHub
from api.main import create_app
from audio.codecs import encode
from contract.messages import EventMessage, SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio, EncodedAudio


def event(project_id: int, n: int = 0) -> EventMessage:
    return EventMessage(type="segment", project_id=project_id, data={"n": n})


def test_hub_delivers_to_the_projects_subscribers_only() -> None:
    async def scenario() -> tuple[list[int], bool]:
        hub = EventHub()
        async with hub.subscribe(1) as mine, hub.subscribe(2) as other:
            # From another thread, as the broker's consumer thread does.
            threads = [
                threading.Thread(target=hub.publish_threadsafe, args=(event(1, n),))
                for n in range(3)
            ]
            for t in threads:
                t.start()
                t.join()
            got = [(await asyncio.wait_for(mine.get(), 1)).data["n"] for _ in range(3)]
            quiet = other.empty()
        assert hub.subscriber_count() == 0
        return got, quiet  # type: ignore[return-value]

    got, quiet = asyncio.run(scenario())
    assert sorted(got) == [0, 1, 2]
    assert quiet


def test_slow_subscriber_is_told_to_resync_instead_of_buffering_forever() -> None:
    async def scenario() -> list[EventMessage]:
        hub = EventHub(buffer=3)
        async with hub.subscribe(1) as q:
            for n in range(5):
                hub.dispatch(event(1, n))
            items = []
            while not q.empty():
                items.append(q.get_nowait())
            return items

    items = asyncio.run(scenario())
    assert RESYNC in items
    assert items[-1].data == {"n": 4}


class Voice:
    def __init__(self) -> None:
        self.gate = threading.Event()

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        self.gate.wait(10)  # hold synthesis until the test is listening
        return Audio(np.zeros(2205, dtype=np.int16) + 100, 22050)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        audio = self.synthesize(voice, text, params)
        data = encode(audio.samples, audio.sample_rate, fmt)
        return EncodedAudio(data, fmt, audio.sample_rate, len(audio.samples))

    def voices(self) -> list[str]:
        return ["joe"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Voice]]:
    voice = Voice()
    app = create_app(
        Settings(data_dir=tmp_path, outbox_poll_s=0.05, sse_heartbeat_s=0.2), synthesizer=voice
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        threading.Event().wait(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}", voice
    finally:
        voice.gate.set()
        srv.should_exit = True
        thread.join(15)


def read_events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) pairs; ``("ping", None)`` for keep-alive comments."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith(":"):
            yield "ping", None
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "message", ""


def test_event_stream_sends_a_snapshot_then_live_progress(server: tuple[str, Voice]) -> None:
    base, voice = server
    with httpx.Client(base_url=base, timeout=10) as http:
        project = http.post("/v1/projects", json={"name": "live"}).json()
        pid = project["id"]
        http.post(f"/v1/projects/{pid}/documents", json={"text": "One here. Two here."})
        assert http.get("/v1/projects/999/events").status_code == 404

        with http.stream("GET", f"/v1/projects/{pid}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response)
            name, snapshot = next(events)
            assert name == "snapshot"
            assert snapshot["id"] == pid and snapshot["counts"]["pending"] == 2

            assert http.post(f"/v1/projects/{pid}/conversions").status_code == 202
            seen: list[tuple[str, Any]] = []
            for name, data in events:
                if name == "ping":  # a keep-alive while synthesis is held: now let it run
                    voice.gate.set()
                    continue
                seen.append((name, data))
                if sum(n == "segment" for n, _ in seen) == 2:
                    break

    assert voice.gate.is_set(), "no keep-alive was sent while nothing happened"
    kinds = [n for n, _ in seen]
    assert kinds[0] == "conversion" and seen[0][1]["total"] == 2
    segment_events = [d for n, d in seen if n == "segment"]
    assert [d["status"] for d in segment_events] == ["done", "done"]
    final = max(segment_events, key=lambda d: d["conversion"]["done"])["conversion"]
    assert (final["done"], final["percent"], final["state"]) == (2, 100.0, "finished")
    # One progress schema: the events carry what GET /v1/conversions/{id} answers.
    for data in segment_events:
        SegmentEvent.model_validate(data)
    with httpx.Client(base_url=base, timeout=10) as http:
        rest = http.get(f"/v1/conversions/{final['id']}").json()
    assert rest == final
    assert set(seen[0][1]) == set(rest)  # the `conversion` event is a ConversionOut too


def test_event_payloads_are_documented_with_the_rest_progress_schema(
    server: tuple[str, Voice],
) -> None:
    base, _ = server
    schema = httpx.get(f"{base}/openapi.json").json()
    stream = schema["paths"]["/v1/projects/{project_id}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in stream["content"]
    components = schema["components"]["schemas"]
    conversion = components["SegmentEvent"]["properties"]["conversion"]
    refs = [c.get("$ref") for c in conversion.get("anyOf", [conversion])]
    assert "#/components/schemas/ConversionOut" in refs
