"""Request and response bodies of the ``/v1`` API (they are the OpenAPI schemas)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from api.crud import StatusCounts
from api.models import Conversion, SegmentStatus
from api.progress import compute_progress
from contract import limits

AudioFormat = Literal["wav", "flac", "mp3", "ogg"]


class ErrorOut(BaseModel):
    """Every error: what was wrong and what to do."""

    detail: str


class ProjectCreate(BaseModel):
    """A new project."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, examples=["My audiobook"])
    voice: str | None = Field(
        default=None, max_length=100, description="voice name; default VOXMILL_DEFAULT_VOICE"
    )
    speed: float = Field(
        default=limits.SPEED_DEFAULT,
        ge=limits.SPEED_MIN,
        le=limits.SPEED_MAX,
        allow_inf_nan=False,  # NaN: "a finite number", not a bound it does not break
        description="speaking rate, 1.0 = normal",
    )


class ProjectOut(BaseModel):
    """A project."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    voice: str
    voice_version: str | None = Field(
        default=None, description="pinned version of a registered voice; null follows its default"
    )
    speed: float
    created_at: datetime


class ProjectUpdate(BaseModel):
    """Changes to a project: a field left out stays as it is. The voice is chosen with
    ``PUT /v1/projects/{id}/voice``. A new speed applies to sentences synthesized from then on;
    start a conversion with ``everything: true`` to re-synthesize the rest."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    speed: float | None = Field(
        default=None,
        ge=limits.SPEED_MIN,
        le=limits.SPEED_MAX,
        allow_inf_nan=False,  # NaN: "a finite number", not a bound it does not break
        description="speaking rate, 1.0 = normal",
    )


class ProjectList(BaseModel):
    """A page of projects, newest first."""

    items: list[ProjectOut]
    total: int


class Counts(BaseModel):
    """Segments per status."""

    pending: int = 0
    queued: int = 0
    done: int = 0
    failed: int = 0
    total: int = 0

    @classmethod
    def of(cls, counts: StatusCounts) -> Counts:
        """From :class:`api.crud.StatusCounts`."""
        return cls(
            pending=counts.pending,
            queued=counts.queued,
            done=counts.done,
            failed=counts.failed,
            total=counts.total,
        )


class ChapterSummary(BaseModel):
    """A chapter with its status counts."""

    id: int
    position: int
    title: str
    counts: Counts
    document_id: int | None = Field(default=None, description="the document it came from")
    voice: str | None = Field(default=None, description="the chapter's own voice, if any")
    voice_version: str | None = None


class DocumentOut(BaseModel):
    """A stored document and the chapters it was split into."""

    id: int
    project_id: int
    filename: str | None
    format: str
    kind: str | None = Field(
        default=None,
        description="what the file was read as: text, markdown, ssml, html, epub, docx, pdf",
    )
    created_at: datetime
    chapters: list[ChapterSummary]
    segments: int


class DocumentText(BaseModel):
    """Pasted text (instead of a file upload)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    format: Literal["auto", "markdown", "text", "ssml", "html"] = Field(
        default="auto",
        description=(
            "how to read the text; 'auto' (the default) reads it as Markdown when it is written "
            "in Markdown (headings, emphasis, links, lists), else as plain text"
        ),
    )
    filename: str | None = Field(default=None, max_length=255)


class ConversionStart(BaseModel):
    """Options for starting a conversion."""

    model_config = ConfigDict(extra="forbid")

    force: StrictBool = Field(
        default=False,
        description="also re-queue segments still queued by a running conversion",
    )
    everything: StrictBool = Field(
        default=False,
        description=(
            "re-synthesize every sentence, those with audio too (after a change of voice or "
            "speed); false: only the sentences without audio"
        ),
    )


class ConversionOut(BaseModel):
    """A conversion's progress (``GET /v1/conversions/{id}``, and inside live events)."""

    id: int
    project_id: int
    kind: str
    state: Literal["running", "paused", "cancelled", "finished"] = Field(
        description=(
            "running; paused (no new sentences are synthesized until it is resumed); cancelled "
            "(stopped for good, its unfinished sentences are back to not converted); finished"
        )
    )
    total: int
    done: int
    failed: int
    queued: int
    percent: float
    rate_per_s: float | None = Field(description="segments finished per second so far")
    eta_s: float | None = Field(description="estimated seconds to finish; null before any rate")
    started_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, conversion: Conversion, now: datetime) -> ConversionOut:
        """From a :class:`api.models.Conversion` at time ``now``."""
        return cls.of_counters(
            id=conversion.id,
            project_id=conversion.project_id,
            kind=conversion.kind,
            total=conversion.total,
            done=conversion.done,
            failed=conversion.failed,
            started_at=conversion.started_at,
            finished_at=conversion.finished_at,
            now=now,
            stopped=conversion.stopped,
        )

    @classmethod
    def of_counters(
        cls,
        *,
        id: int,
        project_id: int,
        kind: str,
        total: int,
        done: int,
        failed: int,
        started_at: datetime,
        finished_at: datetime | None,
        now: datetime,
        stopped: str | None = None,
    ) -> ConversionOut:
        """From a conversion's stored counters (as an UPDATE ... RETURNING gives them);
        ``stopped`` is ``"paused"`` or ``"cancelled"`` when the user stopped it."""
        progress = compute_progress(
            total=total,
            done=done,
            failed=failed,
            started_at=started_at,
            now=now,
            finished_at=finished_at,
        )
        return cls(
            id=id,
            project_id=project_id,
            kind=kind,
            state=_state(stopped, progress.finished),
            total=progress.total,
            done=progress.done,
            failed=progress.failed,
            queued=progress.queued,
            percent=progress.percent,
            rate_per_s=progress.rate_per_s,
            eta_s=progress.eta_s if stopped is None else None,
            started_at=started_at,
            finished_at=finished_at,
        )


