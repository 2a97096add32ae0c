"""Storing results from the workers, exactly once per task, whatever RabbitMQ redelivers.

A result is applied only while its segment is ``queued`` *and* the segment's current task id is
the result's: one conditional UPDATE does both the check and the write, so two copies of a result
racing on two threads (or two API replicas) cannot both apply, and the conversion's counters are
incremented only by the one that did. The message is acked after the transaction commits.

A paused or cancelled conversion puts its queued segments back to ``pending`` with their task id
kept: audio that a worker was already making is still stored when it arrives (nothing is thrown
away), while a failure or a ``skipped`` result for them changes nothing. A ``skipped`` result for
a segment still queued (the worker heard of the pause first) puts it back to ``pending``. Storing
new audio over old keeps the old take as the segment's previous one.

The audio is stored as the voice handler encoded it: the consumer checks its magic bytes and
takes its length from the result's metadata, without decoding it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import case, literal, or_, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import RetryCallState, Retrying, retry_if_exception_type

from api.audio_store import store_of
from api.crud import queue_where
from api.event_payloads import SegmentEvent
from api.models import Conversion, Project, Segment, SegmentStatus, UTCDateTime, utcnow
from api.schemas import ConversionOut
from api.storage import ObjectError
from contract.messages import EventMessage, MessageError, ResultMessage
from contract.retry import RetryPolicy
from messaging.types import Delivery, Handler, Outcome

log = logging.getLogger(__name__)

FLAC_MAGIC = b"fLaC"


@dataclass(frozen=True)
class AppliedResult:
    """What one applied result changed, for the live event."""

    project_id: int
    segment_id: int
    chapter_id: int
    status: SegmentStatus
    duration_ms: int | None
    error: str | None
    conversion_id: int | None
    conversion_kind: str = "project"
    total: int = 0
    done: int = 0
    failed: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped: str | None = None

    def event(self) -> EventMessage:
        """The ``segment`` event browsers receive (:class:`api.event_payloads.SegmentEvent`)."""
        conversion = None
        if self.conversion_id is not None and self.started_at is not None:
            conversion = ConversionOut.of_counters(
                id=self.conversion_id,
                project_id=self.project_id,
                kind=self.conversion_kind,
                total=self.total,
                done=self.done,
                failed=self.failed,
                started_at=self.started_at,
                finished_at=self.finished_at,
                now=utcnow(),
                stopped=self.stopped,
            )
        payload = SegmentEvent(
            segment_id=self.segment_id,
            chapter_id=self.chapter_id,
            status=self.status,
            duration_ms=self.duration_ms,
            error=self.error,
            conversion=conversion,
        )
        return payload.message(self.project_id)


def _audio_of(result: ResultMessage) -> tuple[bytes, int] | str:
    """The FLAC bytes and their sample count, or why the audio is unusable."""
    data = result.audio
    if not data:
        return "the worker reported success but sent no audio"
    if not data.startswith(FLAC_MAGIC):
        return "the worker sent audio that is not FLAC"
    if not result.num_samples or not result.sample_rate:
        return "the worker sent audio without its sample count or sample rate"
    return data, result.num_samples


def apply_result(session: Session, result: ResultMessage) -> AppliedResult | None:
    """Store a result if it is the one its segment is waiting for; otherwise change nothing.

    Args:
        session: A session inside a transaction; the caller commits.
        result: The worker's result.

    Returns:
        What changed, or ``None`` for a duplicate, stale (older attempt) or unknown result.
    """
    if result.status == "skipped":
        return _skipped(session, result)
    values: dict[str, object] = {"worker": result.worker or None, "updated_at": utcnow()}
    status = SegmentStatus.DONE if result.status == "done" else SegmentStatus.FAILED
    waiting = [SegmentStatus.QUEUED]
    if status is SegmentStatus.DONE:
        audio = _audio_of(result)
        if isinstance(audio, str):
            status = SegmentStatus.FAILED
            values["last_error"] = audio
        else:
            data, frames = audio
            store = store_of(session)
            key = None
            if store is not None:
                # Written before the row that names it; an orphan (crash, duplicate) is swept.
                key = store.put(data)
            waiting.append(SegmentStatus.PENDING)  # paused meanwhile: keep what was made
            # The take this one replaces stays as the previous take (compare and pick back).
            had_audio = or_(Segment.audio.is_not(None), Segment.audio_key.is_not(None))

            def kept(current: Any, previous: Any) -> Any:
                return case((had_audio, current), else_=previous)

            values.update(
                previous_audio=kept(Segment.audio, Segment.previous_audio),
                previous_audio_key=kept(Segment.audio_key, Segment.previous_audio_key),
                previous_sample_rate=kept(Segment.sample_rate, Segment.previous_sample_rate),
                previous_num_samples=kept(Segment.num_samples, Segment.previous_num_samples),
                previous_duration_ms=kept(Segment.duration_ms, Segment.previous_duration_ms),
                previous_timings=kept(Segment.timings, Segment.previous_timings),
                audio=None if key else data,
                audio_key=key,
                sample_rate=result.sample_rate,
                num_samples=frames,
                duration_ms=result.duration_ms,
                timings=result.timings.model_dump() if result.timings else None,
                last_error=None,
            )
    else:
        values["last_error"] = result.error or "synthesis failed (no reason given)"
    values["status"] = status
    row = session.execute(
        update(Segment)
        .where(
            Segment.id == result.segment_id,
            Segment.status.in_(waiting),
            Segment.task_id == result.task_id,
        )
        .values(**values)
        .returning(Segment.project_id, Segment.chapter_id, Segment.conversion_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        log.info(
            "result %s for segment %d ignored: not the task it waits for (duplicate or stale)",
            result.task_id,
            result.segment_id,
        )
        return None
    project_id, chapter_id, conversion_id = row
    applied = AppliedResult(
        project_id=project_id,
        segment_id=result.segment_id,
        chapter_id=chapter_id,
        status=status,
        duration_ms=values.get("duration_ms"),  # type: ignore[arg-type]
        error=values.get("last_error"),  # type: ignore[arg-type]
        conversion_id=conversion_id,
    )
    if conversion_id is None:
        return applied
    is_done = status is SegmentStatus.DONE
    done = Conversion.done + (1 if is_done else 0)
    failed = Conversion.failed + (0 if is_done else 1)
    counters = session.execute(
        update(Conversion)
        .where(Conversion.id == conversion_id)
        .values(
            done=done,
            failed=failed,
            finished_at=case(
                (
                    (done + failed >= Conversion.total) & Conversion.finished_at.is_(None),
                    literal(utcnow(), UTCDateTime()),
                ),
                else_=Conversion.finished_at,
            ),
        )
        .returning(
            Conversion.kind,
            Conversion.total,
            Conversion.done,
            Conversion.failed,
            Conversion.started_at,
            Conversion.finished_at,
            Conversion.stopped,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if counters is None:
        return applied
    kind, total, done_n, failed_n, started_at, finished_at, stopped = counters
    return replace(
        applied,
        conversion_kind=kind,
        total=total,
        done=done_n,
        failed=failed_n,
        started_at=started_at,
        finished_at=finished_at,
        stopped=stopped,
    )


def _skipped(session: Session, result: ResultMessage) -> AppliedResult | None:
    """A task the worker dropped unsynthesized. While its conversion is paused or cancelled the
    sentence waits again as ``pending`` (nothing is counted). When the conversion runs again (the
    worker had not heard of the resume yet) the sentence is queued again at once; its event
    carries the running conversion, which also tells that worker the project runs again."""
    row = session.execute(
        select(Segment.project_id, Segment.chapter_id, Segment.conversion_id).where(
            Segment.id == result.segment_id,
            Segment.status == SegmentStatus.QUEUED,
            Segment.task_id == result.task_id,
        )
    ).first()
    if row is None:
        return None
    project_id, chapter_id, conversion_id = row
    conversion = session.get(Conversion, conversion_id) if conversion_id is not None else None
    if conversion is not None and conversion.stopped is None and conversion.finished_at is None:
        project = session.get(Project, project_id)
        assert project is not None  # a foreign key guarantees it
        queue_where(
            session,
            project=project,
            conversion=conversion,
            condition=Segment.id == result.segment_id,
        )
        return AppliedResult(
            project_id=project_id,
            segment_id=result.segment_id,
            chapter_id=chapter_id,
            status=SegmentStatus.QUEUED,
            duration_ms=None,
            error=None,
            conversion_id=conversion.id,
            conversion_kind=conversion.kind,
            total=conversion.total,
            done=conversion.done,
            failed=conversion.failed,
            started_at=conversion.started_at,
            finished_at=conversion.finished_at,
        )
    session.execute(
        update(Segment)
        .where(Segment.id == result.segment_id, Segment.task_id == result.task_id)
        .values(status=SegmentStatus.PENDING, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return AppliedResult(
        project_id=project_id,
        segment_id=result.segment_id,
        chapter_id=chapter_id,
        status=SegmentStatus.PENDING,
        duration_ms=None,
        error=None,
        conversion_id=None,
    )


@dataclass
class ResultStats:
    """What the result consumer did, since it started (for tests, logs and metrics)."""

    applied: int = 0
    ignored: int = 0
    """Duplicates, stale attempts and results for unknown segments: acked, changed nothing."""
    rejected: int = 0
    """Invalid bodies, dead-lettered."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, what: str) -> None:
        """Add one to ``applied``, ``ignored`` or ``rejected``."""
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)


