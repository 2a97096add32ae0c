"""The interactive and bulk lanes (api/lanes.py): admission with a bounded wait, bulk yielding,
and a re-synthesized sentence queued apart from the books (the outbox relay, the worker)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.db import make_engine, make_session_factory, migrate
from api.lanes import (
    AdmittedSynthesizer,
    Lane,
    LaneGate,
    LaneMetrics,
    OverloadedError,
    QueueDepthCollector,
)
from api.models import Segment, SegmentStatus
from api.outbox import OutboxRelay
from contract.messages import TaskMessage
from contract.settings import Settings
from messaging.memory import MemoryBroker, MemoryPublisher
from synthesis.base import Audio, TransientSynthesisError
from text_processing.structure import split_document
from worker import main as worker_main

WAIT_S = 30.0


def test_an_interactive_call_without_a_free_slot_is_refused_after_the_bounded_wait() -> None:
    registry = CollectorRegistry()
    gate = LaneGate(
        concurrency=1, max_wait_s=0.05, bulk_yield_max_s=0, metrics=LaneMetrics.create(registry)
    )
    with gate.interactive(), pytest.raises(OverloadedError) as refused, gate.interactive():
        pass
    assert isinstance(refused.value, TransientSynthesisError)  # a 503, not a 500
    assert refused.value.retry_after_s > 0
    assert "saturated" in str(refused.value)
    assert registry.get_sample_value("voxmill_lane_rejected_total", {"lane": "interactive"}) == 1
    with gate.interactive():  # the slot is free again
        assert gate.interactive_in_flight == 1
    assert gate.interactive_in_flight == 0


def test_a_waiting_interactive_call_gets_the_slot_as_soon_as_it_is_free() -> None:
    gate = LaneGate(concurrency=1, max_wait_s=WAIT_S, bulk_yield_max_s=0)
    entered = threading.Event()
    release = threading.Event()
    got_in: list[int] = []

    def hold() -> None:
        with gate.interactive():
            entered.set()
            release.wait(WAIT_S)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(WAIT_S)
    waiter = threading.Thread(target=lambda: got_in.append(_enter(gate)))
    waiter.start()
    release.set()
    waiter.join(WAIT_S)
    holder.join(WAIT_S)
    assert got_in == [1]


def _enter(gate: LaneGate) -> int:
    with gate.interactive():
        return gate.interactive_in_flight


def test_bulk_work_waits_while_interactive_work_runs() -> None:
    gate = LaneGate(concurrency=2, max_wait_s=1, bulk_yield_max_s=WAIT_S)
    order: list[str] = []
    interactive_started = threading.Event()
    finish_interactive = threading.Event()

    def interactive() -> None:
        with gate.interactive():
            interactive_started.set()
            finish_interactive.wait(WAIT_S)
            order.append("interactive")

    def bulk() -> None:
        with gate.bulk():
            order.append("bulk")

    first = threading.Thread(target=interactive)
    first.start()
    interactive_started.wait(WAIT_S)
    second = threading.Thread(target=bulk)
    second.start()
    finish_interactive.set()
    first.join(WAIT_S)
    second.join(WAIT_S)
    assert order == ["interactive", "bulk"]


def test_bulk_work_runs_anyway_after_the_yield_limit_and_never_yields_with_lanes_off() -> None:
    for gate in (
        LaneGate(concurrency=1, max_wait_s=1, bulk_yield_max_s=0.01),
        LaneGate(concurrency=1, max_wait_s=1, bulk_yield_max_s=WAIT_S, enabled=False),
    ):
        with gate.interactive(), gate.bulk():  # would wait for WAIT_S if it yielded
            assert gate.interactive_in_flight == 1


def test_the_admitted_synthesizer_holds_a_slot_only_while_it_synthesizes() -> None:
    gate = LaneGate(concurrency=1, max_wait_s=0, bulk_yield_max_s=0)
    seen: list[int] = []

    class Inner:
        def synthesize(self, voice: str, text: str, params: object = None) -> Audio:
            seen.append(gate.interactive_in_flight)
            import numpy as np

            return Audio(samples=np.zeros(10, dtype=np.int16), sample_rate=16000)

        def voices(self) -> list[str]:
            return ["joe"]

        def ping(self) -> bool:
            return True

    synth = AdmittedSynthesizer(Inner(), gate)  # type: ignore[arg-type]
    assert len(synth.synthesize("joe", "Hi.").samples) == 10
    assert seen == [1] and gate.interactive_in_flight == 0
    assert synth.voices() == ["joe"] and synth.ping() is True


# -- the interactive queue ------------------------------------------------------------------------


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'test.db'}"
    migrate(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def queued(broker: MemoryBroker, queue: str) -> list[TaskMessage]:
    tasks = []
    while (delivery := broker.get(queue, timeout=0)) is not None:
        tasks.append(TaskMessage.model_validate_json(delivery.body))
    return tasks


@pytest.mark.parametrize("interactive", [True, False])
def test_a_resynthesized_sentence_skips_the_book_queue_when_the_lane_is_on(
    factory: sessionmaker[Session], interactive: bool
) -> None:
    text = " ".join(f"Sentence {i} of the book." for i in range(20))
    with factory.begin() as session:
        project = crud.create_project(session, name="p", voice="joe", speed=1.0)
        crud.add_document(
            session,
            project=project,
            text=text,
            fmt="text",
            filename="a.txt",
            chapters=split_document(text, fmt="text"),
        )
        crud.start_conversion(session, project=project)
    with factory.begin() as session:
        segment = session.scalars(select(Segment).order_by(Segment.id.desc())).first()
        assert segment is not None
        segment.status = SegmentStatus.DONE
        session.flush()
        crud.resynthesize(session, segment=segment, text="Fixed.", interactive=interactive)

    broker = MemoryBroker(Settings(queue_prefix="unit"))
    relay = OutboxRelay(factory, MemoryPublisher(broker))
    while relay.relay_once():
        pass
    book = queued(broker, broker.topology.tasks)
    lane = queued(broker, broker.topology.tasks_interactive)
    if interactive:
        assert [t.text for t in lane] == ["Fixed."]
        assert len(book) == 20 and "Fixed." not in [t.text for t in book]
    else:
        assert lane == [] and [t.text for t in book][-1] == "Fixed."


def test_the_worker_consumes_each_lane_it_is_given_and_refuses_unknown_lanes() -> None:
    topology = MemoryBroker(Settings(queue_prefix="unit")).topology
    assert worker_main._lane_queue(topology, "bulk") == "unit.tasks"
    assert worker_main._lane_queue(topology, "interactive") == "unit.tasks.interactive"
    with pytest.raises(SystemExit):
        worker_main.cli(["--lanes", "books"])


def test_the_queue_depth_of_each_lane_is_a_metric() -> None:
    broker = MemoryBroker(Settings(queue_prefix="unit"))
    topology = broker.topology
    registry = CollectorRegistry()
    registry.register(
        QueueDepthCollector(
            broker.depth, {Lane.BULK: topology.tasks, Lane.INTERACTIVE: topology.tasks_interactive}
        )
    )
    for _ in range(3):
        broker.put(topology.tasks, b"{}")
    broker.put(topology.tasks_interactive, b"{}")

    def depth(lane: str) -> float | None:
        return registry.get_sample_value("voxmill_lane_queue_depth", {"lane": lane})

    assert (depth("bulk"), depth("interactive")) == (3, 1)
    broker.get(topology.tasks, timeout=0)
    assert depth("bulk") == 2