def _state(
    stopped: str | None, finished: bool
) -> Literal["running", "paused", "cancelled", "finished"]:
    if stopped == "cancelled":
        return "cancelled"
    if stopped == "paused" and not finished:
        return "paused"
    return "finished" if finished else "running"


class DocumentSummary(BaseModel):
    """A document of a project (delete it with
    ``DELETE /v1/projects/{project_id}/documents/{id}``)."""

    id: int
    filename: str | None
    kind: str | None
    created_at: datetime


class ProjectDetail(ProjectOut):
    """A project with its chapters and status counts (also the SSE ``snapshot`` event)."""

    counts: Counts
    chapters: list[ChapterSummary]
    active_conversion: ConversionOut | None
    documents: list[DocumentSummary] = Field(default_factory=list)


class SegmentOut(BaseModel):
    """One sentence."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    chapter_id: int
    block_id: int
    position: int
    text: str = Field(description="the sentence as written (markup removed)")
    spoken_text: str = Field(
        default="",
        description=(
            "what the voice is given: the front end's spoken form (numbers, dates, abbreviations "
            "in words; the project's lexicon applied; SSML kept), or the user's own "
            "(spoken_override); empty when nothing in the sentence can be spoken (a pause)"
        ),
    )
    spoken_override: bool = Field(default=False, description="spoken_text was written by a user")
    source_start: int = Field(description="start offset in the document's source text")
    source_end: int = Field(description="end offset (exclusive) in the document's source text")
    status: SegmentStatus
    attempts: int
    last_error: str | None
    duration_ms: int | None
    sample_rate: int | None
    voice: str | None = Field(default=None, description="the voice last queued for it")
    voice_version: str | None = Field(default=None, description="its exact version")
    needs_review: bool = Field(default=False, description="flagged by a user for another listen")
    previous_duration_ms: int | None = Field(
        default=None,
        description=(
            "length of the take a re-synthesis replaced (null: none kept); listen with "
            "``GET /v1/segments/{id}/audio?take=previous``, pick it back with "
            "``POST /v1/segments/{id}/takes/swap``"
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _spoken_of_old_rows(cls, data: Any) -> Any:
        # Segments stored before the spoken form existed show the front end's output.
        if not isinstance(data, dict) and getattr(data, "spoken_text", "") is None:
            from text_processing.frontend import spoken_form

            values = {name: getattr(data, name, None) for name in cls.model_fields}
            values["spoken_text"] = spoken_form(values["text"] or "")
            values["spoken_override"] = False
            return values
        return data


class SegmentUpdate(BaseModel):
    """Proofing marks on a sentence."""

    model_config = ConfigDict(extra="forbid")

    needs_review: StrictBool = Field(
        description="flag the sentence for another listen, or clear it"
    )


class BlockOut(BaseModel):
    """A paragraph and its sentences."""

    id: int
    position: int
    segments: list[SegmentOut]
    voice: str | None = Field(default=None, description="the paragraph's own voice, if any")
    voice_version: str | None = None


class ChapterDetail(BaseModel):
    """A chapter, its paragraphs and sentences."""

    id: int
    project_id: int
    position: int
    title: str
    counts: Counts
    blocks: list[BlockOut]
    voice: str | None = None
    voice_version: str | None = None


class ResynthesizeRequest(BaseModel):
    """Optionally corrected text, or an own spoken form, for a segment."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.MAX_SEGMENT_CHARS,
        description="corrected sentence (plain or SSML); its spoken form is computed again",
    )
    spoken_text: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.MAX_SEGMENT_CHARS,
        description=(
            "the spoken form to use instead of the front end's (plain words or SSML), kept until "
            "the text is corrected; omit both fields to synthesize the segment again as it is"
        ),
    )
    latest_voice: StrictBool = Field(
        default=False,
        description="speak with the voice's current default version instead of the version "
        "that spoke this segment before",
    )


class LexiconEntryIn(BaseModel):
    """A pronunciation: ``grapheme`` is read as ``alias`` (words) or ``phoneme`` (IPA)."""

    model_config = ConfigDict(extra="forbid")

    grapheme: str = Field(
        min_length=1, max_length=limits.MAX_LEXICON_GRAPHEME_CHARS, examples=["Nguyen"]
    )
    alias: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.MAX_LEXICON_PRONUNCIATION_CHARS,
        examples=["win"],
    )
    phoneme: str | None = Field(
        default=None,
        min_length=1,
        max_length=limits.MAX_LEXICON_PRONUNCIATION_CHARS,
        examples=["ŋwiən"],
    )


class LexiconEntryOut(BaseModel):
    """A lexicon entry."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    grapheme: str
    alias: str | None
    phoneme: str | None
    created_at: datetime


class LexiconOut(BaseModel):
    """A project's pronunciation lexicon."""

    items: list[LexiconEntryOut]
    total: int


class ResynthesizeOut(BaseModel):
    """The re-queued segment and the conversion that tracks it."""

    segment: SegmentOut
    conversion: ConversionOut
