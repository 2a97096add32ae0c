"""Project control in the embedded mode (SQLite, in-process queue and workers, a stand-in voice):
pause, resume and cancel a conversion, delete a project or a document, rename, change the speed,
re-synthesize everything with the previous take kept."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from voicekit import GatedVoice

from api.models import Chapter, Document, OutboxMessage, Project, Segment
from api.runtime import Runtime
from contract.messages import EventMessage, ResultMessage, TaskMessage
from contract.settings import Settings
from worker.control import StoppedTasks

RATE = 22050
SENTENCES = [f"Sentence number {n} is here." for n in range(1, 9)]
BOOK = "# One\n\n" + " ".join(SENTENCES[:4]) + "\n\n# Two\n\n" + " ".join(SENTENCES[4:]) + "\n"


@pytest.fixture
def voice() -> GatedVoice:
    return GatedVoice()


@pytest.fixture
def client(tmp_path: Path, voice: GatedVoice) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, outbox_poll_s=0.05, embedded_workers=1)
    from api.main import create_app

    with TestClient(create_app(settings, synthesizer=voice)) as c:
        yield c


def wait(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return value


def runtime(client: TestClient) -> Runtime:
    result: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return result


def new_project(client: TestClient, text: str = BOOK) -> int:
    project = client.post("/v1/projects", json={"name": "Control"}).json()
    r = client.post(f"/v1/projects/{project['id']}/documents", json={"text": text})
    assert r.status_code == 201, r.text
    return int(project["id"])


def statuses(client: TestClient, project_id: int) -> dict[str, int]:
    counts: dict[str, int] = client.get(f"/v1/projects/{project_id}").json()["counts"]
    return counts


def test_pause_stops_new_tasks_and_resume_finishes_with_nothing_lost(
    client: TestClient, voice: GatedVoice
) -> None:
    pid = new_project(client)
    voice.gate.clear()
    conversion = client.post(f"/v1/projects/{pid}/conversions").json()
    wait(lambda: voice.entered, "the first sentence to be synthesized")

    paused = client.post(f"/v1/conversions/{conversion['id']}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["state"] == "paused"
    assert paused.json()["eta_s"] is None
    stop = runtime(client).stopped_tasks
    wait(lambda: stop.conversion_stopped(conversion["id"]), "the workers to hear of the pause")
    in_flight = len(voice.entered)
    voice.gate.set()
    # The sentence being synthesized keeps its audio; the rest wait, none failed.
    wait(lambda: statuses(client, pid)["done"] == in_flight, "the sentence in flight")
    # Every task that reached the queue before the pause comes back (skipped), unsynthesized.
    rt = runtime(client)
    relay = rt.relay
    assert relay is not None
    wait(
        lambda: rt.result_stats.applied + rt.result_stats.ignored == relay.published,
        "an answer for every published task",
    )
    counts = statuses(client, pid)
    assert len(voice.entered) == in_flight
    assert (counts["done"], counts["failed"], counts["queued"]) == (in_flight, 0, 0)
    assert counts["pending"] == counts["total"] - in_flight
    with runtime(client).session_factory() as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert client.get(f"/v1/projects/{pid}").json()["active_conversion"]["state"] == "paused"
    refused = client.post(f"/v1/projects/{pid}/conversions")
    assert refused.status_code == 409
    assert "paused" in refused.json()["detail"] and "resume" in refused.json()["detail"]

    # A one-sentence fix made while the book is paused is synthesized all the same.
    chapters = client.get(f"/v1/projects/{pid}").json()["chapters"]
    done_one = next(
        seg
        for c in chapters
        for b in client.get(f"/v1/chapters/{c['id']}").json()["blocks"]
        for seg in b["segments"]
        if seg["status"] == "done"
    )
    fix = client.post(
        f"/v1/segments/{done_one['id']}/resynthesize", json={"text": "A fixed sentence."}
    ).json()
    wait(
        lambda: (
            client.get(f"/v1/conversions/{fix['conversion']['id']}").json()["state"] == "finished"
        ),
        "the fix made during the pause",
    )
    assert client.get(f"/v1/segments/{done_one['id']}").json()["status"] == "done"
    assert "A fixed sentence." in voice.entered

    resumed = client.post(f"/v1/conversions/{conversion['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "running"
    done = wait(
        lambda: (
            (c := client.get(f"/v1/conversions/{conversion['id']}").json())["state"] == "finished"
            and c
        ),
        "the resumed conversion to finish",
    )
    total = counts["total"]
    assert total == len(SENTENCES) + 2  # the two chapter headings are spoken too
    assert (done["done"], done["failed"], done["total"]) == (total, 0, total)
    # Every sentence (and the spoken heading of each chapter) synthesized exactly once.
    assert sorted(voice.entered) == sorted(set(voice.entered))
    assert statuses(client, pid)["done"] == statuses(client, pid)["total"]


def test_cancel_puts_unfinished_sentences_back_and_convert_starts_them_again(
    client: TestClient, voice: GatedVoice
) -> None:
    pid = new_project(client)
    voice.gate.clear()
    conversion = client.post(f"/v1/projects/{pid}/conversions").json()
    wait(lambda: voice.entered, "the first sentence to be synthesized")
    cancelled = client.post(f"/v1/conversions/{conversion['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    stop = runtime(client).stopped_tasks
    wait(lambda: stop.conversion_stopped(conversion["id"]), "the workers to hear of it")
    voice.gate.set()
    wait(lambda: statuses(client, pid)["queued"] == 0, "nothing left in progress")
    assert client.get(f"/v1/projects/{pid}").json()["active_conversion"] is None
    # Refusals say how it ended: cancelled, not "finished".
    for action in ("resume", "cancel", "pause"):
        refused = client.post(f"/v1/conversions/{conversion['id']}/{action}")
        assert refused.status_code == 409, action
        assert f"was cancelled; there is nothing to {action}" in refused.json()["detail"]
    again = client.post(f"/v1/projects/{pid}/conversions").json()
    wait(
        lambda: client.get(f"/v1/conversions/{again['id']}").json()["state"] == "finished",
        "the new conversion",
    )
    counts = statuses(client, pid)
    assert counts["done"] == counts["total"] and counts["failed"] == 0


def test_delete_project_removes_its_documents_audio_rows_and_queued_tasks(
    client: TestClient, voice: GatedVoice
) -> None:
    keep = new_project(client, "Another book. It stays.")
    pid = new_project(client)
    voice.gate.clear()
    client.post(f"/v1/projects/{pid}/conversions")
    wait(lambda: voice.entered, "a sentence in flight")
    r = client.delete(f"/v1/projects/{pid}")
    assert r.status_code == 204
    voice.gate.set()
    assert client.get(f"/v1/projects/{pid}").status_code == 404
    assert client.delete(f"/v1/projects/{pid}").status_code == 404
    with runtime(client).session_factory() as session:
        for model in (Segment, Chapter, Document):
            left = session.scalar(
                select(func.count()).select_from(model).where(model.project_id == pid)
            )
            assert left == 0, model.__name__
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert session.get(Project, keep) is not None
    listed = [p["id"] for p in client.get("/v1/projects").json()["items"]]
    assert listed == [keep]


def test_deleting_a_document_removes_its_chapters_and_lets_the_conversion_finish(
    client: TestClient, voice: GatedVoice
) -> None:
    pid = new_project(client, "Kept text. It is fine.")
    extra = client.post(f"/v1/projects/{pid}/documents", json={"text": BOOK}).json()
    detail = client.get(f"/v1/projects/{pid}").json()
    assert [d["id"] for d in detail["documents"]][-1] == extra["id"]
    voice.gate.clear()
    conversion = client.post(f"/v1/projects/{pid}/conversions").json()
    wait(lambda: voice.entered, "a sentence in flight")
    r = client.delete(f"/v1/projects/{pid}/documents/{extra['id']}")
    assert r.status_code == 204, r.text
    voice.gate.set()
    finished = wait(
        lambda: (
            (c := client.get(f"/v1/conversions/{conversion['id']}").json())["state"] == "finished"
            and c
        ),
        "the conversion to finish without the deleted document",
    )
    assert finished["failed"] == 0
    detail = client.get(f"/v1/projects/{pid}").json()
    # A chapter without a heading is titled by its first sentence.
    assert [c["title"] for c in detail["chapters"]] == ["Kept text."]
    assert detail["counts"]["total"] == 2 and detail["counts"]["done"] == 2
    assert client.delete(f"/v1/projects/{pid}/documents/{extra['id']}").status_code == 404


def test_rename_and_speed_and_resynthesize_everything_keeps_the_previous_take(
    client: TestClient, voice: GatedVoice
) -> None:
    pid = new_project(client, "One sentence only.")
    first = client.post(f"/v1/projects/{pid}/conversions").json()
    wait(lambda: client.get(f"/v1/conversions/{first['id']}").json()["state"] == "finished", "1")
    r = client.patch(f"/v1/projects/{pid}", json={"name": "  Renamed  ", "speed": 1.5})
    assert r.status_code == 200 and (r.json()["name"], r.json()["speed"]) == ("Renamed", 1.5)
    bad = client.patch(f"/v1/projects/{pid}", json={"speed": 9})
    assert bad.status_code == 422
    nothing = client.post(f"/v1/projects/{pid}/conversions").json()
    assert nothing["total"] == 0  # only new sentences: there are none
    again = client.post(f"/v1/projects/{pid}/conversions", json={"everything": True}).json()
    assert again["total"] == 1
    wait(lambda: client.get(f"/v1/conversions/{again['id']}").json()["state"] == "finished", "2")
    with runtime(client).session_factory() as session:
        segment = session.scalars(select(Segment).where(Segment.project_id == pid)).one()
        assert segment.previous_audio is not None and segment.audio is not None
        assert segment.previous_duration_ms == segment.duration_ms


def test_stopped_tasks_follow_the_conversion_events() -> None:
    stopped = StoppedTasks()

    def task(conversion_id: int | None, project: int = 7) -> TaskMessage:
        return TaskMessage(
            task_id="t",
            project_id=project,
            segment_id=1,
            voice="joe",
            text="Hi.",
            conversion_id=conversion_id,
        )

    def event(ident: int, state: str, type_: str = "conversion") -> EventMessage:
        data: dict[str, object] = {"id": ident, "kind": "project", "state": state}
        if type_ == "segment":
            data = {"segment_id": 1, "conversion": data}
        return EventMessage(type=type_, project_id=7, data=data)

    stopped.observe(event(3, "paused"))
    assert stopped.drops(task(3))
    # A one-sentence fix of the same project made meanwhile goes on; so do older tasks.
    assert not stopped.drops(task(4)) and not stopped.drops(task(None))
    # A result of the conversion, running again, lifts the stop (a missed "resumed").
    stopped.observe(event(3, "running", "segment"))
    assert not stopped.drops(task(3))
    stopped.observe(event(3, "cancelled"))
    assert stopped.drops(task(3))
    stopped.observe(EventMessage(type="deleted", project_id=8, data={"project_id": 8}))
    assert stopped.drops(task(None, project=8)) and stopped.drops(task(5, project=8))
    # SQLite reuses the ids of deleted rows: a conversion running under the id of a deleted
    # project (or of a cancelled conversion) is not stopped.
    reused = EventMessage(
        type="conversion", project_id=8, data={"id": 3, "kind": "project", "state": "running"}
    )
    stopped.observe(reused)
    assert not stopped.drops(task(3, project=8))


def test_a_skipped_result_round_trips_the_wire() -> None:
    result = ResultMessage(task_id="t", segment_id=1, project_id=2, status="skipped")
    wire = result.to_wire()
    assert ResultMessage.from_wire(wire.body, wire.headers) == result


def finish(client: TestClient, conversion_id: int) -> None:
    wait(
        lambda: client.get(f"/v1/conversions/{conversion_id}").json()["state"] == "finished",
        f"conversion {conversion_id}",
    )


def test_proofing_flags_and_previous_take_compare_and_pick(client: TestClient) -> None:
    compare_and_pick(client)


def test_the_previous_take_lives_in_the_object_store_too(tmp_path: Path, voice: GatedVoice) -> None:
    """With segment audio in the object store, the replaced take keeps its object (and the
    orphan sweep leaves it alone), so compare and pick work as with audio in rows."""
    from api.audio_store import sweep_orphans
    from api.main import create_app

    settings = Settings(
        data_dir=tmp_path, outbox_poll_s=0.05, embedded_workers=1, audio_store="objects"
    )
    with TestClient(create_app(settings, synthesizer=voice)) as c:
        sid = compare_and_pick(c)
        run = runtime(c)
        with run.session_factory() as session:
            seg = session.get(Segment, sid)
            assert seg is not None and seg.audio is None and seg.previous_audio is None
            keys = (seg.audio_key, seg.previous_audio_key)
        assert all(keys) and keys[0] != keys[1]
        assert run.audio_store is not None
        sweep_orphans(run.session_factory, run.audio_store, grace_s=-1)
        old = c.get(f"/v1/segments/{sid}/audio?take=previous&format=flac")
        assert old.status_code == 200 and old.content.startswith(b"fLaC")


def compare_and_pick(client: TestClient) -> int:
    """Flag, re-synthesize, listen to the previous take and pick it back; the segment's id."""
    pid = new_project(client, "The boat left early.")
    finish(client, client.post(f"/v1/projects/{pid}/conversions").json()["id"])
    chapter = client.get(f"/v1/projects/{pid}").json()["chapters"][0]
    seg = client.get(f"/v1/chapters/{chapter['id']}").json()["blocks"][0]["segments"][0]
    assert seg["needs_review"] is False and seg["previous_duration_ms"] is None
    assert client.get(f"/v1/segments/{seg['id']}/audio?take=previous").status_code == 409

    flagged = client.patch(f"/v1/segments/{seg['id']}", json={"needs_review": True})
    assert flagged.status_code == 200 and flagged.json()["needs_review"] is True

    fixed = client.post(
        f"/v1/segments/{seg['id']}/resynthesize",
        json={"text": "The little boat left the harbour very early."},
    ).json()
    finish(client, fixed["conversion"]["id"])
    after = client.get(f"/v1/segments/{seg['id']}").json()
    assert after["previous_duration_ms"] == seg["duration_ms"]
    assert after["duration_ms"] > seg["duration_ms"]
    old = client.get(f"/v1/segments/{seg['id']}/audio?take=previous&format=flac")
    assert old.status_code == 200 and old.content.startswith(b"fLaC")

    picked = client.post(f"/v1/segments/{seg['id']}/takes/swap")
    assert picked.status_code == 200, picked.text
    back = picked.json()
    assert (back["text"], back["duration_ms"]) == ("The boat left early.", seg["duration_ms"])
    assert back["previous_duration_ms"] == after["duration_ms"]
    assert back["needs_review"] is True
    assert client.get(f"/v1/projects/{pid}").json()["counts"]["done"] == 1
    return int(seg["id"])
