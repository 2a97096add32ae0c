"""Segments: show one, listen to it (or to the take a re-synthesis replaced), synthesize it
again (optionally with corrected text), flag it for review, pick the previous take back."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import Response

from api import crud, exports
from api.audio_store import segment_audio as stored_audio
from api.deps import RuntimeDep, SessionDep, segment_or_404
from api.event_payloads import SegmentEvent
from api.models import utcnow
from api.routes.common import ERRORS, Id, attachment, audio_responses
from api.schemas import (
    AudioFormat,
    ConversionOut,
    ErrorOut,
    ResynthesizeOut,
    ResynthesizeRequest,
    SegmentOut,
    SegmentUpdate,
)
from audio.codecs import MEDIA_TYPES
from text_processing.ssml import SsmlError

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@router.get("/{segment_id}", response_model=SegmentOut, summary="Show a segment", responses=ERRORS)
def get_segment(segment_id: Id, session: SessionDep) -> SegmentOut:
    """The sentence, its status, its last error and the length of its audio."""
    return SegmentOut.model_validate(segment_or_404(session, segment_id))


@router.get(
    "/{segment_id}/audio",
    summary="Listen to one segment",
    response_class=Response,
    responses=audio_responses(),
)
def segment_audio(
    segment_id: Id,
    session: SessionDep,
    format: Annotated[AudioFormat, Query(description="audio format")] = "wav",
    take: Annotated[
        Literal["current", "previous"],
        Query(description="the current take, or the one the last re-synthesis replaced"),
    ] = "current",
) -> Response:
    """The segment's audio (stored losslessly; converted to the requested format)."""
    segment = segment_or_404(session, segment_id)
    try:
        if take == "previous":
            previous = stored_audio(session, segment.previous_audio, segment.previous_audio_key)
            if not previous:
                raise exports.NotReadyError(
                    "this sentence has no previous take: it was synthesized only once"
                )
            data = exports.encoded(previous, format)
        else:
            data = exports.segment_file(segment, format)
    except exports.NotReadyError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    return Response(
        data,
        media_type=MEDIA_TYPES[format],
        headers=attachment(f"segment-{segment_id}.{format}"),
    )


def _resynthesize(
    segment_id: Id, body: ResynthesizeRequest | None, session: SessionDep, runtime: RuntimeDep
) -> ResynthesizeOut:
    segment = segment_or_404(session, segment_id)
    text = _given(body.text if body is not None else None, "text", "the corrected sentence")
    spoken = _given(
        body.spoken_text if body is not None else None, "spoken_text", "the words to say"
    )
    try:
        conversion = crud.resynthesize(
            session,
            segment=segment,
            text=text,
            spoken_text=spoken,
            latest_voice=bool(body is not None and body.latest_voice),
            interactive=runtime.settings.priority_lane,
        )
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    except SsmlError as e:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"invalid SSML: {e}"
        ) from e
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
        spoken_text=segment.spoken_text,
        conversion=out.conversion,
    )
    runtime.committed(event.message(segment.project_id))
    return out


def _given(value: str | None, field: str, what: str) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if not value or "\x00" in value:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"'{field}' is blank or holds a NUL character: give {what}, or omit it",
        )
    return value


_DOC = dict(
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ResynthesizeOut,
    summary="Synthesize a segment again, optionally with corrected text or spoken form",
    responses={409: {"model": ErrorOut, "description": "the segment is queued"}, **ERRORS},
)


@router.post("/{segment_id}/resynthesize", **_DOC)  # type: ignore[arg-type]
def resynthesize(
    segment_id: Id,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ResynthesizeRequest | None = None,
) -> ResynthesizeOut:
    """Re-queue the segment through the outbox. With ``text``, the sentence is replaced first
    and its spoken form computed again (the document's source text is kept as it was); with
    ``spoken_text``, the voice is given that instead (plain words or SSML; the project's lexicon
    still applies). 409 while the segment is queued, 422 for invalid SSML."""
    return _resynthesize(segment_id, body, session, runtime)


# Documented (as deprecated) so that every method the API answers is in its OpenAPI document.
@router.patch("/{segment_id}/resynthesize", deprecated=True, **_DOC)  # type: ignore[arg-type]
def resynthesize_patch(
    segment_id: Id,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ResynthesizeRequest | None = None,
) -> ResynthesizeOut:
    """Same as POST (kept for older clients)."""
    return _resynthesize(segment_id, body, session, runtime)


@router.patch(
    "/{segment_id}",
    response_model=SegmentOut,
    summary="Flag a sentence for review, or clear the flag",
    responses=ERRORS,
)
def update_segment(segment_id: int, body: SegmentUpdate, session: SessionDep) -> SegmentOut:
    """Set ``needs_review``; the web UI filters on it to walk through the flagged sentences."""
    segment = segment_or_404(session, segment_id)
    segment.needs_review = body.needs_review
    session.commit()
    return SegmentOut.model_validate(segment)


@router.post(
    "/{segment_id}/takes/swap",
    response_model=SegmentOut,
    summary="Pick the previous take back (the current one becomes the previous)",
    responses={409: {"model": ErrorOut, "description": "no previous take, or queued"}, **ERRORS},
)
def swap_takes(segment_id: int, session: SessionDep, runtime: RuntimeDep) -> SegmentOut:
    """Exchange the current and the previous take (audio and length, and the text each spoke
    when a correction changed it), so that comparing and choosing loses neither."""
    segment = segment_or_404(session, segment_id)
    try:
        crud.swap_takes(session, segment=segment)
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    session.commit()
    event = SegmentEvent(
        segment_id=segment.id,
        chapter_id=segment.chapter_id,
        status=segment.status,
        duration_ms=segment.duration_ms,
        text=segment.text,
        spoken_text=segment.spoken_text,
    )
    runtime.notify(event.message(segment.project_id))
    return SegmentOut.model_validate(segment)
