"""Chapters: their paragraphs and sentences, and the chapter as one audio file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response
from sqlalchemy import select

from api import crud, exports
from api.audiobook import chosen_preset
from api.deps import SessionDep, chapter_or_404, project_or_404
from api.models import Block
from api.routes.audiobook import MasteringName
from api.routes.common import ERRORS, Id, attachment, audio_responses
from api.schemas import AudioFormat, BlockOut, ChapterDetail, Counts, SegmentOut
from audio.codecs import MEDIA_TYPES

router = APIRouter(prefix="/v1/chapters", tags=["chapters"])


@router.get(
    "/{chapter_id}",
    response_model=ChapterDetail,
    summary="A chapter with its paragraphs and sentences",
    responses=ERRORS,
)
def get_chapter(chapter_id: Id, session: SessionDep) -> ChapterDetail:
    """Every segment of the chapter in reading order, grouped by paragraph, with its status."""
    chapter = chapter_or_404(session, chapter_id)
    blocks: list[BlockOut] = []
    counts = crud.StatusCounts()
    voices = {
        b.id: (b.voice, b.voice_version)
        for b in session.scalars(select(Block).where(Block.chapter_id == chapter.id))
    }
    for block_position, segment in crud.chapter_segments(session, chapter_id=chapter.id):
        if not blocks or blocks[-1].id != segment.block_id:
            voice, version = voices.get(segment.block_id, (None, None))
            blocks.append(
                BlockOut(
                    id=segment.block_id,
                    position=block_position,
                    segments=[],
                    voice=voice,
                    voice_version=version,
                )
            )
        blocks[-1].segments.append(SegmentOut.model_validate(segment))
        counts.add(segment.status.value, 1)
    return ChapterDetail(
        id=chapter.id,
        project_id=chapter.project_id,
        position=chapter.position,
        title=chapter.title,
        counts=Counts.of(counts),
        blocks=blocks,
        voice=chapter.voice,
        voice_version=chapter.voice_version,
    )


@router.get(
    "/{chapter_id}/audio",
    summary="Download a chapter as one audio file",
    response_class=Response,
    responses=audio_responses(),
)
def chapter_audio(
    chapter_id: Id,
    session: SessionDep,
    format: Annotated[AudioFormat, Query(description="audio format")] = "wav",
    mastering: Annotated[
        MasteringName | None, Query(description="preset (default: the project's; none: off)")
    ] = None,
) -> Response:
    """The chapter's sentences joined with a short pause, its paragraphs with a longer one,
    mastered to a loudness preset when asked (or when the project has a default one).
    409 until every segment of the chapter is done."""
    chapter = chapter_or_404(session, chapter_id)
    preset = chosen_preset(mastering, project_or_404(session, chapter.project_id))
    try:
        data = exports.encode_chapter(session, chapter.id, format, preset)
    except exports.NotReadyError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    return Response(
        data,
        media_type=MEDIA_TYPES[format],
        headers=attachment(f"chapter-{chapter.position + 1}-{chapter.title}.{format}"),
    )
