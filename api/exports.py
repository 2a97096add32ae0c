"""Audio downloads: one segment, a chapter, or the whole project as one file.

Segments are joined with :func:`audio.codecs.join`: a short pause between the sentences of a
paragraph, a longer one between paragraphs, and a longer one still between chapters. A chapter is
built in memory; a project is built one chapter at a time (streamed for WAV, whose length is known
up front from the stored sample counts; written to a temporary file for the compressed formats),
so a long book does not need its whole length in memory.
"""

from __future__ import annotations

import io
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, object_session, sessionmaker

from api.audio_store import segment_audio, segment_audios
from api.models import Block, Chapter, Project, Segment, SegmentStatus
from audio import codecs as audio
from audio.mastering import Preset, master
from audio.resample import resample, resampled_length
from contract import limits

log = logging.getLogger(__name__)

SENTENCE_PAUSE_MS = limits.SENTENCE_PAUSE_MS
PARAGRAPH_PAUSE_MS = limits.PARAGRAPH_PAUSE_MS
CHAPTER_PAUSE_MS = 1500


class NotReadyError(Exception):
    """The audio cannot be built yet; the message says why and what to do."""


@dataclass(frozen=True)
class Layout:
    """What a download will contain: per chapter, segment lengths grouped by paragraph."""

    chapter_ids: list[int]
    lengths: list[list[list[int]]]
    sample_rate: int

    def total_samples(self) -> int:
        """Length of the joined audio in samples."""
        gap = audio.pause_samples(CHAPTER_PAUSE_MS, self.sample_rate)
        per_chapter = [
            audio.joined_length(
                paragraphs,
                self.sample_rate,
                sentence_pause_ms=SENTENCE_PAUSE_MS,
                paragraph_pause_ms=PARAGRAPH_PAUSE_MS,
            )
            for paragraphs in self.lengths
        ]
        present = [n for n in per_chapter if n]
        return sum(present) + gap * max(0, len(present) - 1)


# The words the web UI uses for each status (messages speak the page's words).
_STATUS_WORDS = {"queued": "in progress", "pending": "not converted", "failed": "failed"}


def _require_done(session: Session, where: object, what: str) -> None:
    rows = session.execute(
        select(Segment.status, func.count(Segment.id)).where(where).group_by(Segment.status)  # type: ignore[arg-type]
    ).all()
    counts = {SegmentStatus(s).value: n for s, n in rows}
    total = sum(counts.values())
    if total == 0:
        raise NotReadyError(f"{what} has no sentences yet; add a document first")
    done = counts.get("done", 0)
    if done < total:
        missing = ", ".join(
            f"{counts[s]} {_STATUS_WORDS[s]}"
            for s in ("queued", "pending", "failed")
            if counts.get(s)
        )
        todo = []
        if counts.get("queued"):
            todo.append("wait for the conversion to finish")
        if counts.get("pending"):
            todo.append("press Convert")
        if counts.get("failed"):
            todo.append("retry or fix the failed sentences")
        raise NotReadyError(
            f"{what} is not ready yet: {done} of {total} sentences have audio ({missing}); "
            + ", then ".join(todo)
        )


def layout(
    session: Session, *, project_id: int | None = None, chapter_id: int | None = None
) -> Layout:
    """Check that every segment in scope is done and describe the download.

    Raises:
        NotReadyError: Some segment is not done, or there are none.
    """
    if chapter_id is not None:
        where = Segment.chapter_id == chapter_id
        title = session.scalar(select(Chapter.title).where(Chapter.id == chapter_id))
        what = f"the chapter “{title}”" if title is not None else "the chapter"
    else:
        where = Segment.project_id == project_id
        name = session.scalar(select(Project.name).where(Project.id == project_id))
        what = f"the project “{name}”" if name is not None else "the project"
    _require_done(session, where, what)
    rows = session.execute(
        select(Chapter.id, Block.id, Segment.sample_rate, Segment.num_samples)
        .join(Block, Segment.block_id == Block.id)
        .join(Chapter, Block.chapter_id == Chapter.id)
        .where(where)
        .order_by(Chapter.position, Block.position, Segment.position)
    ).all()
    # Several voices may speak at different rates (a narrator and a quoted speaker): the file is
    # at the highest, the others are resampled to it.
    rates = {int(r or 0) for _, _, r, _ in rows}
    target = max(rates)
    chapter_ids: list[int] = []
    lengths: list[list[list[int]]] = []
    last_block = None
    for chapter, block, rate, n in rows:
        if not chapter_ids or chapter_ids[-1] != chapter:
            chapter_ids.append(chapter)
            lengths.append([])
            last_block = None
        if block != last_block:
            lengths[-1].append([])
            last_block = block
        lengths[-1][-1].append(resampled_length(int(n or 0), int(rate or target), target))
    return Layout(chapter_ids, lengths, target)


