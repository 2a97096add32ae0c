"""Database operations behind the routes: keyword-only functions on a session.

They add and change rows but never commit: the caller owns the transaction, so that a
conversion's segment updates and its outbox rows commit together or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.orm import Session

from api.models import (
    Block,
    Chapter,
    Conversion,
    Document,
    OutboxMessage,
    Project,
    Segment,
    SegmentStatus,
    Voice,
    utcnow,
)
from api.pronunciation import project_lexicon, task_text
from contract.messages import SynthesisParams, TaskMessage
from text_processing.lexicon import Lexicon
from text_processing.structure import ChapterSpec, DocFormat

OUTBOX_TASK = "task"
# A task of the interactive lane (a re-synthesized sentence): published to
# ``<prefix>.tasks.interactive`` (api/lanes.py).
OUTBOX_INTERACTIVE_TASK = "task.interactive"
_CHUNK = 1000  # rows per bulk statement


class ConflictError(Exception):
    """The request conflicts with the current state; the message says what to do."""


@dataclass
class StatusCounts:
    """Segments per status."""

    pending: int = 0
    queued: int = 0
    done: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        """All segments."""
        return self.pending + self.queued + self.done + self.failed

    def add(self, status: str, count: int) -> None:
        """Add ``count`` segments of ``status``."""
        setattr(self, status, getattr(self, status) + count)


@dataclass
class ProjectTree:
    """A project with its documents and per-chapter status counts."""

    project: Project
    counts: StatusCounts
    chapters: list[tuple[Chapter, StatusCounts]] = field(default_factory=list)
    active_conversion: Conversion | None = None


def new_task_id(segment_id: int, attempt: int) -> str:
    """A task id unique per (segment, attempt), and across databases that reuse segment ids."""
    return f"s{segment_id}-a{attempt}-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------------------------------------
# Projects


def create_project(session: Session, *, name: str, voice: str, speed: float = 1.0) -> Project:
    """Add a project (flushed, so it has an id)."""
    project = Project(name=name, voice=voice, speed=speed, created_at=utcnow())
    session.add(project)
    session.flush()
    return project


def list_projects(session: Session, *, limit: int = 50, offset: int = 0) -> Sequence[Project]:
    """Projects, newest first."""
    query = select(Project).order_by(Project.id.desc()).limit(limit).offset(offset)
    return session.scalars(query).all()


def count_projects(session: Session) -> int:
    """How many projects exist."""
    return session.scalar(select(func.count(Project.id))) or 0


def status_counts(session: Session, *, project_id: int) -> dict[int, StatusCounts]:
    """Segment counts per status for each chapter of a project."""
    rows = session.execute(
        select(Segment.chapter_id, Segment.status, func.count(Segment.id))
        .where(Segment.project_id == project_id)
        .group_by(Segment.chapter_id, Segment.status)
    ).all()
    counts: dict[int, StatusCounts] = {}
    for chapter_id, status, count in rows:
        counts.setdefault(chapter_id, StatusCounts()).add(SegmentStatus(status).value, count)
    return counts


def project_tree(session: Session, *, project: Project) -> ProjectTree:
    """The project, its chapters in order and the status counts of each."""
    per_chapter = status_counts(session, project_id=project.id)
    chapters = session.scalars(
        select(Chapter).where(Chapter.project_id == project.id).order_by(Chapter.position)
    ).all()
    tree = ProjectTree(project=project, counts=StatusCounts())
    for chapter in chapters:
        counts = per_chapter.get(chapter.id, StatusCounts())
        tree.chapters.append((chapter, counts))
        for status in SegmentStatus:
            tree.counts.add(status.value, getattr(counts, status.value))
    tree.active_conversion = active_conversion(session, project_id=project.id)
    return tree


def chapter_segments(session: Session, *, chapter_id: int) -> Sequence[tuple[int, Segment]]:
    """A chapter's segments in reading order, each with its block's position."""
    rows = session.execute(
        select(Block.position, Segment)
        .join(Segment, Segment.block_id == Block.id)
        .where(Block.chapter_id == chapter_id)
        .order_by(Block.position, Segment.position)
    ).all()
    return [(position, segment) for position, segment in rows]


# ---------------------------------------------------------------------------------------------
# Documents


def add_document(
    session: Session,
    *,
    project: Project,
    text: str,
    fmt: DocFormat,
    filename: str | None,
    chapters: list[ChapterSpec],
    kind: str | None = None,
) -> tuple[Document, list[Chapter]]:
    """Store a document and its split tree after the project's existing chapters.

    Args:
        session: The open session.
        project: The project the document belongs to.
        text: The decoded source text (kept, so segment spans can be shown).
        fmt: ``markdown`` or ``text``.
        filename: The uploaded file's name, if any.
        chapters: The output of :func:`text_processing.structure.split_document` for ``text``
            (with each segment's spoken form).
        kind: What the file was uploaded as (``epub``, ``pdf``, ...).

    Returns:
        The document and its new chapters.
    """
    document = Document(
        project_id=project.id,
        filename=filename,
        format=fmt,
        kind=kind,
        source_text=text,
        created_at=utcnow(),
    )
    session.add(document)
    first = session.scalar(
        select(func.coalesce(func.max(Chapter.position), -1)).where(
            Chapter.project_id == project.id
        )
    )
    base = (first if first is not None else -1) + 1
    session.flush()
    stored: list[Chapter] = []
    segment_rows: list[dict[str, object]] = []
    for c, spec in enumerate(chapters):
        chapter = Chapter(
            project_id=project.id, document_id=document.id, position=base + c, title=spec.title
        )
        blocks = [Block(position=b) for b in range(len(spec.blocks))]
        chapter.blocks = blocks
        session.add(chapter)
        stored.append(chapter)
    session.flush()  # ids for chapters and blocks (one multi-row INSERT each)
    now = utcnow()
    for chapter, spec in zip(stored, chapters, strict=True):
        for block, block_spec in zip(chapter.blocks, spec.blocks, strict=True):
            for s, seg in enumerate(block_spec.segments):
                segment_rows.append(
                    {
                        "project_id": project.id,
                        "chapter_id": chapter.id,
                        "block_id": block.id,
                        "position": s,
                        "source_start": seg.start,
                        "source_end": seg.end,
                        "text": seg.text,
                        "spoken_text": seg.spoken,
                        "spoken_override": False,
                        "status": SegmentStatus.PENDING,
                        "attempts": 0,
                        "updated_at": now,
                    }
                )
    for i in range(0, len(segment_rows), _CHUNK):
        session.execute(insert(Segment), segment_rows[i : i + _CHUNK])
    return document, stored


# ---------------------------------------------------------------------------------------------
# Conversions


def active_conversion(session: Session, *, project_id: int) -> Conversion | None:
    """The project's newest unfinished whole-project conversion, if any."""
    return session.scalars(
        select(Conversion)
        .where(
            Conversion.project_id == project_id,
            Conversion.kind == "project",
            Conversion.finished_at.is_(None),
        )
        .order_by(Conversion.id.desc())
        .limit(1)
    ).first()


@dataclass(frozen=True)
class SegmentJob:
    """A segment to queue and the voice it speaks with (version and pool resolved)."""

    segment_id: int
    text: str
    attempts: int
    voice: str
    voice_version: str | None = None
    pool: str | None = None


def effective_voice(
    project: Project,
    chapter_choice: tuple[str | None, str | None],
    block_choice: tuple[str | None, str | None],
) -> tuple[str, str | None]:
    """The voice (and pinned version) a paragraph speaks with: its own, else its chapter's, else
    the project's."""
    for voice, version in (block_choice, chapter_choice):
        if voice:
            return voice, version
    return project.voice, project.voice_version


def voice_targets(
    session: Session, names: Iterable[str]
) -> dict[str, tuple[str | None, str | None]]:
    """``name -> (default version, pool)`` of the registered voices among ``names``."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows = session.execute(
        select(Voice.name, Voice.default_version, Voice.pool).where(Voice.name.in_(wanted))
    ).all()
    return {name: (default, pool) for name, default, pool in rows}


def _resolve(
    jobs: list[tuple[int, str, int, str, str | None]], session: Session
) -> list[SegmentJob]:
    """Pin each job's voice to an exact version (the chosen one, else the voice's default) and
    its pool. Built-in voices have neither."""
    targets = voice_targets(session, (j[3] for j in jobs))
    out = []
    for segment_id, text, attempts, voice, version in jobs:
        default, pool = targets.get(voice, (None, None))
        out.append(SegmentJob(segment_id, text, attempts, voice, version or default, pool))
    return out


def _outbox_row(task: TaskMessage, now: datetime, kind: str = OUTBOX_TASK) -> dict[str, object]:
    """The outbox row that publishes ``task`` (inserted in the same transaction as its segment)."""
    return {
        "kind": kind,
        "message_id": task.task_id,
        "body": task.to_wire().body.decode(),
        "created_at": now,
    }


def _queue(
    session: Session,
    *,
    project: Project,
    conversion: Conversion,
    segments: Iterable[SegmentJob],
    kind: str = OUTBOX_TASK,
) -> int:
    """Mark segments queued for ``conversion`` and add one outbox task per segment; each segment
    records the voice and exact version its task speaks with. ``SegmentJob.text`` is what the voice
    speaks (the spoken form after the lexicon). Returns how many were queued."""
    params = SynthesisParams(speed=project.speed)
    now = utcnow()
    updates: list[dict[str, object]] = []
    outbox: list[dict[str, object]] = []
    for job in segments:
        attempt = job.attempts + 1
        task = TaskMessage(
            task_id=new_task_id(job.segment_id, attempt),
            project_id=project.id,
            segment_id=job.segment_id,
            attempt=attempt,
            voice=job.voice,
            text=job.text,
            params=params,
            voice_version=job.voice_version,
            pool=job.pool,
            conversion_id=conversion.id,
        )
        updates.append(
            {
                "id": job.segment_id,
                "status": SegmentStatus.QUEUED,
                "attempts": attempt,
                "task_id": task.task_id,
                "conversion_id": conversion.id,
                "last_error": None,
                "voice": job.voice,
                "voice_version": job.voice_version,
                "updated_at": now,
            }
        )
        outbox.append(_outbox_row(task, now, kind))
    for i in range(0, len(updates), _CHUNK):
        session.execute(update(Segment), updates[i : i + _CHUNK])
        session.execute(insert(OutboxMessage), outbox[i : i + _CHUNK])
    return len(updates)


def start_conversion(
    session: Session, *, project: Project, force: bool = False, everything: bool = False
) -> Conversion:
    """Queue every segment of the project that is not done yet, in one transaction with its
    outbox rows.

    Args:
        session: The open session; the caller commits.
        project: The project to convert.
        force: Also re-queue segments still queued by an earlier conversion (their late results
            are then ignored, since they carry the old task id).
        everything: Queue the segments that have audio too (after a change of voice or speed);
            each keeps its current take as the previous one until the new one replaces it.

    Returns:
        The new conversion (``total`` may be 0 when everything is done already; it is then
        finished at once).

    Raises:
        ConflictError: A conversion of the project is still running and ``force`` is not set.
    """
    running = active_conversion(session, project_id=project.id)
    if running is not None and not force:
        finished = f"{running.done + running.failed} of {running.total} sentences finished"
        if running.stopped == "paused":
            raise ConflictError(
                f"the conversion of this project is paused ({finished}); resume it or cancel it"
            )
        raise ConflictError(
            f"the conversion of this project is still running ({finished}); wait for it to "
            'finish, or start again with {"force": true} to re-queue its remaining sentences'
        )
    wanted = [SegmentStatus.PENDING, SegmentStatus.FAILED]
    if force:
        wanted.append(SegmentStatus.QUEUED)
    if everything:
        wanted.append(SegmentStatus.DONE)
    if running is not None:
        running.finished_at = utcnow()  # superseded: its remaining segments move to the new one
    conversion = Conversion(project_id=project.id, kind="project", started_at=utcnow())
    session.add(conversion)
    session.flush()
    conversion.total = queue_where(
        session,
        project=project,
        conversion=conversion,
        condition=Segment.status.in_(wanted),
    )
    if conversion.total == 0:
        conversion.finished_at = conversion.started_at
    return conversion


def queue_where(
    session: Session, *, project: Project, conversion: Conversion, condition: ColumnElement[bool]
) -> int:
    """Queue the project's segments that match ``condition`` for ``conversion``, in reading
    order, each with its voice resolved and its text from the lexicon. Returns how many."""
    rows = session.execute(
        select(
            Segment.id,
            Segment.text,
            Segment.spoken_text,
            Segment.spoken_override,
            Segment.attempts,
            Chapter.voice,
            Chapter.voice_version,
            Block.voice,
            Block.voice_version,
        )
        .join(Block, Segment.block_id == Block.id)
        .join(Chapter, Block.chapter_id == Chapter.id)
        .where(Segment.project_id == project.id, condition)
        .order_by(Chapter.position, Block.position, Segment.position)
    ).all()
    lexicon = project_lexicon(session, project_id=project.id)
    jobs = [
        (
            r[0],
            task_text(r[1], r[2], r[3], lexicon),
            r[4],
            *effective_voice(project, (r[5], r[6]), (r[7], r[8])),
        )
        for r in rows
    ]
    return _queue(session, project=project, conversion=conversion, segments=_resolve(jobs, session))


def resynthesize(
    session: Session,
    *,
    segment: Segment,
    text: str | None = None,
    spoken_text: str | None = None,
    latest_voice: bool = False,
    interactive: bool = True,
) -> Conversion:
    """Queue one segment again through the outbox, optionally with corrected text (its spoken
    form is computed again) or a spoken form of the user's own (kept as an override until the
    text is corrected). ``interactive`` puts its task in the interactive lane (a user is
    waiting for it); ``False`` queues it behind the books, as before lanes existed.

    The segment keeps the voice version it was last spoken with (an old book stays in the voice
    it was made with) unless ``latest_voice`` is set, or its paragraph, chapter or project now
    names another voice or version.

    Raises:
        ConflictError: The segment is queued right now.
        text_processing.ssml.SsmlError: ``text`` or ``spoken_text`` holds invalid SSML.
    """
    if segment.status == SegmentStatus.QUEUED:
        raise ConflictError(
            "this sentence is being synthesized right now; wait until it is done or "
            "failed, then resynthesize it"
        )
    from text_processing.frontend import spoken_form

    lexicon = project_lexicon(session, project_id=segment.project_id)
    if spoken_text is not None:
        spoken_form(spoken_text, lexicon)  # refuse invalid SSML before anything changes
        segment.spoken_text = spoken_text
        segment.spoken_override = True
    if text is not None:
        if text != segment.text and segment.status == SegmentStatus.DONE:
            segment.previous_text = segment.text  # what the take about to be replaced says
        segment.text = text
        if spoken_text is None:
            segment.spoken_text = spoken_form(text, lexicon)
            segment.spoken_override = False
    project = session.get(Project, segment.project_id)
    assert project is not None  # a foreign key guarantees it
    block = session.get(Block, segment.block_id)
    chapter = session.get(Chapter, segment.chapter_id)
    assert block is not None and chapter is not None
    voice, version = effective_voice(
        project, (chapter.voice, chapter.voice_version), (block.voice, block.voice_version)
    )
    if version is None and not latest_voice and segment.voice == voice:
        version = segment.voice_version  # the version that spoke it before
    conversion = Conversion(project_id=project.id, kind="segment", started_at=utcnow())
    session.add(conversion)
    session.flush()
    conversion.total = _queue(
        session,
        project=project,
        conversion=conversion,
        segments=_resolve(
            [
                (
                    segment.id,
                    task_text(segment.text, segment.spoken_text, segment.spoken_override, lexicon),
                    segment.attempts,
                    voice,
                    version,
                )
            ],
            session,
        ),
        kind=OUTBOX_INTERACTIVE_TASK if interactive else OUTBOX_TASK,
    )
    session.refresh(segment)
    return conversion


def swap_takes(session: Session, *, segment: Segment) -> None:
    """Exchange the segment's current and previous take (audio or its object key, lengths,
    timings, and the text each one spoke when a correction changed it; the spoken form follows
    the text).

    Raises:
        ConflictError: There is no previous take, or the segment is being synthesized.
    """
    if segment.status == SegmentStatus.QUEUED:
        raise ConflictError(
            "this sentence is being synthesized right now; wait until it is done, then compare"
        )
    has_previous = segment.previous_audio is not None or segment.previous_audio_key is not None
    has_current = segment.audio is not None or segment.audio_key is not None
    if not (has_previous and has_current):
        raise ConflictError("this sentence has no previous take to pick")
    segment.audio, segment.previous_audio = segment.previous_audio, segment.audio
    segment.audio_key, segment.previous_audio_key = segment.previous_audio_key, segment.audio_key
    segment.timings, segment.previous_timings = segment.previous_timings, segment.timings
    segment.sample_rate, segment.previous_sample_rate = (
        segment.previous_sample_rate,
        segment.sample_rate,
    )
    segment.num_samples, segment.previous_num_samples = (
        segment.previous_num_samples,
        segment.num_samples,
    )
    segment.duration_ms, segment.previous_duration_ms = (
        segment.previous_duration_ms,
        segment.duration_ms,
    )
    segment.status = SegmentStatus.DONE
    segment.last_error = None
    if segment.previous_text is not None and segment.previous_text != segment.text:
        from text_processing.frontend import spoken_form

        segment.text, segment.previous_text = segment.previous_text, segment.text
        lexicon = project_lexicon(session, project_id=segment.project_id)
        segment.spoken_text = spoken_form(segment.text, lexicon)
        segment.spoken_override = False


def requeue_unpublished(session: Session, *, queued_before: datetime | None = None) -> int:
    """Add outbox rows again for queued segments whose task is in no outbox row.

    For a transport that keeps messages only in memory (the embedded mode): after a restart,
    the queued tasks are gone with the old process, while the database still says ``queued``.
    The tasks keep their ids, so a result that did arrive is not applied twice.

    Args:
        session: The open session; the caller commits.
        queued_before: Only segments last changed before this time (the stuck sweep of
            :mod:`api.dead_letters`); their ``updated_at`` is set to now, so the next sweep
            waits a whole period again.
    """
    pending = select(OutboxMessage.message_id)
    query = (
        select(Segment, Project)
        .join(Project, Segment.project_id == Project.id)
        .where(Segment.status == SegmentStatus.QUEUED, Segment.task_id.not_in(pending))
    )
    if queued_before is not None:
        query = query.where(Segment.updated_at < queued_before).with_for_update(
            of=Segment, skip_locked=True
        )
    rows = session.execute(query).all()
    lexicons: dict[int, Lexicon] = {}
    now = utcnow()
    outbox = []
    targets = voice_targets(session, (s.voice or p.voice for s, p in rows))
    for segment, project in rows:
        assert segment.task_id is not None
        voice = segment.voice or project.voice
        task = TaskMessage(
            task_id=segment.task_id,
            project_id=project.id,
            segment_id=segment.id,
            attempt=segment.attempts,
            voice=voice,
            text=task_text(
                segment.text,
                segment.spoken_text,
                segment.spoken_override,
                lexicons.setdefault(project.id, project_lexicon(session, project_id=project.id)),
            ),
            params=SynthesisParams(speed=project.speed),
            voice_version=segment.voice_version,
            pool=targets.get(voice, (None, None))[1],
            conversion_id=segment.conversion_id,
        )
        outbox.append(_outbox_row(task, now))
        if queued_before is not None:
            segment.updated_at = now
    for i in range(0, len(outbox), _CHUNK):
        session.execute(insert(OutboxMessage), outbox[i : i + _CHUNK])
    return len(outbox)
