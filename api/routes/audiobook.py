"""Audiobook output of a project: its book settings (author, default mastering preset, cover) and
its exports (M4B with chapters, ZIP of tagged chapter files), built in the background
(:mod:`api.audiobook`)."""

from __future__ import annotations

import threading
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from api import exports
from api.audiobook import NO_MASTERING, ExportJob, ExportJobs, chosen_preset
from api.covers import COVER_FORMATS, CoverError, check_cover
from api.deps import RuntimeDep, SessionDep, project_or_404
from api.routes.common import ERRORS
from api.schemas import ErrorOut
from audio.mastering import PRESET_NAMES
from contract import limits

router = APIRouter(prefix="/v1", tags=["audiobook"])

MasteringName = Literal["acx", "podcast", "broadcast", "none"]
COVER_TYPES = tuple(COVER_FORMATS)
_jobs_lock = threading.Lock()


class BookSettings(BaseModel):
    """A project's audiobook settings."""

    model_config = ConfigDict(extra="forbid")

    author: str | None = Field(default=None, max_length=200, description="Written into files")
    mastering: MasteringName | None = Field(
        default=None,
        description=f"Default preset of downloads and exports ({', '.join(PRESET_NAMES)}); "
        "none or null: no mastering",
    )


class BookSettingsOut(BookSettings):
    """The settings, and whether a cover is set."""

    model_config = ConfigDict(extra="ignore")
    has_cover: bool = False


class ExportRequest(BaseModel):
    """What to export."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["m4b", "zip"] = Field(description="m4b: one file with chapters; zip: a file each")
    format: Literal["mp3", "flac", "ogg", "opus"] = Field(
        default="mp3", description="Format of the ZIP's chapter files (an M4B is AAC)"
    )
    mastering: MasteringName | None = Field(
        default=None, description="Preset; default: the project's (none if it has none)"
    )


class ExportOut(BaseModel):
    """An export and its progress."""

    id: str
    project_id: int
    kind: str
    format: str
    mastering: str | None
    state: Literal["running", "done", "failed"]
    chapters_done: int
    chapters_total: int
    error: str | None = None
    download_url: str | None = None

    @classmethod
    def of(cls, job: ExportJob) -> ExportOut:
        url = f"/v1/exports/{job.id}/file" if job.state == "done" else None
        return cls(
            id=job.id,
            project_id=job.project_id,
            kind=job.kind,
            format="aac" if job.kind == "m4b" else job.format,
            mastering=job.mastering,
            state=job.state,
            chapters_done=job.chapters_done,
            chapters_total=job.chapters_total,
            error=job.error,
            download_url=url,
        )


def _jobs(request: Request, runtime: RuntimeDep) -> ExportJobs:
    with _jobs_lock:
        jobs: ExportJobs | None = getattr(request.app.state, "export_jobs", None)
        if jobs is None:
            jobs = ExportJobs(runtime.session_factory)
            request.app.state.export_jobs = jobs
        return jobs


def _settings_out(project: object) -> BookSettingsOut:
    return BookSettingsOut(
        author=getattr(project, "author", None),
        mastering=getattr(project, "mastering", None),
        has_cover=bool(getattr(project, "cover_type", None)),
    )


@router.get(
    "/projects/{project_id}/book",
    response_model=BookSettingsOut,
    summary="Audiobook settings",
    responses=ERRORS,
)
def get_book(project_id: int, session: SessionDep) -> BookSettingsOut:
    """The author, the default mastering preset, and whether a cover is set."""
    return _settings_out(project_or_404(session, project_id))


@router.put(
    "/projects/{project_id}/book",
    response_model=BookSettingsOut,
    summary="Set audiobook settings",
    responses=ERRORS,
)
def put_book(project_id: int, body: BookSettings, session: SessionDep) -> BookSettingsOut:
    """Set the author and the default mastering preset (``none`` or null: none)."""
    project = project_or_404(session, project_id)
    project.author = body.author.strip() if body.author and body.author.strip() else None
    project.mastering = None if body.mastering in (None, NO_MASTERING) else body.mastering
    session.commit()
    return _settings_out(project)


@router.put(
    "/projects/{project_id}/cover",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set the cover image (JPEG or PNG body)",
    responses={
        413: {"model": ErrorOut, "description": "over the size or pixel limit"},
        415: {"model": ErrorOut, "description": "not a readable JPEG or PNG image"},
        **ERRORS,
    },
)
async def put_cover(project_id: int, request: Request, runtime: RuntimeDep) -> Response:
    """The request body is the image, its ``Content-Type`` ``image/jpeg`` or ``image/png``: at
    most ``MAX_COVER_BYTES`` and ``MAX_COVER_PIXELS`` (413 above), and an image that decodes
    (415 otherwise)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in COVER_TYPES:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"the cover must be sent as image/jpeg or image/png, not {kind or 'nothing'}",
        )
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limits.MAX_COVER_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE,
                detail=f"the cover is over {limits.MAX_COVER_BYTES // 2**20} MiB: send less",
            )
    try:
        await run_in_threadpool(check_cover, bytes(data), kind)
    except CoverError as e:
        too_large = status.HTTP_413_CONTENT_TOO_LARGE
        code = too_large if e.too_large else status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
        raise HTTPException(code, detail=str(e)) from e

    def store() -> None:
        with runtime.session_factory() as session:
            project = project_or_404(session, project_id)
            project.cover, project.cover_type = bytes(data), kind
            session.commit()

    await run_in_threadpool(store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/projects/{project_id}/exports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExportOut,
    summary="Export the project as an audiobook (M4B or ZIP)",
    responses={409: {"model": ErrorOut, "description": "not every segment is done"}, **ERRORS},
)
def start_export(
    project_id: int, body: ExportRequest, request: Request, runtime: RuntimeDep, session: SessionDep
) -> ExportOut:
    """Start building the export; poll ``GET /v1/exports/{id}`` for its progress."""
    project = project_or_404(session, project_id)
    try:
        plan = exports.layout(session, project_id=project.id)
    except exports.NotReadyError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    mastering = chosen_preset(body.mastering, project)
    _ = project.cover  # loaded now, while the session is open
    job = _jobs(request, runtime).start(
        project, plan, kind=body.kind, fmt=body.format, mastering=mastering
    )
    return ExportOut.of(job)


