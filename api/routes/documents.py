"""``POST /v1/projects/{id}/documents``: upload a file, or paste text, and split it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api import crud
from api.deps import RuntimeDep, project_or_404
from api.routes.common import ERRORS
from api.schemas import ChapterSummary, Counts, DocumentOut, DocumentText, ErrorOut
from text_processing.formats import UploadError, decode_upload
from text_processing.splitter import (
    ChapterSpec,
    DocFormat,
    DocumentError,
    TooManySegmentsError,
    split_document,
)

router = APIRouter(prefix="/v1/projects", tags=["documents"])

_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "a .txt, .md or .markdown file (UTF-8)",
                    }
                },
            }
        },
        "application/json": {"schema": DocumentText.model_json_schema()},
    },
}


def _too_large(size: int, limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        detail=(
            f"the document is too large: {size} bytes, over the limit of {limit} bytes; split "
            "it into smaller documents and upload them one by one"
        ),
    )


@dataclass(frozen=True)
class _Upload:
    data: bytes
    filename: str | None
    content_type: str | None
    decode_as: str | None = None  # the name whose extension gives pasted text's format


async def _read_body(request: Request, limit: int) -> _Upload:
    """The uploaded document, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # Multipart and JSON add a little framing around the document; allow for it here.
    slack = 64 * 1024
    if declared and declared.isdigit() and int(declared) > limit + slack:
        raise _too_large(int(declared), limit)
    if media == "multipart/form-data":
        async with request.form(max_files=1, max_fields=10, max_part_size=limit + 1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    detail="send the document as a multipart form field named 'file'",
                )
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise _too_large(upload.size or len(data), limit)
            return _Upload(data, upload.filename, upload.content_type)
    if media != "application/json":
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=(
                "send a file as multipart/form-data (field 'file') or pasted text as JSON "
                '{"text": "...", "format": "markdown" | "text"}'
            ),
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit + slack:
            raise _too_large(len(body), limit)
    try:
        pasted = DocumentText.model_validate_json(bytes(body))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"invalid JSON body: {where}: {first['msg']}",
        ) from e
    data = pasted.text.encode()
    if len(data) > limit:
        raise _too_large(len(data), limit)
    suffix = ".md" if pasted.format == "markdown" else ".txt"
    return _Upload(data, pasted.filename, None, decode_as=f"pasted{suffix}")


def _decode_and_split(
    upload: _Upload, *, limit: int, max_segments: int
) -> tuple[str, DocFormat, list[ChapterSpec]]:
    try:
        # Pasted text goes through the same decoding as a file: newlines, BOM, control checks.
        text, fmt = decode_upload(
            upload.data,
            filename=upload.decode_as or upload.filename,
            content_type=upload.content_type,
            max_bytes=limit,
        )
        return text, fmt, split_document(text, fmt=fmt, max_segments=max_segments)
    except UploadError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from e
    except TooManySegmentsError as e:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(e)) from e
    except DocumentError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from e


@router.post(
    "/{project_id}/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    summary="Add a document (file upload or pasted text) to a project",
    openapi_extra={"requestBody": _REQUEST_BODY},
    responses={
        413: {"model": ErrorOut, "description": "too large or too many sentences"},
        415: {"model": ErrorOut, "description": "neither multipart nor JSON"},
        **ERRORS,
    },
)
async def add_document(project_id: int, request: Request, runtime: RuntimeDep) -> DocumentOut:
    """Decode the document, split it into chapters, paragraphs and sentences, and store them
    after the project's existing chapters. Nothing is synthesized until a conversion starts."""
    settings = runtime.settings
    factory = runtime.session_factory

    def exists() -> None:
        with factory() as session:
            project_or_404(session, project_id)

    await run_in_threadpool(exists)
    upload = await _read_body(request, settings.max_upload_bytes)

    def store() -> DocumentOut:
        text, fmt, chapters = _decode_and_split(
            upload, limit=settings.max_upload_bytes, max_segments=settings.max_segments
        )
        with factory() as session:
            project = project_or_404(session, project_id)
            document, stored = crud.add_document(
                session,
                project=project,
                text=text,
                fmt=fmt,
                filename=upload.filename,
                chapters=chapters,
            )
            session.commit()
            counts = crud.status_counts(session, project_id=project.id)
            summaries = [
                ChapterSummary(
                    id=c.id,
                    position=c.position,
                    title=c.title,
                    counts=Counts.of(counts.get(c.id, crud.StatusCounts())),
                )
                for c in stored
            ]
            return DocumentOut(
                id=document.id,
                project_id=project.id,
                filename=document.filename,
                format=document.format,
                created_at=document.created_at,
                chapters=summaries,
                segments=sum(s.counts.total for s in summaries),
            )

    return await run_in_threadpool(store)
