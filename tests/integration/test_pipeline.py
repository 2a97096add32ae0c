"""The conversion pipeline in the distributed mode: the API (Postgres, RabbitMQ) and real worker
processes, against a stub voice server whose timing the tests control. Crashes and duplicates
must not lose a segment, store it twice or count it twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import undefer

from api.models import Conversion, Segment, SegmentStatus
from contract.messages import ResultMessage, TaskMessage
from contract.settings import Settings
from messaging.publisher import Publisher

pytestmark = pytest.mark.integration

TIMEOUT = 60.0


def sentences(n: int) -> str:
    return " ".join(f"This is sentence number {i} of the test." for i in range(n))


def new_conversion(http: httpx.Client, text: str, *, start: bool = True) -> dict[str, Any]:
    project = http.post("/v1/projects", json={"name": "pipeline"}).json()
    r = http.post(f"/v1/projects/{project['id']}/documents", json={"text": text})
    assert r.status_code == 201, r.text
    if not start:
        return {"project_id": project["id"]}
    r = http.post(f"/v1/projects/{project['id']}/conversions")
    assert r.status_code == 202, r.text
    return dict(r.json())


def finished(http: httpx.Client, conversion_id: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        body: dict[str, Any] = http.get(f"/v1/conversions/{conversion_id}").json()
        return body if body["state"] == "finished" else None

    return check


def segments_of(api: Any, project_id: int) -> list[Segment]:
    with api.runtime.session_factory() as session:
        query = (
            select(Segment)
            .where(Segment.project_id == project_id)
            .order_by(Segment.id)
            .options(undefer(Segment.audio))
        )
        return list(session.scalars(query))


def test_kill_9_of_a_worker_mid_conversion_loses_nothing(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.3
    api = start_api(pipeline_settings)
    first = start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = new_conversion(http, sentences(12))
        # The worker holds tasks (prefetch 2) and is inside a synthesis call when it dies.
        wait_for(lambda: stub_torchserve.count() >= 3, timeout=TIMEOUT, what="work in flight")
        first.kill()
        assert api.runtime.result_stats.applied < 12
        start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)

        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")

    assert (progress["total"], progress["done"], progress["failed"]) == (12, 12, 0)
    segments = segments_of(api, conversion["project_id"])
    assert [s.status for s in segments] == [SegmentStatus.DONE] * 12
    # The stub voice gives 80 samples per character of what it was given: the spoken form.
    assert all(s.audio and s.num_samples == 80 * len(s.spoken_text or "") for s in segments)
    assert api.runtime.result_stats.applied == 12  # one stored result per segment
    assert stub_torchserve.count() > 12  # the killed worker's unacked tasks were redone


def test_the_same_task_and_the_same_result_twice_count_once(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    api = start_api(pipeline_settings)
    stats = api.runtime.result_stats
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = new_conversion(http, sentences(2))
        first, second = segments_of(api, conversion["project_id"])
        # The task for the first segment is delivered twice (as after a lost publisher confirm).
        duplicate = TaskMessage(
            task_id=first.task_id or "",
            project_id=first.project_id,
            segment_id=first.id,
            attempt=first.attempts,
            voice="joe",
            text=first.spoken_text or first.text,
        )
        with Publisher(pipeline_settings, name="test-duplicates") as publisher:
            publisher.publish_task(duplicate)
            start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
            wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the conversion")
            wait_for(lambda: stats.applied + stats.ignored == 3, timeout=TIMEOUT, what="3 results")
            assert stub_torchserve.requests.count(first.spoken_text) == 2
            assert (stats.applied, stats.ignored) == (2, 1)

            # And a result delivered twice more (as after a worker died before its ack).
            stored = segments_of(api, conversion["project_id"])[1]
            assert stored.audio is not None
            again = ResultMessage(
                task_id=second.task_id or "",
                segment_id=second.id,
                project_id=second.project_id,
                status="done",
                audio=stub_flac(stored.audio),
                sample_rate=22050,
                num_samples=1,
                worker="impostor",
            )
            publisher.publish_result(again)
            publisher.publish_result(again)
            wait_for(lambda: stats.ignored == 3, timeout=TIMEOUT, what="the duplicate results")

    after = segments_of(api, conversion["project_id"])
    assert after[1].audio == stored.audio and after[1].worker != "impostor"
    assert after[1].updated_at == stored.updated_at
    with api.runtime.session_factory() as session:
        counted = session.get(Conversion, conversion["id"])
        assert counted is not None
        assert (counted.total, counted.done, counted.failed) == (2, 2, 0)
    assert stats.applied == 2


def stub_flac(data: bytes) -> bytes:
    """Valid FLAC, different from ``data`` (so an overwrite would show)."""
    import io

    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    buffer = io.BytesIO()
    sf.write(buffer, samples[: len(samples) // 2], rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def test_a_rejected_segment_fails_with_its_error_and_its_neighbours_complete(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    api = start_api(pipeline_settings)
    start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    text = "The first sentence is fine. POISON is in this one. The last sentence is fine."
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = new_conversion(http, text)
        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")
        audio = http.get(f"/v1/projects/{conversion['project_id']}/audio")

    assert (progress["done"], progress["failed"]) == (2, 1)
    segments = segments_of(api, conversion["project_id"])
    assert [s.status for s in segments] == [
        SegmentStatus.DONE,
        SegmentStatus.FAILED,
        SegmentStatus.DONE,
    ]
    assert "the text has nothing to speak" in (segments[1].last_error or "")
    assert stub_torchserve.requests.count(segments[1].text) == 1  # permanent: not retried
    assert audio.status_code == 409 and "1 failed" in audio.json()["detail"]


def test_every_replica_forwards_live_events_to_its_own_browsers(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    import json
    import threading

    first = start_api(pipeline_settings)
    second = start_api(pipeline_settings)  # another replica: its own queue on the events exchange
    start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    with httpx.Client(base_url=first.url, timeout=10) as http:
        project = new_conversion(http, sentences(3), start=False)
        pid = project["project_id"]
        events: list[tuple[str, Any]] = []

        def listen() -> None:
            with (
                httpx.Client(base_url=second.url, timeout=httpx.Timeout(10, read=TIMEOUT)) as sse,
                sse.stream("GET", f"/v1/projects/{pid}/events") as response,
            ):
                name = ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data = json.loads(line[5:])
                        events.append((name, data))
                        if sum(n == "segment" for n, _ in events) == 3:
                            return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        wait_for(lambda: events, what="the snapshot from the second replica")
        conversion = http.post(f"/v1/projects/{pid}/conversions").json()
        wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the conversion")
        listener.join(TIMEOUT)

    assert [name for name, _ in events] == ["snapshot", "conversion", *["segment"] * 3], events
    # Results are stored on several threads of both replicas, so their events may arrive out of
    # order; the counters in them come from the stored totals and only grow.
    done_counts = sorted(data["conversion"]["done"] for name, data in events if name == "segment")
    assert done_counts == [1, 2, 3]
    # Both replicas consumed results from the one shared queue; each result was stored once.
    stats = [api.runtime.result_stats for api in (first, second)]
    assert sum(s.applied for s in stats) == 3


def test_pause_stops_the_workers_and_resume_finishes_with_nothing_lost_or_done_twice(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.3
    api = start_api(pipeline_settings)
    start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    relay = api.runtime.relay
    stats = api.runtime.result_stats
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = new_conversion(http, sentences(12))
        wait_for(lambda: relay.published >= 12, timeout=TIMEOUT, what="every task on the queue")
        wait_for(lambda: stub_torchserve.count() >= 1, timeout=TIMEOUT, what="work in flight")
        paused = http.post(f"/v1/conversions/{conversion['id']}/pause")
        assert paused.status_code == 200 and paused.json()["state"] == "paused", paused.text
        at_pause = stub_torchserve.count()
        # Every task that was on the queue comes back: stored (in flight at the pause) or
        # skipped by the worker without calling the voice.
        wait_for(
            lambda: stats.applied + stats.ignored >= relay.published,
            timeout=TIMEOUT,
            what="an answer for every task",
        )
        held = stub_torchserve.count()
        assert held - at_pause <= pipeline_settings.prefetch, (at_pause, held)
        counts = http.get(f"/v1/projects/{conversion['project_id']}").json()["counts"]
        assert counts["pending"] > 0 and counts["failed"] == 0 and counts["queued"] == 0, counts

        resumed = http.post(f"/v1/conversions/{conversion['id']}/resume")
        assert resumed.status_code == 200, resumed.text
        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")

    assert (progress["total"], progress["done"], progress["failed"]) == (12, 12, 0)
    segments = segments_of(api, conversion["project_id"])
    assert [s.status for s in segments] == [SegmentStatus.DONE] * 12
    assert stub_torchserve.count() == 12  # each sentence synthesized once
