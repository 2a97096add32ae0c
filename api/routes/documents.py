"""``POST /v1/projects/{id}/documents``: upload a file, or paste text, and split it.

The document is read, split and given its spoken form in a worker process of the runtime's
:class:`~text_processing.isolation.DocumentPool`, under a deadline and a memory limit: however
hostile the file, the API's threads only wait for the answer (see README "Limits").

An uploaded file goes from the request to a temporary file in chunks, and the worker is given
that file's path: the API process never holds the whole document as one object. Holding it (and
pickling it through the pool's pipe) made every upload allocate several blocks of its size on
different threads; glibc serves blocks of that size from per-thread arenas once its mmap
threshold has adapted to them, and keeps them there after they are freed, so the API's resident
memory grew with every large upload (bench/README.md, "API memory over 200 maximum-size
uploads").
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api import control, crud
from api.deps import RuntimeDep, SessionDep, not_found, project_or_404
from api.event_payloads import conversion_event
from api.models import Document, utcnow
from api.pronunciation import list_entries
from api.routes.common import ERRORS, Id
from api.schemas import ChapterSummary, ConversionOut, Counts, DocumentOut, DocumentText, ErrorOut
from contract.limits import MAX_FILENAME_CHARS
from text_processing.formats import ACCEPTED, UploadError
from text_processing.isolation import ParsedDocument
from text_processing.lexicon import Entry
from text_processing.structure import DocumentError, LimitError

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
                        "description": ACCEPTED,
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
    path: Path  # the document's bytes, in a temporary file that lives as long as the request
    filename: str | None
    content_type: str | None
    decode_as: str | None = None  # the name whose extension gives pasted text's format


def _check_filename(name: str | None) -> None:
    """Refuse a file name no store can hold: over MAX_FILENAME_CHARS, or with a NUL."""
    if name is None:
        return
    if len(name) > MAX_FILENAME_CHARS or "\x00" in name:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=(
                f"the file name is longer than {MAX_FILENAME_CHARS} characters or holds a NUL "
                "character; rename the file and upload it again"
            ),
        )


def _copy(source: IO[bytes], target: IO[bytes]) -> int:
    """Copy ``source`` to ``target`` in chunks; the bytes copied."""
    shutil.copyfileobj(source, target)
    target.flush()
    return target.tell()


def _write(target: IO[bytes], data: bytes) -> None:
    target.write(data)
    target.flush()


@asynccontextmanager
async def _received(request: Request, limit: int) -> AsyncIterator[_Upload]:
    """The uploaded document in a temporary file, removed on exit; more than ``limit`` bytes
    are refused before they are all read (413)."""
    declared = request.headers.get("content-length")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # Multipart and JSON add a little framing around the document; allow for it here.
    slack = 64 * 1024
    if declared and declared.isdigit() and int(declared) > limit + slack:
        raise _too_large(int(declared), limit)
    if media not in ("multipart/form-data", "application/json"):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=(
                "send a file as multipart/form-data (field 'file') or pasted text as JSON "
                '{"text": "...", "format": "markdown" | "text"}'
            ),
        )
    with tempfile.NamedTemporaryFile(prefix="voxmill-upload-") as spool:
        if media == "multipart/form-data":
            async with request.form(max_files=1, max_fields=10, max_part_size=limit + 1) as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise HTTPException(
                        status.HTTP_422_UNPROCESSABLE_CONTENT,
                        detail="send the document as a multipart form field named 'file'",
                    )
                _check_filename(upload.filename)
                if upload.size is not None and upload.size > limit:
                    raise _too_large(upload.size, limit)
                # Starlette has spooled the part (to its own temporary file above 1 MiB); copying
                # it in chunks keeps the whole document out of this process's memory.
                size = await run_in_threadpool(_copy, upload.file, spool)
                if size > limit:
                    raise _too_large(size, limit)
                received = _Upload(Path(spool.name), upload.filename, upload.content_type)
        else:
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit + slack:
                    raise _too_large(len(body), limit)
            try:
                pasted = DocumentText.model_validate_json(body)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "body"
                raise HTTPException(
                    status.HTTP_422_UNPROCESSABLE_CONTENT,
                    detail=f"invalid JSON body: {where}: {first['msg']}",
                ) from e
            del body
            suffix = {"markdown": ".md", "ssml": ".ssml", "html": ".html", "auto": ""}.get(
                pasted.format, ".txt"
            )
            received = _Upload(Path(spool.name), pasted.filename, None, decode_as=f"pasted{suffix}")
            data = pasted.text.encode()
            del pasted  # the text stays in the file only, while the worker reads it
            if len(data) > limit:
                raise _too_large(len(data), limit)
            await run_in_threadpool(_write, spool, data)
            del data
        yield received


async def _read_and_split(
    runtime: RuntimeDep, upload: _Upload, lexicon: tuple[Entry, ...]
) -> ParsedDocument:
    """Read the upload in a document worker; every refusal becomes a 4xx naming the problem."""
    assert runtime.documents is not None
    try:
        # Pasted text goes through the same decoding as a file: newlines, BOM, control checks.
        return await runtime.documents.parse_file(
            upload.path,
            filename=upload.decode_as or upload.filename,
            content_type=upload.content_type,
            limits=runtime.document_limits(),
            lexicon=lexicon,
        )
    except UploadError as e:
        raise HTTPException(e.status, detail=str(e)) from e
    except LimitError as e:
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
        413: {
            "model": ErrorOut,
            "description": "too large, unpacks too large (zip bomb), nested too deep, or too "
            "many sentences",
        },
        415: {
            "model": ErrorOut,
            "description": "neither multipart nor JSON, a file type not read, or content that "
            "does not match the file's name",
        },
        **ERRORS,
    },
)
async def add_document(project_id: Id, request: Request, runtime: RuntimeDep) -> DocumentOut:
    """Read the document (text, Markdown, SSML, HTML, EPUB, Word or PDF), split it into chapters,
    paragraphs and sentences with their spoken form, and store them after the project's
    existing chapters. Nothing is synthesized until a conversion starts."""
    settings = runtime.settings
    factory = runtime.session_factory

    def lexicon() -> tuple[Entry, ...]:
        with factory() as session:
            project_or_404(session, project_id)
            rows = list_entries(session, project_id=project_id)
            return tuple(Entry(r.grapheme, alias=r.alias, phoneme=r.phoneme) for r in rows)

    entries = await run_in_threadpool(lexicon)
    async with _received(request, settings.max_upload_bytes) as upload:
        parsed = await _read_and_split(runtime, upload, entries)

    def store() -> DocumentOut:
        with factory() as session:
            project = project_or_404(session, project_id)
            document, stored = crud.add_document(
                session,
                project=project,
                text=parsed.text,
                fmt=parsed.fmt,
                filename=upload.filename,
                chapters=parsed.chapters,
                kind=parsed.kind,
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
                kind=document.kind,
                created_at=document.created_at,
                chapters=summaries,
                segments=sum(s.counts.total for s in summaries),
            )

    return await run_in_threadpool(store)


@router.delete(
    "/{project_id}/documents/{document_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Remove a document with its chapters, audio and queued tasks",
    responses={
        409: {"model": ErrorOut, "description": "a running batch job uses the project"},
        **ERRORS,
    },
)
def delete_document(
    project_id: int, document_id: int, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Remove a document added by mistake: its chapters, sentences and their audio go, tasks not
    yet sent to a worker are withdrawn, and a running conversion no longer waits for them."""
    project = project_or_404(session, project_id)
    document = session.get(Document, document_id)
    if document is None or document.project_id != project.id:
        raise not_found("document", document_id)
    try:
        control.delete_document(session, document=document)
    except crud.ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(e)) from e
    session.commit()
    running = crud.active_conversion(session, project_id=project.id)
    events = [conversion_event(ConversionOut.of(running, utcnow()))] if running else []
    runtime.committed(*events)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
