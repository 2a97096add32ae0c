"""The database tables: project → document, project → chapter → block → segment, conversions and
the transactional outbox.

Segments carry everything a conversion needs: the spoken text, where it came from in the
document, its status and the current task's id (the idempotency key for results), and the audio
itself as lossless FLAC bytes. Positions order chapters within a project, blocks within a chapter
and segments within a block.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements INTEGER PRIMARY KEY; Postgres gets a real 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Now, timezone-aware (UTC)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite stores no time zone and hands back naive values; they are UTC because only UTC is
    ever written.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class SegmentStatus(StrEnum):
    """Where a segment stands in its conversion."""

    PENDING = "pending"
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Project(Base):
    """A user's project: one voice, any number of documents."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    voice: Mapped[str] = mapped_column(String(100))
    # A pinned version of a registered voice; None follows the voice's default version.
    voice_version: Mapped[str | None] = mapped_column(String(20))
    speed: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The mastering preset downloads use unless they name one (audio/mastering.py); None: none.
    mastering: Mapped[str | None] = mapped_column(String(20))
    # The author written into audiobook files (M4B, per-chapter tags).
    author: Mapped[str | None] = mapped_column(String(200))
    # The cover image of audiobook files (JPEG or PNG) and its media type.
    cover: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    cover_type: Mapped[str | None] = mapped_column(String(40))

    chapters: Mapped[list[Chapter]] = relationship(
        back_populates="project", order_by="Chapter.position", passive_deletes=True
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="project", order_by="Document.id", passive_deletes=True
    )


