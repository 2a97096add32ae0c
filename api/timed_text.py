"""Timed text of a segment, a chapter or a project: JSON, SubRip (``.srt``) and WebVTT (``.vtt``).

Each stored segment carries the word and sentence times its voice measured (``segments.timings``,
milliseconds from the start of the segment's audio). A chapter's or a project's time line is the
download's: segments placed exactly where :mod:`api.exports` puts their audio, with the same
sentence, paragraph and chapter pauses (:func:`segment_offsets`), so subtitles line up with the
downloaded file. One cue per segment (a sentence, as written in the document); words in JSON.

SubRip is written by the ``srt`` package and WebVTT by ``webvtt-py``: the formats' escaping and
time stamps are theirs.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from api.exports import CHAPTER_PAUSE_MS, PARAGRAPH_PAUSE_MS, SENTENCE_PAUSE_MS
from api.models import Block, Chapter, Segment, SegmentStatus
from audio.codecs import pause_samples
from audio.resample import resampled_length
from contract.timings import Span, Timings

TimedTextFormat = Literal["json", "srt", "vtt"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "srt": "application/x-subrip",
    "vtt": "text/vtt",
}


@dataclass(frozen=True)
class Placed:
    """One done segment on a time line: its text, where it starts, how long it lasts (ms), and
    its own timings (``None`` for audio stored before timings existed)."""

    segment_id: int
    chapter_id: int
    text: str
    offset_ms: int
    duration_ms: int
    timings: Timings | None


def segment_offsets(
    rows: Sequence[tuple[int, int, int, int]], sample_rate: int
) -> list[tuple[int, int]]:
    """Where each segment starts on the joined time line, in samples (counted in samples, as
    the download is built, so no rounding accumulates over a book).

    Args:
        rows: ``(chapter_id, block_id, segment_id, num_samples)`` in reading order, lengths at
            ``sample_rate``.
        sample_rate: The download's rate in Hz.

    Returns:
        ``(segment_id, offset)`` for each segment with audio, mirroring
        :func:`audio.codecs.join` and :mod:`api.exports`: no pause before the first,
        ``SENTENCE_PAUSE_MS`` inside a paragraph, ``PARAGRAPH_PAUSE_MS`` between paragraphs,
        ``CHAPTER_PAUSE_MS`` between chapters; empty segments take no time and add no pause.
    """
    gaps = {
        "chapter": pause_samples(CHAPTER_PAUSE_MS, sample_rate),
        "paragraph": pause_samples(PARAGRAPH_PAUSE_MS, sample_rate),
        "sentence": pause_samples(SENTENCE_PAUSE_MS, sample_rate),
    }
    out: list[tuple[int, int]] = []
    cursor = 0
    last: tuple[int, int] | None = None
    for chapter, block, segment, duration in rows:
        if duration <= 0:
            continue
        if last is not None:
            if last[0] != chapter:
                cursor += gaps["chapter"]
            elif last[1] != block:
                cursor += gaps["paragraph"]
            else:
                cursor += gaps["sentence"]
        out.append((segment, cursor))
        cursor += duration
        last = (chapter, block)
    return out


def placed_segments(session: Session, where: ColumnElement[bool]) -> list[Placed]:
    """The done segments in scope, placed on their download's time line.

    The caller checks first that every segment is done (:func:`api.exports.layout`).
    """
    rows = session.execute(
        select(
            Chapter.id,
            Block.id,
            Segment.id,
            Segment.num_samples,
            Segment.sample_rate,
            Segment.text,
            Segment.timings,
        )
        .join(Block, Segment.block_id == Block.id)
        .join(Chapter, Block.chapter_id == Chapter.id)
        .where(where, Segment.status == SegmentStatus.DONE)
        .order_by(Chapter.position, Block.position, Segment.position)
    ).all()
    if not rows:
        return []
    # As the download: every voice resampled to the highest rate (api.exports.layout).
    rate = max(int(r[4] or 0) for r in rows) or 1
    lengths = {r[2]: resampled_length(int(r[3] or 0), int(r[4] or rate), rate) for r in rows}
    offsets = dict(segment_offsets([(r[0], r[1], r[2], lengths[r[2]]) for r in rows], rate))

    def ms(samples: int) -> int:
        return round(1000 * samples / rate)

    return [
        Placed(
            segment_id=r[2],
            chapter_id=r[0],
            text=r[5],
            offset_ms=ms(offsets[r[2]]),
            duration_ms=ms(lengths[r[2]]),
            timings=Timings.model_validate(r[6]) if r[6] else None,
        )
        for r in rows
        if r[2] in offsets
    ]


def timeline(placed: Sequence[Placed], *, relative_to: int = 0) -> Timings:
    """Words and sentences of the placed segments on one time line (``relative_to`` ms is 0).

    Each segment gives one sentence, its text as written, from its first word (or its start)
    to its last word (or its end).
    """
    words: list[Span] = []
    sentences: list[Span] = []
    for p in placed:
        start = p.offset_ms - relative_to
        own = p.timings.shifted(start) if p.timings else Timings()
        words += own.words
        first = own.sentences[0].start_ms if own.sentences else start
        last = own.sentences[-1].end_ms if own.sentences else start + p.duration_ms
        sentences.append(Span(text=" ".join(p.text.split()), start_ms=first, end_ms=last))
    return Timings(words=words, sentences=sentences)


def render(timings: Timings, fmt: TimedTextFormat, placed: Sequence[Placed] | None = None) -> str:
    """The timings as JSON (words and sentences), or as subtitles with one cue per sentence.

    With ``placed``, the JSON also has ``segments``: each sentence's segment id (in the order
    of ``sentences``), so a player can point at the sentence it is playing.

    Raises:
        ValueError: An unknown format.
    """
    if fmt == "json":
        body = timings.model_dump()
        if placed is not None:
            body["segments"] = [p.segment_id for p in placed]
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    cues = [s for s in timings.sentences if s.text]
    if fmt == "srt":
        import srt

        return str(
            srt.compose(
                srt.Subtitle(
                    index=n,
                    start=timedelta(milliseconds=s.start_ms),
                    end=timedelta(milliseconds=max(s.end_ms, s.start_ms + 1)),
                    content=s.text,
                )
                for n, s in enumerate(cues, start=1)
            )
        )
    if fmt == "vtt":
        import webvtt

        document = webvtt.WebVTT()
        for s in cues:
            document.captions.append(
                webvtt.Caption(
                    _vtt_time(s.start_ms), _vtt_time(max(s.end_ms, s.start_ms + 1)), s.text
                )
            )
        out = io.StringIO()
        document.write(out)
        return out.getvalue()
    raise ValueError(f"unknown timed text format {fmt!r}; use json, srt or vtt")


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"
