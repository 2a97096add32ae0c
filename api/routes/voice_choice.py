"""Choosing voices inside a project: the project's voice (and version), a chapter's, a
paragraph's (a narrator and a quoted speaker, say).

A choice applies to segments queued from then on: a conversion or re-synthesis records on each
segment the voice and exact version it was queued with (see :mod:`api.crud`).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy.orm import Session

from api.deps import SessionDep, chapter_or_404, not_found, project_or_404
from api.models import Block
from api.routes.common import ERRORS, Id
from api.routes.voices import RegistryDep, _builtin_names
from api.voice_registry import RegistryError, VoiceRegistry
from api.voice_schemas import VoiceChoice, VoiceChoiceOut

router = APIRouter(prefix="/v1", tags=["voices"])


def _check(
    choice: VoiceChoice, request: Request, session: Session, registry: VoiceRegistry
) -> None:
    if choice.voice is None:
        if choice.version is not None:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail="a version needs a voice"
            )
        return
    try:
        version, _pool = registry.resolve(session, choice.voice, choice.version)
    except RegistryError as e:
        raise HTTPException(e.status, detail=str(e)) from e
    registered = version is not None
    if not registered and choice.voice not in _builtin_names(request):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"unknown voice '{choice.voice}'"
        )
    if not registered and choice.version is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"voice '{choice.voice}' is built in and has no versions",
        )


@router.put(
    "/projects/{project_id}/voice",
    response_model=VoiceChoiceOut,
    summary="Choose the project's voice (and version)",
    responses=ERRORS,
)
def project_voice(
    project_id: Id,
    body: VoiceChoice,
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
) -> VoiceChoiceOut:
    """The voice every chapter and paragraph without its own speaks with."""
    project = project_or_404(session, project_id)
    if body.voice is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="a project needs a voice")
    _check(body, request, session, registry)
    project.voice, project.voice_version = body.voice, body.version
    session.commit()
    return VoiceChoiceOut(scope="project", id=project.id, voice=body.voice, version=body.version)


@router.put(
    "/chapters/{chapter_id}/voice",
    response_model=VoiceChoiceOut,
    summary="Give a chapter its own voice",
    responses=ERRORS,
)
def chapter_voice(
    chapter_id: Id,
    body: VoiceChoice,
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
) -> VoiceChoiceOut:
    """``voice: null`` makes the chapter speak with the project's voice again."""
    chapter = chapter_or_404(session, chapter_id)
    _check(body, request, session, registry)
    chapter.voice, chapter.voice_version = body.voice, body.version
    session.commit()
    return VoiceChoiceOut(scope="chapter", id=chapter.id, voice=body.voice, version=body.version)


@router.put(
    "/blocks/{block_id}/voice",
    response_model=VoiceChoiceOut,
    summary="Give a paragraph its own voice",
    responses=ERRORS,
)
def block_voice(
    block_id: Id,
    body: VoiceChoice,
    request: Request,
    session: SessionDep,
    registry: RegistryDep,
) -> VoiceChoiceOut:
    """A paragraph (a quoted speaker, say) in another voice; ``voice: null`` inherits again."""
    block = session.get(Block, block_id)
    if block is None:
        raise not_found("paragraph", block_id)
    _check(body, request, session, registry)
    block.voice, block.voice_version = body.voice, body.version
    session.commit()
    return VoiceChoiceOut(scope="paragraph", id=block.id, voice=body.voice, version=body.version)
