"""Segments: show one, listen to it, synthesize it again (optionally with corrected text)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from api import crud, exports
from api.deps import RuntimeDep, SessionDep, segment_or_404
from api.event_payloads import SegmentEvent
from api.models import utcnow
from api.routes.common import ERRORS, attachment, audio_responses
from api.schemas import (
    AudioFormat,
    ConversionOut,
    ErrorOut,
    ResynthesizeOut,
    ResynthesizeRequest,
    SegmentOut,
)
from audio.codecs import MEDIA_TYPES

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@router.get("/{segment_id}", response_model=SegmentOut, summary="Show a segment", responses=ERRORS)
def get_segment(segment_id: int, session: SessionDep) -> SegmentOut:
    """The sentence, its status, its last error and the length of its audio."""
    return SegmentOut.model_validate(segment_or_404(session, segment_id))


@router.get(
    "/{segment_id}/audio",
    summary="Listen to one segment",
    response_class=Response,
    responses=audio_responses(),
)
def segment_audio(
    segment_id: int,
    session: SessionDep,
    format: Annotated[AudioFormat, Query(description="audio format")] = "wav",
) -> Response:
    """The segment's audio (stored losslessly; converted to the requested format)."""
    segment = segment_or_404(session, segment_id)
    try:
        data = exports.segment_file(segment, format)
    except exports.NotReadyError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    return Response(
        data,
        media_type=MEDIA_TYPES[format],
        headers=attachment(f"segment-{segment_id}.{format}"),
    )


def _resynthesize(
    segment_id: int, body: ResynthesizeRequest | None, session: SessionDep, runtime: RuntimeDep
) -> ResynthesizeOut:
    segment = segment_or_404(session, segment_id)
    text = body.text if body is not None else None
    if text is not None:
        text = " ".join(text.split())
        if not text:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail="'text' is blank: give the corrected sentence, or omit 'text'",
            )
    try:
        conversion = crud.resynthesize(session, segment=segment, text=text)
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    session.commit()
    out = ResynthesizeOut(
        segment=SegmentOut.model_validate(segment),
        conversion=ConversionOut.of(conversion, utcnow()),
    )
    event = SegmentEvent(
        segment_id=segment.id,
        chapter_id=segment.chapter_id,
        status=segment.status,
        text=segment.text,
        conversion=out.conversion,
    )
    runtime.committed(event.message(segment.project_id))
    return out


_DOC = dict(
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResynthesizeOut,
    summary="Synthesize a segment again, optionally with corrected text",
    responses={409: {"model": ErrorOut, "description": "the segment is queued"}, **ERRORS},
)


@router.post("/{segment_id}/resynthesize", **_DOC)  # type: ignore[arg-type]
def resynthesize(
    segment_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ResynthesizeRequest | None = None,
) -> ResynthesizeOut:
    """Re-queue the segment through the outbox. With ``text``, the spoken text is replaced
    first (the document's source text is kept as it was). 409 while the segment is queued."""
    return _resynthesize(segment_id, body, session, runtime)


@router.patch("/{segment_id}/resynthesize", include_in_schema=False, **_DOC)  # type: ignore[arg-type]
def resynthesize_patch(
    segment_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ResynthesizeRequest | None = None,
) -> ResynthesizeOut:
    """Same as POST."""
    return _resynthesize(segment_id, body, session, runtime)