def _job_or_404(request: Request, runtime: RuntimeDep, export_id: str) -> ExportJob:
    job = _jobs(request, runtime).get(export_id)
    if job is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no export {export_id!r} on this server (finished exports are kept for a "
            "while, and a restart forgets them): start it again",
        )
    return job


@router.get(
    "/exports/{export_id}",
    response_model=ExportOut,
    summary="An export's progress",
    responses=ERRORS,
)
def get_export(export_id: str, request: Request, runtime: RuntimeDep) -> ExportOut:
    """How many chapters are done, and the download link once it is finished."""
    return ExportOut.of(_job_or_404(request, runtime, export_id))


@router.get(
    "/exports/{export_id}/file",
    summary="Download a finished export",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/mp4": {}, "application/zip": {}}},
        409: {"model": ErrorOut, "description": "still running, or failed"},
        **ERRORS,
    },
)
def export_file(export_id: str, request: Request, runtime: RuntimeDep) -> FileResponse:
    """The M4B (``audio/mp4``) or the ZIP."""
    job = _job_or_404(request, runtime, export_id)
    if job.state != "done" or job.path is None:
        detail = job.error or (
            f"the export is still running ({job.chapters_done} of {job.chapters_total} chapters)"
        )
        raise HTTPException(status.HTTP_409_CONFLICT, detail=detail)
    media = "audio/mp4" if job.kind == "m4b" else "application/zip"
    return FileResponse(job.path, media_type=media, filename=job.filename)
