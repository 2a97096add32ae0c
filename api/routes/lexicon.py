"""A project's pronunciation lexicon: list, add, delete entries; import and export W3C PLS.

Entries apply to the project's conversions and re-syntheses: the segments an entry touches get
their spoken form again at once (see :mod:`api.pronunciation`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.responses import Response

from api import pronunciation
from api.deps import RuntimeDep, SessionDep, not_found, project_or_404
from api.models import LexiconEntry
from api.routes.common import ERRORS, Id, attachment
from api.schemas import ErrorOut, LexiconEntryIn, LexiconEntryOut, LexiconOut
from text_processing.lexicon import Entry, LexiconError, read_pls, write_pls

router = APIRouter(prefix="/v1/projects", tags=["lexicon"])

PLS_MEDIA_TYPE = "application/pls+xml"
MAX_PLS_BYTES = 2 * 1024 * 1024
EntryId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


def _lexicon(session: SessionDep, project_id: Id) -> LexiconOut:
    rows = pronunciation.list_entries(session, project_id=project_id)
    return LexiconOut(items=[LexiconEntryOut.model_validate(r) for r in rows], total=len(rows))


def _put(session: SessionDep, runtime: RuntimeDep, project_id: Id, entries: list[Entry]) -> None:
    try:
        pronunciation.put_entries(
            session,
            project_id=project_id,
            entries=entries,
            max_entries=runtime.settings.max_lexicon_entries,
        )
    except pronunciation.LexiconLimitError as e:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, detail=str(e)) from e
    session.commit()


@router.get(
    "/{project_id}/lexicon",
    response_model=LexiconOut,
    summary="List the project's pronunciation lexicon",
    responses=ERRORS,
)
def get_lexicon(project_id: Id, session: SessionDep) -> LexiconOut:
    """Every entry, oldest first."""
    project_or_404(session, project_id)
    return _lexicon(session, project_id)


@router.post(
    "/{project_id}/lexicon",
    response_model=LexiconEntryOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a pronunciation (or replace the one for the same grapheme)",
    responses={413: {"model": ErrorOut, "description": "the lexicon is full"}, **ERRORS},
)
def add_entry(
    project_id: Id, body: LexiconEntryIn, session: SessionDep, runtime: RuntimeDep
) -> LexiconEntryOut:
    """``{grapheme, alias}`` reads the word as other words; ``{grapheme, phoneme}`` as IPA."""
    project_or_404(session, project_id)
    try:
        entry = Entry(body.grapheme, alias=body.alias, phoneme=body.phoneme).check()
    except LexiconError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from e
    _put(session, runtime, project_id, [entry])
    row = next(
        r
        for r in pronunciation.list_entries(session, project_id=project_id)
        if r.grapheme == entry.grapheme
    )
    return LexiconEntryOut.model_validate(row)


@router.delete(
    "/{project_id}/lexicon/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete a pronunciation",
    responses=ERRORS,
)
def delete_entry(project_id: Id, entry_id: EntryId, session: SessionDep) -> Response:
    """The words it touched are read by the front end again."""
    project_or_404(session, project_id)
    row = session.get(LexiconEntry, entry_id)
    if row is None or row.project_id != project_id:
        raise not_found("lexicon entry", entry_id)
    pronunciation.delete_entry(session, entry=row)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{project_id}/lexicon/import",
    response_model=LexiconOut,
    summary="Import a W3C PLS lexicon (entries for the same graphemes are replaced)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {PLS_MEDIA_TYPE: {"schema": {"type": "string"}}},
        }
    },
    responses={413: {"model": ErrorOut, "description": "too large or too many entries"}, **ERRORS},
)
async def import_pls(project_id: Id, request: Request, runtime: RuntimeDep) -> LexiconOut:
    """The body is the PLS document (UTF-8 XML, ``alphabet="ipa"``); multipart with a ``file``
    field works too."""
    from fastapi.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        async with request.form(max_files=1, max_part_size=MAX_PLS_BYTES + 1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, detail="send the PLS file in a form field named 'file'")
            data = await upload.read(MAX_PLS_BYTES + 1)
    else:
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_PLS_BYTES:
                break
    if len(data) > MAX_PLS_BYTES:
        raise HTTPException(413, detail=f"the PLS file is over {MAX_PLS_BYTES} bytes")
    limit = runtime.settings.max_lexicon_entries

    def store() -> LexiconOut:
        try:
            entries = read_pls(data, max_entries=limit)
        except LexiconError as e:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(e)) from e
        with runtime.session_factory() as session:
            project_or_404(session, project_id)
            _put(session, runtime, project_id, entries)
            return _lexicon(session, project_id)

    return await run_in_threadpool(store)


@router.get(
    "/{project_id}/lexicon.pls",
    summary="Export the lexicon as W3C PLS",
    response_class=Response,
    responses={200: {"content": {PLS_MEDIA_TYPE: {}}}, **ERRORS},
)
def export_pls(project_id: Id, session: SessionDep) -> Response:
    """A PLS 1.0 document with every entry."""
    project_or_404(session, project_id)
    rows = pronunciation.list_entries(session, project_id=project_id)
    data = write_pls(Entry(r.grapheme, alias=r.alias, phoneme=r.phoneme) for r in rows)
    return Response(
        data, media_type=PLS_MEDIA_TYPE, headers=attachment(f"project-{project_id}-lexicon.pls")
    )