def chapter_samples(session: Session, chapter_id: int, sample_rate: int) -> np.ndarray:
    """A chapter's segments joined with pauses (every segment must be done)."""
    rows = session.execute(
        select(Segment.block_id, Segment.audio, Segment.audio_key)
        .join(Block, Segment.block_id == Block.id)
        .where(Segment.chapter_id == chapter_id)
        .order_by(Block.position, Segment.position)
    ).all()
    paragraphs: list[list[np.ndarray]] = []
    last_block = None
    stored = segment_audios(session, [(data, key) for _, data, key in rows])
    for (block_id, _, _), data in zip(rows, stored, strict=True):
        if block_id != last_block:
            paragraphs.append([])
            last_block = block_id
        samples, rate = audio.decode(data) if data else (np.zeros(0, np.int16), sample_rate)
        paragraphs[-1].append(resample(samples, rate, sample_rate))
    return audio.join(
        paragraphs,
        sample_rate,
        sentence_pause_ms=SENTENCE_PAUSE_MS,
        paragraph_pause_ms=PARAGRAPH_PAUSE_MS,
    )


def encode_chapter(
    session: Session, chapter_id: int, fmt: str, mastering: Preset | None = None
) -> bytes:
    """A chapter's audio file, mastered to a preset if one is given.

    Raises:
        NotReadyError: Some segment of the chapter is not done.
    """
    plan = layout(session, chapter_id=chapter_id)
    samples, rate = mastered_chapter(session, chapter_id, plan, mastering)
    bit_rate = mastering.bit_rate if mastering and mastering.format == fmt else None
    if bit_rate:
        out = io.BytesIO()
        audio.encode_to(out, [samples], rate, fmt, bit_rate=bit_rate)
        return out.getvalue()
    return audio.encode(samples, rate, fmt)


def mastered_chapter(
    session: Session, chapter_id: int, plan: Layout, mastering: Preset | None
) -> tuple[np.ndarray, int]:
    """One chapter's joined audio, mastered if asked (:func:`audio.mastering.master`, at the
    preset's rate): the samples (int16, or float when mastered) and their rate."""
    samples = chapter_samples(session, chapter_id, plan.sample_rate)
    if mastering is None:
        return samples, plan.sample_rate
    rate = mastering.sample_rate or plan.sample_rate
    if rate != plan.sample_rate:
        samples = resample(samples, plan.sample_rate, rate)
    return master(samples, rate, mastering), rate


def _chapters(
    session_factory: sessionmaker[Session], plan: Layout, mastering: Preset | None = None
) -> Iterator[np.ndarray]:
    """Each chapter's samples in turn (mastered chapter by chapter if asked), with the chapter
    pause before all but the first."""
    rate = (mastering.sample_rate if mastering else None) or plan.sample_rate
    gap = np.zeros(audio.pause_samples(CHAPTER_PAUSE_MS, rate), dtype=np.int16)
    first = True
    with session_factory() as session:
        for chapter_id in plan.chapter_ids:
            samples, _ = mastered_chapter(session, chapter_id, plan, mastering)
            if not len(samples):
                continue
            if not first:
                yield gap
            first = False
            yield samples
            session.expunge_all()  # keep one chapter's audio in memory, not the whole book


def stream_project_wav(session_factory: sessionmaker[Session], plan: Layout) -> Iterator[bytes]:
    """The project as a WAV stream: an exact header, then one chapter at a time."""
    yield audio.wav_header(plan.sample_rate, plan.total_samples())
    for piece in _chapters(session_factory, plan):
        yield audio.pcm_bytes(piece)


def write_project(
    session_factory: sessionmaker[Session],
    plan: Layout,
    fmt: str,
    mastering: Preset | None = None,
) -> IO[bytes]:
    """The project encoded as ``fmt`` (flac, mp3, ogg; wav when mastered) in a temporary file,
    positioned at 0, each chapter mastered to ``mastering`` if given.

    The caller closes the file (which deletes it).
    """
    out = tempfile.TemporaryFile(prefix="voxmill-export-")  # noqa: SIM115 - returned open
    rate = (mastering.sample_rate if mastering else None) or plan.sample_rate
    bit_rate = mastering.bit_rate if mastering and mastering.format == fmt else None
    try:
        chapters = _chapters(session_factory, plan, mastering)
        audio.encode_to(out, chapters, rate, fmt, bit_rate=bit_rate)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def segment_file(segment: Segment, fmt: str) -> bytes:
    """One segment's audio as ``fmt`` (the stored FLAC as is, otherwise re-encoded).

    Raises:
        NotReadyError: The segment has no audio.
    """
    session = object_session(segment)
    data = segment_audio(session, segment.audio, segment.audio_key) if session else segment.audio
    if segment.status != SegmentStatus.DONE or not data:
        state = _STATUS_WORDS.get(segment.status.value, segment.status.value) + (
            f": {segment.last_error}" if segment.last_error else ""
        )
        raise NotReadyError(
            f"this sentence has no audio yet (it is {state}); convert or re-synthesize it, and "
            "wait until it is done"
        )
    return encoded(data, fmt)


def encoded(flac: bytes, fmt: str) -> bytes:
    """Stored FLAC as ``fmt`` (as is for FLAC, otherwise decoded and encoded again)."""
    if fmt == "flac":
        return flac
    samples, rate = audio.decode(flac)
    return audio.encode(samples, rate, fmt)