def make_result_handler(
    session_factory: sessionmaker[Session],
    on_applied: Callable[[AppliedResult], None],
    *,
    stopping: threading.Event | None = None,
    policy: RetryPolicy | None = None,
    stats: ResultStats | None = None,
) -> Handler:
    """The handler for ``<prefix>.results`` (RabbitMQ or in-process).

    - An invalid message is rejected to the dead-letter queue.
    - The result is applied and committed; only then does the handler return ``ACK``.
    - A database that cannot be reached is waited for with the policy's ``store_backoff`` for as
      long as it takes (a restarting database must not burn the message's delivery limit);
      other database errors are retried for up to ``store_retry_for_s``, then the message is
      requeued; so is it at once when ``stopping`` is set.
    - ``on_applied`` runs after the commit for results that changed something (never for
      duplicates); it must not block (it hands the event to a publisher thread).
    """
    stop = stopping or threading.Event()
    counts = stats or ResultStats()
    rules = policy or RetryPolicy()

    def store(result: ResultMessage) -> AppliedResult | None:
        with session_factory.begin() as session:
            return apply_result(session, result)

    def give_up(state: RetryCallState) -> bool:
        if stop.is_set():
            return True
        error = state.outcome.exception() if state.outcome else None
        if _database_unreachable(error):
            # Requeueing cannot help while the database is down, and each requeue spends one of
            # the message's deliveries: wait for the database however long it takes.
            return False
        return (state.seconds_since_start or 0.0) >= rules.store_retry_for_s

    def sleep(delay: float) -> None:
        if stop.wait(delay):
            raise _Stopping

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.warning("storing a result failed (%s); retrying in %.1fs", error, state.upcoming_sleep)

    def handle(delivery: Delivery) -> Outcome:
        try:
            result = ResultMessage.from_wire(delivery.body, delivery.headers)
        except MessageError as e:
            log.error("dead-lettering an invalid result message: %s", e)
            counts.count("rejected")
            return Outcome.REJECT
        retrying = Retrying(
            retry=retry_if_exception_type((SQLAlchemyError, ObjectError)),
            stop=give_up,
            wait=rules.store_backoff.wait,
            sleep=sleep,
            before_sleep=log_retry,
            reraise=True,
        )
        try:
            applied = retrying(store, result)
        except (SQLAlchemyError, ObjectError) as e:
            log.error("result %s not stored (%s); requeueing it", result.task_id, e)
            return Outcome.REQUEUE
        except _Stopping:
            return Outcome.REQUEUE
        counts.count("ignored" if applied is None else "applied")
        if applied is not None:
            try:
                on_applied(applied)
            except Exception:  # a notification must never turn a stored result into a redelivery
                log.exception("notifying about result %s failed", result.task_id)
        return Outcome.ACK

    return handle


def _database_unreachable(error: BaseException | None) -> bool:
    """Whether ``error`` says the database cannot be reached (rather than refusing this row)."""
    if isinstance(error, (OperationalError, InterfaceError)):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class _Stopping(Exception):
    """Raised out of a retry wait when the consumer is stopping."""
