"""What a finished job writes to its output location: the audio, and timings if asked.

Two export functions, each taking a format name, are the hooks the rest of the product plugs
into:

- :func:`export_audio` (``wav``, ``flac``, ``mp3``, ``ogg``): the whole project joined as
  :mod:`api.exports` joins a download, in a temporary file (never the whole book in memory).
- :func:`export_timings` (``json``, ``srt``, ``vtt``): the word and sentence timings the voice's
  duration predictor gave (:mod:`api.timed_text`), on the exported audio's time line.
"""

from __future__ import annotations

import tempfile
from typing import IO, cast, get_args

from sqlalchemy.orm import Session, sessionmaker

from api import exports
from api.models import Segment
from api.timed_text import TimedTextFormat, placed_segments, render, timeline

AUDIO_FORMATS = ("wav", "flac", "mp3", "ogg")
MEDIA_TYPES = {"json": "application/json", "srt": "application/x-subrip", "vtt": "text/vtt"}


class UnsupportedOutput(ValueError):
    """A format no writer handles; the message lists those that exist."""


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


TIMING_FORMATS: tuple[str, ...] = get_args(TimedTextFormat)


def export_timings(session: Session, project_id: int, fmt: str) -> bytes:
    """The project's word and sentence timings as ``fmt`` (one of :data:`TIMING_FORMATS`), on
    the exported audio's time line (pauses between sentences, paragraphs and chapters included);
    the same rendering as ``GET /v1/projects/{id}/timings`` (:mod:`api.timed_text`).

    Raises:
        UnsupportedOutput: No writer for ``fmt``.
        api.exports.NotReadyError: Some segment is not done.
    """
    if fmt not in TIMING_FORMATS:
        raise UnsupportedOutput(f"timings format {fmt!r}; use one of {', '.join(TIMING_FORMATS)}")
    exports.layout(session, project_id=project_id)  # NotReadyError until every segment is done
    placed = placed_segments(session, Segment.project_id == project_id)
    return render(timeline(placed), cast(TimedTextFormat, fmt), placed).encode()
