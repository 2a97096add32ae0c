"""The transactional outbox (SQLite + the in-process broker): a conversion's segment statuses and
tasks commit together; the relay publishes committed rows and deletes them only after the
broker took them, also when they were left behind by a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.db import make_engine, make_session_factory, migrate
from api.models import OutboxMessage, Project, Segment, SegmentStatus
from api.outbox import OutboxRelay
from contract.messages import TaskMessage
from contract.settings import Settings
from messaging.memory import MemoryBroker, MemoryPublisher
from messaging.types import PublishError, Topology
from text_processing.structure import split_document

TEXT = "First sentence here. Second one here.\n\nA new paragraph."


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'test.db'}"
    migrate(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker(Settings(queue_prefix="unit"))


def project_with_text(session: Session, text: str = TEXT) -> Project:
    project = crud.create_project(session, name="p", voice="joe", speed=1.5)
    crud.add_document(
        session,
        project=project,
        text=text,
        fmt="text",
        filename="a.txt",
        chapters=split_document(text, fmt="text"),
    )
    return project


def outbox_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count(OutboxMessage.id))) or 0


def drain(broker: MemoryBroker, queue: str) -> list[TaskMessage]:
    tasks = []
    while (delivery := broker.get(queue, timeout=0)) is not None:
        tasks.append(TaskMessage.model_validate_json(delivery.body))
    return tasks


def test_starting_a_conversion_queues_segments_and_tasks_together(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        project = project_with_text(session)
        conversion = crud.start_conversion(session, project=project)

    with factory() as session:
        segments = session.scalars(select(Segment).order_by(Segment.id)).all()
        rows = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    tasks = [TaskMessage.model_validate_json(r.body) for r in rows]
    assert conversion.total == 3
    assert [s.status for s in segments] == [SegmentStatus.QUEUED] * 3
    assert [t.segment_id for t in tasks] == [s.id for s in segments]
    assert [t.task_id for t in tasks] == [s.task_id for s in segments]
    assert [r.message_id for r in rows] == [s.task_id for s in segments]
    assert tasks[0].text == "First sentence here."
    assert tasks[0].params.speed == 1.5 and tasks[0].voice == "joe" and tasks[0].attempt == 1


def test_a_failed_transaction_leaves_neither_statuses_nor_tasks(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        project_id = project_with_text(session).id

    with pytest.raises(RuntimeError), factory.begin() as session:
        project = session.get(Project, project_id)
        assert project is not None
        crud.start_conversion(session, project=project)
        raise RuntimeError("crash before commit")

    assert outbox_count(factory) == 0
    with factory() as session:
        statuses = set(session.scalars(select(Segment.status)))
    assert statuses == {SegmentStatus.PENDING}


def test_rows_left_by_a_crash_are_published_when_a_relay_starts(
    factory: sessionmaker[Session], broker: MemoryBroker
) -> None:
    # Committed, never published: the process "died" before its relay ran.
    with factory.begin() as session:
        crud.start_conversion(session, project=project_with_text(session))
    topology = broker.topology
    assert broker.depth(topology.tasks) == 0

    relay = OutboxRelay(factory, MemoryPublisher(broker), poll_s=0.05)
    relay.start()
    try:
        assert broker.wait_idle(topology.results, 1)  # nothing else involved
        delivered: list[TaskMessage] = []
        while len(delivered) < 3:
            delivery = broker.get(topology.tasks, timeout=5)
            assert delivery is not None, "the relay did not publish the committed tasks"
            delivered.append(TaskMessage.model_validate_json(delivery.body))
    finally:
        relay.stop()
        relay.join(5)
    assert [t.text for t in delivered] == [
        "First sentence here.",
        "Second one here.",
        "A new paragraph.",
    ]
    assert outbox_count(factory) == 0
    assert relay.published == 3


class FlakyPublisher:
    """Confirms ``ok`` messages, then refuses the rest."""

    def __init__(self, ok: int) -> None:
        self.topology = Topology("unit")
        self.ok = ok
        self.sent: list[str | None] = []

    def publish(
        self,
        routing_key: str,
        body: bytes,
        *,
        exchange: str = "",
        mandatory: bool = True,
        message_id: str | None = None,
    ) -> None:
        if len(self.sent) >= self.ok:
            raise PublishError("broker unreachable")
        self.sent.append(message_id)


def test_rows_stay_until_the_broker_confirms_them(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        crud.start_conversion(session, project=project_with_text(session))
    publisher = FlakyPublisher(ok=1)
    relay = OutboxRelay(factory, publisher)  # type: ignore[arg-type]

    with pytest.raises(PublishError):
        relay.relay_once()
    assert outbox_count(factory) == 2  # the confirmed one is gone, the others wait

    publisher.ok = 10
    assert relay.relay_once() == 2
    assert outbox_count(factory) == 0
    assert len(set(publisher.sent)) == 3


def test_conversion_requeues_only_what_is_not_done(
    factory: sessionmaker[Session], broker: MemoryBroker
) -> None:
    with factory.begin() as session:
        project = project_with_text(session)
        first = crud.start_conversion(session, project=project)
        with pytest.raises(crud.ConflictError, match="still running"):
            crud.start_conversion(session, project=project)
        segments = session.scalars(select(Segment).order_by(Segment.id)).all()
        segments[0].status = SegmentStatus.DONE
        segments[1].status = SegmentStatus.FAILED
        session.query(OutboxMessage).delete()
        first.finished_at = first.started_at
        second = crud.start_conversion(session, project=project)
        tasks = [
            TaskMessage.model_validate_json(b)
            for b in session.scalars(select(OutboxMessage.body).order_by(OutboxMessage.id))
        ]

    assert second.total == 1
    assert [t.segment_id for t in tasks] == [segments[1].id]
    assert tasks[0].attempt == 2


def test_force_requeues_segments_of_a_running_conversion(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        project = project_with_text(session)
        first = crud.start_conversion(session, project=project)
        old_ids = list(session.scalars(select(Segment.task_id).order_by(Segment.id)))
        second = crud.start_conversion(session, project=project, force=True)
        new_ids = list(session.scalars(select(Segment.task_id).order_by(Segment.id)))

    assert first.finished_at is not None  # superseded
    assert second.total == 3
    assert not set(old_ids) & set(new_ids)


def test_tasks_lost_with_an_in_memory_queue_are_requeued_with_their_ids(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        crud.start_conversion(session, project=project_with_text(session))
        task_ids = set(session.scalars(select(Segment.task_id)))
        session.query(OutboxMessage).delete()  # published to a queue that died with the process

    with factory.begin() as session:
        assert crud.requeue_unpublished(session) == 3
    with factory.begin() as session:
        assert crud.requeue_unpublished(session) == 0  # rows already waiting are not doubled
        again = set(session.scalars(select(OutboxMessage.message_id)))
    assert again == task_ids
