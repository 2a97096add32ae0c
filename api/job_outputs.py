"""What a finished job writes to its output location: the audio, and timings if asked.

Two export functions, each taking a format name, are the hooks the rest of the product plugs
into:

- :func:`export_audio` (``wav``, ``flac``, ``mp3``, ``ogg``): the whole project joined as
  :mod:`api.exports` joins a download, in a temporary file (never the whole book in memory).
- :func:`export_timings`: one writer per format in :data:`TIMING_WRITERS`. This build writes
  *sentence* timings (``json``, ``srt``, ``vtt``) from the stored sample counts and the pauses a
  download puts between sentences, paragraphs and chapters, so each cue starts where its sentence
  starts in the exported audio. Word timings from the voice model (issue 10) replace these writers
  by registering under the same names.

The SRT and WebVTT writers are a format string each; a subtitle library would add a dependency
for those two lines (and issue 10 brings its own writers).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import exports
from api.models import Block, Chapter, Segment
from audio import codecs as audio
from audio.resample import resampled_length

AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg")
MEDIA_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt"}


class UnsupportedOutput(ValueError):
    """A format no writer handles; the message lists those that exist."""


@dataclass(frozen=True)
class Cue:
    """One sentence in the exported audio.

    Attributes:
        start_ms: Where it starts, in milliseconds from the start of the file.
        end_ms: Where it ends.
        text: The sentence as written in the document.
    """

    start_ms: int
    end_ms: int
    text: str


def export_audio(session_factory: sessionmaker[Session], project_id: int, fmt: str) -> IO[bytes]:
    """The project's audio as ``fmt`` in a temporary file positioned at 0 (the caller closes it).

    Raises:
        UnsupportedOutput: ``fmt`` is not an audio format.
        api.exports.NotReadyError: Some segment is not done.
    """
    if fmt not in AUDIO_FORMATS:
        raise UnsupportedOutput(f"audio format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}")
    with session_factory() as session:
        plan = exports.layout(session, project_id=project_id)
    if fmt != "wav":
        return exports.write_project(session_factory, plan, fmt)
    out = tempfile.TemporaryFile(prefix="voxmill-job-")  # noqa: SIM115 - returned open
    try:
        for piece in exports.stream_project_wav(session_factory, plan):
            out.write(piece)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def sentence_cues(session: Session, project_id: int) -> list[Cue]:
    """Each sentence's place in the project's exported audio (same layout as the download)."""
    plan = exports.layout(session, project_id=project_id)
    rows = session.execute(
        select(Chapter.id, Block.id, Segment.sample_rate, Segment.num_samples, Segment.text)
        .join(Block, Segment.block_id == Block.id)
        .join(Chapter, Block.chapter_id == Chapter.id)
        .where(Segment.project_id == project_id)
        .order_by(Chapter.position, Block.position, Segment.position)
    ).all()
    rate = plan.sample_rate
    gaps = {
        "sentence": audio.pause_samples(exports.SENTENCE_PAUSE_MS, rate),
        "paragraph": audio.pause_samples(exports.PARAGRAPH_PAUSE_MS, rate),
        "chapter": audio.pause_samples(exports.CHAPTER_PAUSE_MS, rate),
    }
    cues: list[Cue] = []
    position = 0
    last: tuple[int, int] | None = None
    for chapter, block, seg_rate, n, text in rows:
        length = resampled_length(int(n or 0), int(seg_rate or rate), rate)
        if length <= 0:
            continue  # silent sentences add no pause either (audio.codecs.join)
        if last is not None:
            if chapter != last[0]:
                position += gaps["chapter"]
            elif block != last[1]:
                position += gaps["paragraph"]
            else:
                position += gaps["sentence"]
        start = position
        position += length
        cues.append(Cue(start * 1000 // rate, position * 1000 // rate, text))
        last = (chapter, block)
    return cues


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _srt(cues: list[Cue]) -> bytes:
    # SubRip: numbered cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm", a blank line after each.
    blocks = [
        f"{i}\n{_clock(c.start_ms, ',')} --> {_clock(c.end_ms, ',')}\n{c.text}\n"
        for i, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks).encode()


def _vtt(cues: list[Cue]) -> bytes:
    # WebVTT (W3C): a "WEBVTT" header, then cues with "." before the milliseconds.
    blocks = [f"{_clock(c.start_ms, '.')} --> {_clock(c.end_ms, '.')}\n{c.text}\n" for c in cues]
    return ("WEBVTT\n\n" + "\n".join(blocks)).encode()


def _json(cues: list[Cue]) -> bytes:
    body = {"unit": "ms", "sentences": [c.__dict__ for c in cues]}
    return json.dumps(body, ensure_ascii=False).encode()


TIMING_WRITERS: dict[str, Callable[[list[Cue]], bytes]] = {"json": _json, "srt": _srt, "vtt": _vtt}


def export_timings(session: Session, project_id: int, fmt: str) -> bytes:
    """The project's timings as ``fmt`` (a name in :data:`TIMING_WRITERS`).

    Raises:
        UnsupportedOutput: No writer for ``fmt``.
        api.exports.NotReadyError: Some segment is not done.
    """
    writer = TIMING_WRITERS.get(fmt)
    if writer is None:
        raise UnsupportedOutput(
            f"timings format {fmt!r}; use one of {', '.join(sorted(TIMING_WRITERS))}"
        )
    return writer(sentence_cues(session, project_id))
