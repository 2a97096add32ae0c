"""``/v1/projects``: create, list, show (tree with status counts), rename or change the speed,
delete, download the whole project."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api import control, crud, exports
from api.audiobook import chosen_preset
from api.deps import RuntimeDep, SessionDep, SettingsDep, project_or_404
from api.event_payloads import deleted_event
from api.models import Document, Project, Voice, utcnow
from api.routes.audiobook import MasteringName
from api.routes.common import ERRORS, Id, Offset, attachment, audio_responses
from api.schemas import (
    AudioFormat,
    ChapterSummary,
    ConversionOut,
    Counts,
    DocumentSummary,
    ErrorOut,
    ProjectCreate,
    ProjectDetail,
    ProjectList,
    ProjectOut,
    ProjectUpdate,
)
from audio.codecs import MEDIA_TYPES
from audio.mastering import Preset

router = APIRouter(prefix="/v1/projects", tags=["projects"])


def project_detail(session: Session, project: Project) -> ProjectDetail:
    """The project with its chapters and status counts (also the SSE snapshot)."""
    tree = crud.project_tree(session, project=project)
    now = utcnow()
    return ProjectDetail(
        id=project.id,
        name=project.name,
        voice=project.voice,
        voice_version=project.voice_version,
        speed=project.speed,
        created_at=project.created_at,
        counts=Counts.of(tree.counts),
        chapters=[
            ChapterSummary(
                id=chapter.id,
                position=chapter.position,
                title=chapter.title,
                counts=Counts.of(c),
                voice=chapter.voice,
                voice_version=chapter.voice_version,
                document_id=chapter.document_id,
            )
            for chapter, c in tree.chapters
        ],
        active_conversion=(
            ConversionOut.of(tree.active_conversion, now) if tree.active_conversion else None
        ),
        documents=[
            DocumentSummary(id=d.id, filename=d.filename, kind=d.kind, created_at=d.created_at)
            for d in session.scalars(
                select(Document).where(Document.project_id == project.id).order_by(Document.id)
            )
        ],
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProjectOut,
    summary="Create a project",
    responses=ERRORS,
)
def create_project(
    body: ProjectCreate, session: SessionDep, settings: SettingsDep, request: Request
) -> Project:
    """Create an empty project; upload a document to it next."""
    voice = body.voice or settings.default_voice
    synthesizer = request.app.state.synthesizer
    if synthesizer is not None:
        known = [*synthesizer.voices(), *session.scalars(select(Voice.name))]
        if known and voice not in known:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                detail=f"unknown voice '{voice}'; available voices: {', '.join(known)}",
            )
    project = crud.create_project(session, name=body.name, voice=voice, speed=body.speed)
    session.commit()
    return project


@router.get("", response_model=ProjectList, summary="List projects", responses=ERRORS)
def list_projects(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ProjectList:
    """Projects, newest first."""
    items = crud.list_projects(session, limit=limit, offset=offset)
    return ProjectList(
        items=[ProjectOut.model_validate(p) for p in items], total=crud.count_projects(session)
    )


@router.get(
    "/{project_id}",
    response_model=ProjectDetail,
    summary="Show a project with its chapters and status counts",
    responses=ERRORS,
)
def get_project(project_id: Id, session: SessionDep) -> ProjectDetail:
    """The project, its chapters in order, segment counts per status, and the running
    conversion if there is one."""
    return project_detail(session, project_or_404(session, project_id))


@router.patch(
    "/{project_id}",
    response_model=ProjectOut,
    summary="Rename a project or change its speed",
    responses=ERRORS,
)
def update_project(project_id: int, body: ProjectUpdate, session: SessionDep) -> Project:
    """Change the name or the speaking rate; fields left out stay. A new speed applies to the
    sentences synthesized from then on (start a conversion with ``everything: true`` to
    re-synthesize the others)."""
    project = project_or_404(session, project_id)
    if body.name is not None:
        project.name = body.name
    if body.speed is not None:
        project.speed = body.speed
    session.commit()
    return project


@router.delete(
    "/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a project with its documents, audio and queued tasks",
    responses={
        409: {"model": ErrorOut, "description": "a running batch job uses the project"},
        **ERRORS,
    },
)
def delete_project(project_id: int, session: SessionDep, runtime: RuntimeDep) -> Response:
    """Delete the project, its documents, sentences and their audio, its lexicon and its
    conversions; tasks not yet sent to a worker are withdrawn and the workers drop the ones
    they have not started. Open pages of the project hear that it is gone. 409 while a batch
    job that runs on the project has not ended (cancel the job first)."""
    project = project_or_404(session, project_id)
    try:
        control.delete_project(session, project=project)
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    session.commit()
    runtime.notify(deleted_event(project_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{project_id}/audio",
    summary="Download the whole project as one audio file",
    response_class=Response,
    responses=audio_responses(),
)
async def project_audio(
    project_id: Id,
    runtime: RuntimeDep,
    format: Annotated[AudioFormat, Query(description="audio format")] = "wav",
    mastering: Annotated[
        MasteringName | None, Query(description="preset (default: the project's; none: off)")
    ] = None,
) -> Response:
    """Every chapter in order, sentences joined with short pauses, paragraphs and chapters with
    longer ones, each chapter mastered to a loudness preset when asked (or when the project has
    a default one). 409 until every segment is done."""
    factory = runtime.session_factory

    def plan() -> tuple[exports.Layout, Preset | None]:
        with factory() as session:
            project = project_or_404(session, project_id)
            try:
                return exports.layout(session, project_id=project.id), chosen_preset(
                    mastering, project
                )
            except exports.NotReadyError as e:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e

    layout, preset = await run_in_threadpool(plan)
    headers = attachment(f"project-{project_id}.{format}")
    if format == "wav" and preset is None:
        return StreamingResponse(
            exports.stream_project_wav(factory, layout),
            media_type=MEDIA_TYPES["wav"],
            headers={
                **headers,
                "Content-Length": str(44 + 2 * layout.total_samples()),
            },
        )
    handle = await run_in_threadpool(exports.write_project, factory, layout, format, preset)

    def chunks() -> Iterator[bytes]:
        try:
            while block := handle.read(1 << 16):
                yield block
        finally:
            handle.close()

    return StreamingResponse(chunks(), media_type=MEDIA_TYPES[format], headers=headers)
