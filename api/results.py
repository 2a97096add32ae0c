"""Storing results from the workers, exactly once per task, whatever RabbitMQ redelivers.

A result is applied only while its segment is ``queued`` *and* the segment's current task id is
the result's: one conditional UPDATE does both the check and the write, so two copies of a result
racing on two threads (or two API replicas) cannot both apply, and the conversion's counters are
incremented only by the one that did. The message is acked after the transaction commits.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

import soundfile as sf
from sqlalchemy import case, literal, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.models import Conversion, Segment, SegmentStatus, UTCDateTime, utcnow
from api.progress import compute_progress
from contract.messages import EventMessage, MessageError, ResultMessage
from messaging.types import Delivery, Handler, Outcome, backoff_delay

log = logging.getLogger(__name__)

FLAC_MAGIC = b"fLaC"
# How long a result waits for the database to come back before it is returned to the queue.
DB_RETRY_FOR_S = 30.0


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
    total: int = 0
    done: int = 0
    failed: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def event(self) -> EventMessage:
        """The ``segment`` event browsers receive."""
        data: dict[str, object] = {
            "segment_id": self.segment_id,
            "chapter_id": self.chapter_id,
            "status": self.status.value,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }
        if self.conversion_id is not None and self.started_at is not None:
            progress = compute_progress(
                total=self.total,
                done=self.done,
                failed=self.failed,
                started_at=self.started_at,
                now=utcnow(),
                finished_at=self.finished_at,
            )
            data["conversion"] = {
                "id": self.conversion_id,
                "total": progress.total,
                "done": progress.done,
                "failed": progress.failed,
                "queued": progress.queued,
                "percent": progress.percent,
                "eta_s": progress.eta_s,
                "finished": progress.finished,
            }
        return EventMessage(type="segment", project_id=self.project_id, data=data)


def _audio_of(result: ResultMessage) -> tuple[bytes, int] | str:
    """The FLAC bytes and their sample count, or why the audio is unusable."""
    if not result.audio:
        return "the worker reported success but sent no audio"
    try:
        data = base64.b64decode(result.audio, validate=True)
    except (binascii.Error, ValueError) as e:
        return f"the worker sent audio that is not valid base64: {e}"
    if not data.startswith(FLAC_MAGIC):
        return "the worker sent audio that is not FLAC"
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError) as e:
        return f"the worker sent unreadable FLAC audio: {e}"
    return data, int(info.frames)


def apply_result(session: Session, result: ResultMessage) -> AppliedResult | None:
    """Store a result if it is the one its segment is waiting for; otherwise change nothing.

    Args:
        session: A session inside a transaction; the caller commits.
        result: The worker's result.

    Returns:
        What changed, or ``None`` for a duplicate, stale (older attempt) or unknown result.
    """
    values: dict[str, object] = {"worker": result.worker or None, "updated_at": utcnow()}
    status = SegmentStatus.DONE if result.status == "done" else SegmentStatus.FAILED
    if status is SegmentStatus.DONE:
        audio = _audio_of(result)
        if isinstance(audio, str):
            status = SegmentStatus.FAILED
            values["last_error"] = audio
        else:
            data, frames = audio
            rate = result.sample_rate or 0
            values.update(
                audio=data,
                sample_rate=rate,
                num_samples=frames,
                duration_ms=round(1000 * frames / rate) if rate else result.duration_ms,
                last_error=None,
            )
    else:
        values["last_error"] = result.error or "synthesis failed (no reason given)"
    values["status"] = status
    row = session.execute(
        update(Segment)
        .where(
            Segment.id == result.segment_id,
            Segment.status == SegmentStatus.QUEUED,
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
            Conversion.total,
            Conversion.done,
            Conversion.failed,
            Conversion.started_at,
            Conversion.finished_at,
        )
        .execution_options(synchronize_session=False)
    ).first()
    if counters is None:
        return applied
    total, done_n, failed_n, started_at, finished_at = counters
    return replace(
        applied,
        total=total,
        done=done_n,
        failed=failed_n,
        started_at=started_at,
        finished_at=finished_at,
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
    retry_for_s: float = DB_RETRY_FOR_S,
    stats: ResultStats | None = None,
) -> Handler:
    """The handler for ``<prefix>.results`` (RabbitMQ or in-process).

    - An invalid body is rejected to the dead-letter queue.
    - The result is applied and committed; only then does the handler return ``ACK``.
    - A database error is retried with back-off for up to ``retry_for_s`` (a restarting database
      should not burn the message's delivery limit), then the message is requeued.
    - ``on_applied`` runs after the commit for results that changed something (never for
      duplicates); it must not block (it hands the event to a publisher thread).
    """
    stop = stopping or threading.Event()
    counts = stats or ResultStats()

    def handle(delivery: Delivery) -> Outcome:
        try:
            result = ResultMessage.from_bytes(delivery.body)
        except MessageError as e:
            log.error("dead-lettering an invalid result message: %s", e)
            counts.count("rejected")
            return Outcome.REJECT
        assert isinstance(result, ResultMessage)
        attempt = 0
        waited = 0.0
        while True:
            try:
                with session_factory.begin() as session:
                    applied = apply_result(session, result)
                break
            except SQLAlchemyError as e:
                delay = backoff_delay(attempt, base=0.5, cap=5.0)
                attempt += 1
                waited += delay
                if waited > retry_for_s or stop.is_set():
                    log.error("result %s not stored (%s); requeueing it", result.task_id, e)
                    return Outcome.REQUEUE
                log.warning("storing result %s failed (%s); retrying", result.task_id, e)
                if stop.wait(delay):
                    return Outcome.REQUEUE
        counts.count("ignored" if applied is None else "applied")
        if applied is not None:
            try:
                on_applied(applied)
            except Exception:  # a notification must never turn a stored result into a redelivery
                log.exception("notifying about result %s failed", result.task_id)
        return Outcome.ACK

    return handle
