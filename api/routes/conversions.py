"""Conversions: start one for a project, follow its progress, pause, resume or cancel it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, status

from api import control, crud
from api.deps import RuntimeDep, SessionDep, not_found, project_or_404
from api.event_payloads import conversion_event
from api.models import Conversion, utcnow
from api.routes.common import ERRORS, Id
from api.schemas import ConversionOut, ConversionStart, ErrorOut

router = APIRouter(prefix="/v1", tags=["conversions"])


@router.post(
    "/projects/{project_id}/conversions",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ConversionOut,
    summary="Start converting a project",
    responses={409: {"model": ErrorOut, "description": "a conversion is running"}, **ERRORS},
)
def start_conversion(
    project_id: Id,
    session: SessionDep,
    runtime: RuntimeDep,
    body: ConversionStart | None = None,
) -> ConversionOut:
    """Queue every segment that is not done yet (pending or failed), one task each.

    The segments' new status and their tasks commit in one transaction (the tasks go into the
    outbox and are published right after), so a crash cannot leave a segment queued without its
    task. Returns the conversion to follow with ``GET /v1/conversions/{id}`` or the project's
    event stream.
    """
    project = project_or_404(session, project_id)
    try:
        conversion = crud.start_conversion(
            session,
            project=project,
            force=bool(body and body.force),
            everything=bool(body and body.everything),
        )
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    session.commit()
    out = ConversionOut.of(conversion, utcnow())
    runtime.committed(conversion_event(out))
    return out


@router.get(
    "/conversions/{conversion_id}",
    response_model=ConversionOut,
    summary="A conversion's progress",
    responses=ERRORS,
)
def get_conversion(conversion_id: Id, session: SessionDep) -> ConversionOut:
    """Totals per status, percentage and an ETA from the rate observed so far."""
    conversion = session.get(Conversion, conversion_id)
    if conversion is None:
        raise not_found("conversion", conversion_id)
    return ConversionOut.of(conversion, utcnow())


def _control(
    conversion_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    action: Callable[..., int],
) -> ConversionOut:
    conversion = session.get(Conversion, conversion_id)
    if conversion is None:
        raise not_found("conversion", conversion_id)
    try:
        action(session, conversion=conversion)
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    session.commit()
    out = ConversionOut.of(conversion, utcnow())
    runtime.committed(conversion_event(out))
    return out


_STATE_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "the conversion is not in a state that allows it"},
    **ERRORS,
}


@router.post(
    "/conversions/{conversion_id}/pause",
    response_model=ConversionOut,
    summary="Pause a conversion",
    responses=_STATE_ERRORS,
)
def pause_conversion(conversion_id: int, session: SessionDep, runtime: RuntimeDep) -> ConversionOut:
    """No new sentence is synthesized until it is resumed: its tasks not yet started are
    withdrawn (the workers drop those they already hold) and its sentences without audio wait as
    "not converted"; audio a worker is finishing is still kept. Pausing twice is harmless."""
    return _control(conversion_id, session, runtime, control.pause)


@router.post(
    "/conversions/{conversion_id}/resume",
    response_model=ConversionOut,
    summary="Resume a paused conversion",
    responses=_STATE_ERRORS,
)
def resume_conversion(
    conversion_id: int, session: SessionDep, runtime: RuntimeDep
) -> ConversionOut:
    """Queue the conversion's sentences without audio again; its progress carries on."""
    return _control(conversion_id, session, runtime, control.resume)


@router.post(
    "/conversions/{conversion_id}/cancel",
    response_model=ConversionOut,
    summary="Cancel a conversion",
    responses=_STATE_ERRORS,
)
def cancel_conversion(
    conversion_id: int, session: SessionDep, runtime: RuntimeDep
) -> ConversionOut:
    """Stop for good: sentences without audio go back to "not converted" (Convert starts them
    again); the audio made so far is kept."""
    return _control(conversion_id, session, runtime, control.cancel)