class Document(Base):
    """An uploaded or pasted document, its source text kept as received (after decoding)."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(20))
    # What the file was uploaded as (epub, docx, pdf, html, ssml, markdown, text).
    kind: Mapped[str | None] = mapped_column(String(20))
    source_text: Mapped[str] = mapped_column(Text, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="documents")


class Chapter(Base):
    """A chapter; ``position`` orders it within its project (across documents)."""

    __tablename__ = "chapters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    # Another voice for this chapter (None: the project's).
    voice: Mapped[str | None] = mapped_column(String(100))
    voice_version: Mapped[str | None] = mapped_column(String(20))

    project: Mapped[Project] = relationship(back_populates="chapters")
    blocks: Mapped[list[Block]] = relationship(
        back_populates="chapter", order_by="Block.position", passive_deletes=True
    )


class Block(Base):
    """A paragraph (or heading, list item, table row) of a chapter."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    chapter_id: Mapped[int] = mapped_column(
        ForeignKey("chapters.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    # Another voice for this paragraph, e.g. a quoted speaker (None: the chapter's).
    voice: Mapped[str | None] = mapped_column(String(100))
    voice_version: Mapped[str | None] = mapped_column(String(20))

    chapter: Mapped[Chapter] = relationship(back_populates="blocks")
    segments: Mapped[list[Segment]] = relationship(
        back_populates="block", order_by="Segment.position", passive_deletes=True
    )


class Segment(Base):
    """One sentence to synthesize and, once done, its audio.

    ``task_id`` is the id of the task currently allowed to complete the segment: a result whose
    task id differs (an older attempt, a duplicate after a resynthesis) changes nothing.
    """

    __tablename__ = "segments"
    __table_args__ = (Index("ix_segments_project_status", "project_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # project_id and chapter_id repeat what the block implies; they keep status counts and
    # downloads to one indexed table.
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    chapter_id: Mapped[int] = mapped_column(
        ForeignKey("chapters.id", ondelete="CASCADE"), index=True
    )
    block_id: Mapped[int] = mapped_column(ForeignKey("blocks.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source_start: Mapped[int] = mapped_column(Integer)
    source_end: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    # The spoken form (the front end's output with the project's lexicon, or a user's own when
    # ``spoken_override``); "" when nothing in the sentence can be spoken (it becomes a pause).
    spoken_text: Mapped[str | None] = mapped_column(Text)
    spoken_override: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[SegmentStatus] = mapped_column(
        SAEnum(
            SegmentStatus,
            name="segment_status",
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
            create_constraint=True,
        ),
        default=SegmentStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    task_id: Mapped[str | None] = mapped_column(String(64))
    conversion_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversions.id", ondelete="SET NULL"), index=True
    )
    audio: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    # The audio's key in the object store when VOXMILL_AUDIO_STORE=objects (then ``audio`` is
    # NULL); content-addressed, see api/audio_store.py.
    audio_key: Mapped[str | None] = mapped_column(String(200), index=True)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    num_samples: Mapped[int | None] = mapped_column(BigInteger)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    # Word and sentence times of ``audio`` (contract.timings.Timings as JSON), from the voice.
    timings: Mapped[dict[str, object] | None] = mapped_column(JSON, deferred=True)
    worker: Mapped[str | None] = mapped_column(String(200))
    # The voice and exact version the current task speaks with (recorded when it is queued; a
    # re-synthesis keeps the version unless asked for the newest).
    voice: Mapped[str | None] = mapped_column(String(100))
    voice_version: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Proofing: flagged by the user for another listen, and the take a re-synthesis replaced (so
    # the two can be compared and the old one picked back).
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    previous_audio: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    previous_text: Mapped[str | None] = mapped_column(Text)
    previous_sample_rate: Mapped[int | None] = mapped_column(Integer)
    previous_num_samples: Mapped[int | None] = mapped_column(BigInteger)
    previous_duration_ms: Mapped[int | None] = mapped_column(Integer)
    # The previous take's object (segment audio in the object store) and its timings.
    previous_audio_key: Mapped[str | None] = mapped_column(String(200), index=True)
    previous_timings: Mapped[dict[str, object] | None] = mapped_column(JSON, deferred=True)

    block: Mapped[Block] = relationship(back_populates="segments")


class Conversion(Base):
    """One request to synthesize a set of segments, with its progress counters.

    ``done`` and ``failed`` are incremented in the same transaction that stores a result, and only
    when that result was applied, so redelivered results are never counted twice.
    """

    __tablename__ = "conversions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20), default="project")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "paused" (no new tasks until resumed) or "cancelled" (finished early); None while it runs
    # or once it finished by itself.
    stopped: Mapped[str | None] = mapped_column(String(20))


class OutboxMessage(Base):
    """A message committed with the change that caused it, published later by the relay.

    ``kind`` names the destination (``task``) rather than a queue, so the queue prefix stays a
    deployment setting and not data.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class LexiconEntry(Base):
    """One pronunciation of a project's lexicon: ``grapheme`` read as ``alias`` or ``phoneme``."""

    __tablename__ = "lexicon_entries"
    __table_args__ = (
        UniqueConstraint("project_id", "grapheme", name="uq_lexicon_entries_project_grapheme"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    grapheme: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str | None] = mapped_column(String(200))
    phoneme: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Voice(Base):
    """A registered (uploaded) voice: its description, serving settings and default version.

    Built-in voices (archives shipped in the image's model store, like ``joe``) have no row.
    """

    __tablename__ = "voices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    language: Mapped[str] = mapped_column(String(35))
    gender: Mapped[str | None] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    pool: Mapped[str] = mapped_column(String(20), default="cpu")
    default_version: Mapped[str | None] = mapped_column(String(20))
    workers: Mapped[int] = mapped_column(Integer, default=1)
    batch_size: Mapped[int] = mapped_column(Integer, default=1)
    max_batch_delay_ms: Mapped[int] = mapped_column(Integer, default=5)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    versions: Mapped[list[VoiceVersion]] = relationship(
        back_populates="voice", order_by="VoiceVersion.number", passive_deletes=True
    )


class VoiceVersion(Base):
    """One uploaded version of a voice: its archive in the model store and its sample."""

    __tablename__ = "voice_versions"
    __table_args__ = (UniqueConstraint("voice_id", "number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    voice_id: Mapped[int] = mapped_column(ForeignKey("voices.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    family: Mapped[str] = mapped_column(String(20))
    archive_key: Mapped[str] = mapped_column(String(200))
    archive_sha256: Mapped[str] = mapped_column(String(64))
    archive_bytes: Mapped[int] = mapped_column(BigInteger)
    sample_text: Mapped[str] = mapped_column(Text)
    sample_audio: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    sample_rate: Mapped[int] = mapped_column(Integer)
    sample_duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))

    voice: Mapped[Voice] = relationship(back_populates="versions")

    @property
    def version(self) -> str:
        """The version's name, as TorchServe knows it (``/predictions/<voice>/<version>``)."""
        return str(self.number)


# ---------------------------------------------------------------------------------------------
# Batch jobs, webhooks and bucket ingest (issue 13)


class JobStatus(StrEnum):
    """Where a job stands. ``finalizing``: the outputs are being written."""

    RUNNING = "running"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A job in these states still needs its project; it may not be deleted under it.
ACTIVE_JOB_STATUSES = (JobStatus.RUNNING, JobStatus.FINALIZING)


class Job(Base):
    """A batch job: one document in, audio (and timings if asked) out to a bucket prefix.

    The document becomes a project of its own (``project_id``) converted by the usual pipeline;
    the job adds where the outputs go, who to call back, and an idempotency key.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.RUNNING, index=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="SET NULL"), index=True
    )
    conversion_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversions.id", ondelete="SET NULL")
    )
    voice: Mapped[str] = mapped_column(String(100))
    format: Mapped[str] = mapped_column(String(10))
    # Comma-separated timing/subtitle formats asked for ("srt,vtt"); "" for none.
    timings: Mapped[str] = mapped_column(String(100), default="")
    output_bucket: Mapped[str] = mapped_column(String(255))
    output_prefix: Mapped[str] = mapped_column(String(700), default="")
    output_name: Mapped[str] = mapped_column(String(255))
    callback_url: Mapped[str | None] = mapped_column(String(2048))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))
    source_ref: Mapped[str | None] = mapped_column(String(1200))
    # JSON list of {"kind", "format", "bucket", "key", "bytes"} once completed.
    outputs: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IngestedObject(Base):
    """An input-bucket object that started a job: the deduplication key of bucket ingest."""

    __tablename__ = "ingested_objects"
    __table_args__ = (
        UniqueConstraint("bucket", "key", "etag", name="uq_ingested_objects_bucket_key_etag"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookMessage(Base):
    """One event to deliver to a job's callback URL, retried until delivered or out of time.

    ``id`` is the Standard Webhooks ``webhook-id`` (the same on every attempt, so receivers can
    deduplicate).
    """

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookAttempt(Base):
    """One delivery attempt of a :class:`WebhookMessage`: what the receiver answered."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
