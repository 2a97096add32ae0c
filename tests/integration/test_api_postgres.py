"""The API's database layer on the real Postgres: migrations, and the outbox relayed to the real
RabbitMQ, including after a crash between the commit and the publish."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.db import check_schema, make_engine, make_session_factory
from api.models import Base, OutboxMessage, Project
from api.outbox import OutboxRelay
from contract.messages import TaskMessage
from contract.settings import Settings
from messaging.publisher import Publisher
from text_processing.structure import split_document

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(pg_database_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


def project_with_sentences(factory: sessionmaker[Session], n: int) -> int:
    text = " ".join(f"Sentence number {i} is here." for i in range(n))
    with factory.begin() as session:
        project = crud.create_project(session, name="outbox", voice="joe")
        crud.add_document(
            session,
            project=project,
            text=text,
            fmt="text",
            filename=None,
            chapters=split_document(text, fmt="text"),
        )
        return project.id


def queued_tasks(channel: Any, queue: str) -> list[TaskMessage]:
    tasks: list[TaskMessage] = []
    while True:
        method, _props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return tasks
        tasks.append(TaskMessage.model_validate_json(body))


def outbox_rows(factory: sessionmaker[Session], project_id: int) -> int:
    with factory() as session:
        return (
            session.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.body.contains(f'"project_id":{project_id},')
                )
            )
            or 0
        )


def test_migrations_match_the_models_on_postgres(engine: Engine) -> None:
    check_schema(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_commit_then_crash_before_publish_still_delivers_the_tasks(
    pipeline_settings: Settings,
    factory: sessionmaker[Session],
    amqp_channel: Any,
    wait_for: Callable[..., object],
) -> None:
    project_id = project_with_sentences(factory, 3)
    # Another process starts the conversion, commits, and dies before any relay publishes.
    script = textwrap.dedent(
        f"""
        import os
        from api import crud
        from api.db import make_engine, make_session_factory
        from api.models import Project
        factory = make_session_factory(make_engine({pipeline_settings.database_url!r}))
        with factory.begin() as session:
            crud.start_conversion(session, project=session.get(Project, {project_id}))
        os._exit(9)  # the crash: after the commit, before the publish
        """
    )
    crashed = subprocess.run([sys.executable, "-c", script], cwd=REPO, timeout=60)
    assert crashed.returncode == 9
    assert outbox_rows(factory, project_id) == 3

    publisher = Publisher(pipeline_settings, name="test-relay")
    publisher.connect()  # declares the queues
    assert queued_tasks(amqp_channel, publisher.topology.tasks) == []
    relay = OutboxRelay(factory, publisher, poll_s=0.1)
    relay.start()
    try:
        wait_for(lambda: outbox_rows(factory, project_id) == 0, timeout=20, what="the relay")
    finally:
        relay.stop()
        relay.join(10)
        publisher.close()

    tasks = queued_tasks(amqp_channel, publisher.topology.tasks)
    # Tasks carry each sentence's spoken form.
    assert [t.text for t in tasks] == [
        f"Sentence number {n} is here." for n in ("zero", "one", "two")
    ]
    assert {t.project_id for t in tasks} == {project_id}


def test_two_relays_share_the_outbox_without_publishing_twice(
    pipeline_settings: Settings,
    factory: sessionmaker[Session],
    amqp_channel: Any,
    wait_for: Callable[..., object],
) -> None:
    project_id = project_with_sentences(factory, 60)
    with factory.begin() as session:
        project = session.get(Project, project_id)
        assert project is not None
        crud.start_conversion(session, project=project)
    publishers = [Publisher(pipeline_settings, name=f"test-relay-{i}") for i in range(2)]
    # Small batches, so both replicas find work while the other holds its rows locked.
    relays = [OutboxRelay(factory, p, poll_s=0.05, batch_size=5) for p in publishers]
    go = threading.Barrier(2)

    def run(relay: OutboxRelay) -> None:
        go.wait()
        while relay.relay_once():
            pass

    threads = [threading.Thread(target=run, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for p in publishers:
        p.close()

    assert outbox_rows(factory, project_id) == 0
    assert sum(r.published for r in relays) == 60
    tasks = queued_tasks(amqp_channel, publishers[0].topology.tasks)
    assert len(tasks) == 60
    assert len({t.task_id for t in tasks}) == 60
