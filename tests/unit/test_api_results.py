"""Storing results idempotently (SQLite): duplicates, stale attempts and bad audio change nothing
twice, and progress is counted once."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.db import make_engine, make_session_factory, migrate
from api.event_payloads import SegmentEvent
from api.models import Conversion, OutboxMessage, Segment, SegmentStatus, utcnow
from api.results import AppliedResult, apply_result, make_result_handler
from api.schemas import ConversionOut
from contract.messages import ResultMessage, TaskMessage
from messaging.types import Delivery, Outcome
from text_processing.structure import split_document

RATE = 22050


def flac(samples: int = 2205) -> bytes:
    buffer = io.BytesIO()
    tone = (8000 * np.sin(np.arange(samples) / 7)).astype(np.int16)
    sf.write(buffer, tone, RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'test.db'}"
    migrate(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def converting(factory: sessionmaker[Session], text: str) -> tuple[int, list[TaskMessage]]:
    """A project with ``text`` whose conversion has started; its conversion id and tasks."""
    with factory.begin() as session:
        project = crud.create_project(session, name="p", voice="joe")
        chapters = split_document(text, fmt="text")
        crud.add_document(
            session, project=project, text=text, fmt="text", filename=None, chapters=chapters
        )
        conversion = crud.start_conversion(session, project=project)
        tasks = [
            TaskMessage.from_wire(row.body.encode())
            for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]
        return conversion.id, tasks


def done(task: TaskMessage, samples: int = 2205) -> ResultMessage:
    return ResultMessage(
        task_id=task.task_id,
        segment_id=task.segment_id,
        project_id=task.project_id,
        status="done",
        audio=flac(samples),
        sample_rate=RATE,
        num_samples=samples,
        worker="w1",
    )


def counters(factory: sessionmaker[Session], conversion_id: int) -> tuple[int, int, int, bool]:
    with factory() as session:
        c = session.get(Conversion, conversion_id)
        assert c is not None
        return c.total, c.done, c.failed, c.finished_at is not None


def test_a_result_is_stored_once_and_counted_once(factory: sessionmaker[Session]) -> None:
    conversion_id, (task, other) = converting(factory, "One sentence here. Another one here.")
    result = done(task)

    with factory.begin() as session:
        first = apply_result(session, result)
    with factory.begin() as session:
        again = apply_result(session, result)

    assert first is not None and first.status is SegmentStatus.DONE
    assert (first.total, first.done, first.failed) == (2, 1, 0)
    assert again is None
    assert counters(factory, conversion_id) == (2, 1, 0, False)
    with factory() as session:
        segment = session.get(Segment, task.segment_id)
        assert segment is not None
        assert segment.status is SegmentStatus.DONE
        assert segment.num_samples == 2205 and segment.sample_rate == RATE
        assert segment.duration_ms == 100
        assert segment.audio == result.audio, "stored as the worker sent it"
        assert session.get(Segment, other.segment_id).status is SegmentStatus.QUEUED  # type: ignore[union-attr]


def test_last_result_finishes_the_conversion(factory: sessionmaker[Session]) -> None:
    conversion_id, tasks = converting(factory, "One sentence here. Another one here.")
    failed = ResultMessage(
        task_id=tasks[1].task_id,
        segment_id=tasks[1].segment_id,
        project_id=tasks[1].project_id,
        status="failed",
        error="the voice server refused the text",
    )
    with factory.begin() as session:
        apply_result(session, done(tasks[0]))
    with factory.begin() as session:
        applied = apply_result(session, failed)

    assert applied is not None and applied.finished_at is not None
    assert counters(factory, conversion_id) == (2, 1, 1, True)
    event = applied.event()
    assert event.type == "segment"
    payload = SegmentEvent.model_validate(event.data)
    assert payload.status is SegmentStatus.FAILED
    assert payload.error == "the voice server refused the text"
    # The progress inside the event is the REST API's ConversionOut, field for field.
    assert payload.conversion is not None
    with factory() as session:
        conversion = session.get(Conversion, conversion_id)
        assert conversion is not None
        rest = ConversionOut.of(conversion, utcnow()).model_dump(mode="json")
    assert event.data["conversion"] == rest
    assert payload.conversion.state == "finished" and payload.conversion.kind == "project"


def test_result_of_an_older_attempt_is_ignored(factory: sessionmaker[Session]) -> None:
    conversion_id, (task,) = converting(factory, "Only one sentence.")
    with factory.begin() as session:
        apply_result(session, done(task))
    with factory.begin() as session:
        segment = session.get(Segment, task.segment_id)
        assert segment is not None
        resynth = crud.resynthesize(session, segment=segment, text="Corrected sentence.")
    assert segment.task_id != task.task_id

    with factory.begin() as session:
        stale = apply_result(session, done(task, samples=999))

    assert stale is None
    with factory() as session:
        segment = session.get(Segment, task.segment_id)
        assert segment is not None
        assert segment.status is SegmentStatus.QUEUED
        assert segment.text == "Corrected sentence."
        assert segment.attempts == 2
    assert counters(factory, resynth.id) == (1, 0, 0, False)
    assert counters(factory, conversion_id) == (1, 1, 0, True)


def test_unusable_audio_fails_the_segment_with_the_reason(factory: sessionmaker[Session]) -> None:
    _, (task,) = converting(factory, "Only one sentence.")
    bogus = done(task).model_copy(update={"audio": b"RIFF...."})

    with factory.begin() as session:
        applied = apply_result(session, bogus)

    assert applied is not None and applied.status is SegmentStatus.FAILED
    assert applied.error == "the worker sent audio that is not FLAC"


def test_duplicates_racing_on_threads_apply_once(factory: sessionmaker[Session]) -> None:
    conversion_id, (task,) = converting(factory, "Only one sentence.")
    applied: list[AppliedResult] = []
    handler = make_result_handler(factory, applied.append)
    wire = done(task).to_wire()
    outcomes: list[Outcome] = []
    delivery = Delivery(body=wire.body, headers=wire.headers)
    threads = [
        threading.Thread(target=lambda: outcomes.append(handler(delivery))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert outcomes == [Outcome.ACK] * 8
    assert len(applied) == 1
    assert counters(factory, conversion_id) == (1, 1, 0, True)


def test_handler_rejects_invalid_bodies_and_acks_unknown_segments(
    factory: sessionmaker[Session],
) -> None:
    applied: list[AppliedResult] = []
    handler = make_result_handler(factory, applied.append)
    unknown = ResultMessage(
        task_id="s999-a1-x", segment_id=999, project_id=1, status="failed", error="x"
    )

    assert handler(Delivery(body=b"{not json")) is Outcome.REJECT
    # A result of the old schema (base64 audio inside a JSON body, no metadata header).
    old = b'{"schema": "voxmill.result/1", "task_id": "t", "status": "done", "audio": "ZkxhQw=="}'
    assert handler(Delivery(body=old)) is Outcome.REJECT
    wire = unknown.to_wire()
    assert handler(Delivery(body=wire.body, headers=wire.headers)) is Outcome.ACK
    assert applied == []
