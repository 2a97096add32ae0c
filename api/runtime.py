"""Everything the API runs beside HTTP: database, relay, result consumer, events, and in the
embedded mode the synthesis workers. Built and started by the app's lifespan, stopped after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.audio_store import AudioStore, attach, build_audio_store
from api.db import check_schema, is_sqlite, make_engine, make_session_factory, migrate
from api.dead_letters import StuckSweep, make_dead_letter_handler
from api.events import EventHub, EventSender
from api.job_services import JobServices
from api.lanes import LaneGate, yielding_handler
from api.outbox import OutboxRelay
from api.results import AppliedResult, ResultStats, make_result_handler
from api.storage import LocalObjectStore, ObjectStore, build_object_store
from contract.messages import EventMessage
from contract.settings import Mode, Settings
from messaging.transport import MemoryTransport, RabbitTransport, Service, Transport
from messaging.types import Delivery, MessagePublisher, Outcome
from synthesis.base import Synthesizer
from synthesis.factory import default_synthesizer
from text_processing.isolation import DocumentPool
from text_processing.limits import DocumentLimits
from worker.control import StoppedTasks

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], object]
"""A check for ``/readyz``: passes unless it raises or returns ``False``; its ``__qualname__``
names it in the answer."""
STOP_TIMEOUT_S = 30.0
# How long start-up waits for the consumers to attach. Serving before the events queue is bound
# would let a browser's first events go missing; a broker that is down only delays readiness.
CONNECT_WAIT_S = 10.0


def _named(name: str, check: Callable[[], object]) -> ReadinessCheck:
    check.__qualname__ = name  # what /readyz reports for a failing check
    return check


def default_transport(settings: Settings) -> Transport:
    """RabbitMQ in the distributed mode, the in-process queue in the embedded mode."""
    if settings.mode is Mode.EMBEDDED:
        return MemoryTransport(settings)
    return RabbitTransport(settings)


@dataclass
class Runtime:
    """The API process's background machinery.

    Attributes:
        settings: The process settings.
        engine: The database engine.
        session_factory: Sessions on it.
        transport: RabbitMQ or in-process.
        hub: Per-project fan-out of live events to SSE subscribers.
        synthesizer: Used by the embedded workers and ``/v1/audio/speech``; may be ``None`` in
            the distributed mode.
    """

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    transport: Transport
    hub: EventHub
    synthesizer: Synthesizer | None
    owns_synthesizer: bool = False
    relay: OutboxRelay | None = None
    sender: EventSender | None = None
    services: list[Service] = field(default_factory=list)
    publishers: list[MessagePublisher] = field(default_factory=list)
    results_consumer: Service | None = None
    listener: Service | None = None
    result_stats: ResultStats = field(default_factory=ResultStats)
    stopped_tasks: StoppedTasks = field(default_factory=StoppedTasks)
    documents: DocumentPool | None = None
    # Admission between the lanes (api/lanes.py); set by create_app before start.
    gate: LaneGate | None = None
    # Issue 13: object storage, batch jobs, webhooks, bucket ingest.
    objects: ObjectStore = field(default_factory=lambda: LocalObjectStore(Path(".run/objects")))
    audio_store: AudioStore | None = None
    jobs: JobServices | None = None
    sweep: StuckSweep | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        synthesizer: Synthesizer | None = None,
        transport: Transport | None = None,
    ) -> Runtime:
        """Create (not start) the runtime for ``settings``."""
        url = settings.effective_database_url()
        if settings.mode is Mode.EMBEDDED or is_sqlite(url):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        owns = synthesizer is None
        objects = build_object_store(settings)
        audio_store = build_audio_store(settings, objects)
        session_factory = make_session_factory(engine)
        attach(session_factory, audio_store)
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            transport=transport or default_transport(settings),
            hub=EventHub(),
            synthesizer=synthesizer if synthesizer is not None else default_synthesizer(settings),
            owns_synthesizer=owns,
            # Untrusted documents are read in these processes, never on the serving threads.
            documents=DocumentPool(settings.parse_workers, settings.parse_memory_bytes),
            objects=objects,
            audio_store=audio_store,
        )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the database and start every background service.

        Raises:
            api.db.SchemaError: Distributed mode with a database that is not migrated.
        """
        settings = self.settings
        url = settings.effective_database_url()
        if settings.mode is Mode.EMBEDDED or is_sqlite(url):
            migrate(url)  # one local database: keep it current without a separate step
        else:
            check_schema(self.engine)
        if not self.transport.durable:
            with self.session_factory.begin() as session:
                again = crud.requeue_unpublished(session)
            if again:
                log.info("re-queued %d tasks lost with the previous process", again)
        topology = self.transport.topology
        task_publisher = self.transport.publisher("voxmill-api-outbox")
        event_publisher = self.transport.publisher("voxmill-api-events")
        self.publishers += [task_publisher, event_publisher]
        policy = settings.retry_policy()
        self.relay = OutboxRelay(
            self.session_factory,
            task_publisher,
            poll_s=settings.outbox_poll_s,
            backoff=policy.relay_backoff,
        )
        self.sender = EventSender(event_publisher)
        listener = self.transport.event_listener(self._on_event)
        handler = make_result_handler(
            self.session_factory,
            self._on_result,
            stopping=self._stopping,
            policy=policy,
            stats=self.result_stats,
        )
        self.results_consumer = self.transport.consumer(
            topology.results, handler, concurrency=settings.prefetch, name="voxmill-api-results"
        )
        self.services = [listener, self.results_consumer]
        # Nothing stays queued for ever (api/dead_letters.py): dead-lettered tasks end their
        # segments; results dead-lettered during a long database outage are stored after it.
        self.services += [
            self.transport.consumer(
                topology.tasks_dead,
                make_dead_letter_handler(handler),
                concurrency=1,
                name="voxmill-api-dead-tasks",
            ),
            self.transport.consumer(
                topology.results_dead, handler, concurrency=1, name="voxmill-api-dead-results"
            ),
        ]
        if settings.mode is Mode.EMBEDDED:
            self.services.append(self._embedded_workers())
            self.services.append(self._embedded_interactive_worker())
        if self.documents is not None:
            self.documents.warm()
        self.sender.start()
        for service in self.services:
            service.start()
        self.relay.start()
        self.jobs = JobServices.start(self)
        self.sweep = StuckSweep(
            self.session_factory,
            lambda: self.transport.waiting(topology.tasks, topology.results),
            policy=policy,
            interval_s=settings.stuck_sweep_s,
            on_requeued=self.relay.wake,
        )
        self.sweep.start()
        self.listener = listener
        for service in self.services:
            if not service.wait_connected(CONNECT_WAIT_S):
                log.warning("not connected to the message broker yet; /readyz will say so")
                break
        log.info("runtime started (%s mode)", settings.mode.value)

    def _embedded_workers(self) -> Service:
        from worker.main import make_task_handler  # the same task code as `voxmill worker`

        if self.synthesizer is None:
            raise RuntimeError("the embedded mode needs a synthesizer")
        publisher = self.transport.publisher("voxmill-embedded-worker")
        self.publishers.append(publisher)
        handler = make_task_handler(
            self.settings,
            self.synthesizer,
            publisher,
            stopping=self._stopping,
            worker="embedded",
            stopped=self.stopped_tasks,
        )
        if self.gate is not None:
            # One CPU for everything: a book's sentence waits while a user's is synthesized.
            handler = yielding_handler(handler, self.gate)
        return self.transport.consumer(
            self.transport.topology.tasks,
            handler,
            concurrency=max(1, self.settings.embedded_workers),
            name="voxmill-embedded-worker",
        )

    def _embedded_interactive_worker(self) -> Service:
        """One synthesis thread for the interactive lane's queue (re-synthesized sentences)."""
        from worker.main import make_task_handler

        if self.synthesizer is None:
            raise RuntimeError("the embedded mode needs a synthesizer")
        publisher = self.transport.publisher("voxmill-embedded-interactive")
        self.publishers.append(publisher)
        handler = make_task_handler(
            self.settings, self.synthesizer, publisher, stopping=self._stopping, worker="embedded"
        )
        gate = self.gate
        if gate is not None:
            inner = handler

            def handler(delivery: Delivery) -> Outcome:
                with gate.interactive(bounded=False):
                    return inner(delivery)

        return self.transport.consumer(
            self.transport.topology.tasks_interactive,
            handler,
            concurrency=1,
            name="voxmill-embedded-interactive",
        )

    def stop(self) -> None:
        """Stop everything started by :meth:`start`; in-flight work finishes first."""
        self._stopping.set()
        if self.jobs is not None:
            self.jobs.stop()
        for service in reversed(self.services):
            service.stop()
        for service in reversed(self.services):
            if not service.join(STOP_TIMEOUT_S):
                log.warning("a background consumer did not stop within %.0fs", STOP_TIMEOUT_S)
        if self.sweep is not None:
            self.sweep.stop()
        if self.relay is not None:
            self.relay.stop()
            self.relay.join(STOP_TIMEOUT_S)
        if self.sender is not None:
            self.sender.stop()
        if self.documents is not None:
            self.documents.close()
        for publisher in self.publishers:
            publisher.close()
        if self.owns_synthesizer:
            close = getattr(self.synthesizer, "close", None)
            if callable(close):
                close()
        self.engine.dispose()
        log.info("runtime stopped")

    # -- used by routes -----------------------------------------------------------------------

    def document_limits(self) -> DocumentLimits:
        """The limits one uploaded document is read under (from the settings)."""
        s = self.settings
        return DocumentLimits(
            max_bytes=s.max_upload_bytes,
            max_segments=s.max_segments,
            max_depth=s.max_nesting_depth,
            max_block_chars=s.max_block_chars,
            max_lines=s.max_lines,
            max_unpacked_bytes=s.max_unpacked_bytes,
            max_archive_members=s.max_archive_members,
            max_pdf_pages=s.max_pdf_pages,
            timeout_s=s.parse_timeout_s,
            memory_bytes=s.parse_memory_bytes,
        )

    def committed(self, *events: EventMessage) -> None:
        """Call after committing outbox rows: wake the relay, announce ``events``."""
        if self.relay is not None:
            self.relay.wake()
        for event in events:
            self.notify(event)

    def notify(self, event: EventMessage) -> None:
        """Fan ``event`` out to every replica (without blocking)."""
        if self.sender is not None:
            self.sender.send(event)

    def _on_event(self, event: EventMessage) -> None:
        # The embedded workers hear of paused, cancelled and deleted projects from this
        # replica's own listener (a separate worker process binds its own queue).
        self.stopped_tasks.observe(event)
        self.hub.publish_threadsafe(event)

    def _on_result(self, applied: AppliedResult) -> None:
        self.notify(applied.event())
        if applied.finished_at is not None and self.jobs is not None:
            self.jobs.finisher.wake()  # the conversion is over: a job may be ready to finish

    def readiness_checks(self) -> list[ReadinessCheck]:
        """Checks for ``/readyz``: the database answers, the result consumer is attached."""

        def database() -> None:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        def broker() -> None:
            consumer = self.results_consumer
            if consumer is None or not consumer.connected:
                raise RuntimeError("not consuming results (message broker unreachable?)")
            if self.listener is None or not self.listener.connected:
                raise RuntimeError("not receiving live events (message broker unreachable?)")

        def outbox() -> None:
            if self.relay is not None and not self.relay.healthy:
                raise RuntimeError("the outbox relay cannot publish tasks")

        return [_named("database", database), _named("broker", broker), _named("outbox", outbox)]
