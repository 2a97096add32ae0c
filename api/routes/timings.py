"""Timed text: word and sentence times of a segment, a chapter or a project, as JSON, SubRip or
WebVTT (:mod:`api.timed_text`). Chapter and project times are those of their audio download
(the pauses between segments included)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from api import exports
from api.deps import SessionDep, chapter_or_404, project_or_404, segment_or_404
from api.models import Segment
from api.routes.common import ERRORS, attachment
from api.schemas import ErrorOut
from api.timed_text import MEDIA_TYPES, TimedTextFormat, placed_segments, render, timeline

router = APIRouter(prefix="/v1", tags=["timings"])

FormatQuery = Annotated[
    TimedTextFormat, Query(description="json (words and sentences), srt or vtt (one cue each)")
]
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {m: {} for m in MEDIA_TYPES.values()}},
    409: {"model": ErrorOut, "description": "not every segment is done yet"},
    **ERRORS,
}


def _reply(text: str, fmt: str, name: str) -> Response:
    headers = attachment(f"{name}.{fmt}") if fmt != "json" else {}
    return Response(text, media_type=MEDIA_TYPES[fmt], headers=headers)


@router.get("/segments/{segment_id}/timings", summary="A segment's timings", responses=RESPONSES)
def segment_timings(segment_id: int, session: SessionDep, format: FormatQuery = "json") -> Response:
    """The segment's words and its sentence, in ms from the start of its audio.
    409 until it has audio."""
    segment = segment_or_404(session, segment_id)
    placed = placed_segments(session, Segment.id == segment.id)
    if not placed:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"segment {segment_id} has no audio yet; convert it and wait until it is done",
        )
    return _reply(render(timeline(placed), format, placed), format, f"segment-{segment_id}")


@router.get("/chapters/{chapter_id}/timings", summary="A chapter's timings", responses=RESPONSES)
def chapter_timings(chapter_id: int, session: SessionDep, format: FormatQuery = "json") -> Response:
    """Words and sentences on the chapter download's time line. 409 until every segment is
    done."""
    chapter = chapter_or_404(session, chapter_id)
    try:
        exports.layout(session, chapter_id=chapter.id)
    except exports.NotReadyError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    placed = placed_segments(session, Segment.chapter_id == chapter.id)
    name = f"chapter-{chapter.position + 1}"
    return _reply(render(timeline(placed), format, placed), format, name)


@router.get("/projects/{project_id}/timings", summary="A project's timings", responses=RESPONSES)
def project_timings(project_id: int, session: SessionDep, format: FormatQuery = "json") -> Response:
    """Words and sentences on the project download's time line (chapter pauses included).
    409 until every segment is done."""
    project = project_or_404(session, project_id)
    try:
        exports.layout(session, project_id=project.id)
    except exports.NotReadyError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    placed = placed_segments(session, Segment.project_id == project.id)
    return _reply(render(timeline(placed), format, placed), format, f"project-{project_id}")
