"""Project control: pause, resume and cancel a conversion; delete a project or a document with
its audio and its queued tasks; rename a project or change its speed.

Like :mod:`api.crud`, these functions change rows and never commit. Stopping a conversion
deletes the outbox rows of its tasks not yet published (so the relay sends no new task) and puts
its queued segments back to ``pending`` with their task id kept: a result for a task already on
its way is still stored when it is audio (see :mod:`api.results`), and the workers drop the
stopped project's tasks they have not started (:mod:`worker.control`). Resuming queues the
conversion's pending segments again under the same conversion, so its counters carry on and
nothing is lost.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from api.crud import ConflictError, queue_where
from api.models import (
    ACTIVE_JOB_STATUSES,
    Chapter,
    Conversion,
    Document,
    Job,
    OutboxMessage,
    Project,
    Segment,
    SegmentStatus,
    utcnow,
)


def drop_tasks(
    session: Session, condition: ColumnElement[bool], *, discard_in_flight: bool = False
) -> int:
    """Delete the unpublished outbox rows of the queued segments matching ``condition`` and
    put those segments back to ``pending``. Returns how many segments that was.

    With ``discard_in_flight`` their task ids are cleared too, so a result of a task already
    handed to RabbitMQ matches no segment and is ignored (a cancelled job keeps nothing);
    otherwise such a result is still stored (a paused conversion keeps what was made)."""
    queued = select(Segment.task_id).where(
        condition, Segment.status == SegmentStatus.QUEUED, Segment.task_id.is_not(None)
    )
    session.execute(
        delete(OutboxMessage)
        .where(OutboxMessage.message_id.in_(queued))
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        update(Segment)
        .where(condition, Segment.status == SegmentStatus.QUEUED)
        .values(
            status=SegmentStatus.PENDING,
            updated_at=utcnow(),
            **({"task_id": None} if discard_in_flight else {}),
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _ended(conversion: Conversion) -> str:
    """How a conversion that is over ended, for a refusal's message."""
    return "was cancelled" if conversion.stopped == "cancelled" else "has already finished"


def pause(session: Session, *, conversion: Conversion) -> int:
    """Pause a running conversion: no new sentence is synthesized until :func:`resume`.

    Returns:
        How many sentences were waiting and are held back.

    Raises:
        ConflictError: It has finished, or was cancelled.
    """
    if conversion.finished_at is not None:
        raise ConflictError(f"this conversion {_ended(conversion)}; there is nothing to pause")
    if conversion.stopped == "paused":
        return 0
    conversion.stopped = "paused"
    return drop_tasks(session, Segment.conversion_id == conversion.id)


def resume(session: Session, *, conversion: Conversion) -> int:
    """Resume a paused conversion: its sentences without audio are queued again.

    Returns:
        How many sentences were queued.

    Raises:
        ConflictError: It is not paused.
    """
    if conversion.finished_at is not None:
        raise ConflictError(f"this conversion {_ended(conversion)}; there is nothing to resume")
    if conversion.stopped != "paused":
        raise ConflictError("this conversion is not paused; there is nothing to resume")
    project = session.get(Project, conversion.project_id)
    assert project is not None  # a foreign key guarantees it
    conversion.stopped = None
    queued = queue_where(
        session,
        project=project,
        conversion=conversion,
        condition=(Segment.conversion_id == conversion.id)
        & (Segment.status == SegmentStatus.PENDING),
    )
    if conversion.done + conversion.failed >= conversion.total:
        conversion.finished_at = utcnow()
    return queued


def cancel(session: Session, *, conversion: Conversion) -> int:
    """Cancel a running or paused conversion: its sentences without audio go back to "not
    converted" (Convert starts them again later); audio already made is kept.

    Returns:
        How many sentences were put back.

    Raises:
        ConflictError: It has already finished.
    """
    if conversion.finished_at is not None:
        raise ConflictError(f"this conversion {_ended(conversion)}; there is nothing to cancel")
    dropped = drop_tasks(session, Segment.conversion_id == conversion.id)
    conversion.stopped = "cancelled"
    conversion.finished_at = utcnow()
    return dropped


def _forget_segments(session: Session, condition: ColumnElement[bool]) -> None:
    """Before segments are deleted: drop their unpublished tasks, and take the unfinished ones
    out of their conversions' totals, so that a conversion still running can finish."""
    drop_tasks(session, condition)
    rows = session.execute(
        select(Segment.conversion_id, func.count())
        .where(
            condition,
            Segment.conversion_id.is_not(None),
            Segment.status == SegmentStatus.PENDING,
        )
        .group_by(Segment.conversion_id)
    ).all()
    for conversion_id, count in rows:
        conversion = session.get(Conversion, conversion_id)
        if conversion is None or conversion.finished_at is not None:
            continue
        conversion.total = max(conversion.total - int(count), 0)
        if conversion.done + conversion.failed >= conversion.total:
            conversion.finished_at = utcnow()


def _refuse_while_a_job_runs(session: Session, project_id: int, what: str) -> None:
    """A running job's project keeps its content until the job ends: its outputs are written
    from it, and its client is told how it went."""
    job_id = session.scalar(
        select(Job.id)
        .where(Job.project_id == project_id, Job.status.in_(ACTIVE_JOB_STATUSES))
        .limit(1)
    )
    if job_id is not None:
        raise ConflictError(
            f"project {project_id} belongs to job {job_id}, which is still running; cancel the "
            f"job first (DELETE /v1/jobs/{job_id}), then {what}"
        )


def delete_project(session: Session, *, project: Project) -> None:
    """Delete a project with its documents, chapters, sentences, audio, lexicon, conversions and
    unpublished tasks (the database cascades from the project row).

    Raises:
        ConflictError: The project is the work of a batch job that is still running; the job
            must be cancelled first (its outputs would otherwise never be written, and its
            client never told).
    """
    _refuse_while_a_job_runs(session, project.id, "delete the project")
    drop_tasks(session, Segment.project_id == project.id)
    session.execute(
        delete(Project).where(Project.id == project.id).execution_options(synchronize_session=False)
    )
    session.expunge(project)


def delete_document(session: Session, *, document: Document) -> None:
    """Delete a document with its chapters, sentences, audio and unpublished tasks.

    Raises:
        ConflictError: The project is the work of a batch job that is still running (the job
            would complete without the document's audio).
    """
    _refuse_while_a_job_runs(session, document.project_id, "remove the document")
    chapters = select(Chapter.id).where(Chapter.document_id == document.id)
    _forget_segments(session, Segment.chapter_id.in_(chapters))
    session.execute(
        delete(Chapter)
        .where(Chapter.document_id == document.id)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Document)
        .where(Document.id == document.id)
        .execution_options(synchronize_session=False)
    )
    session.expunge(document)
