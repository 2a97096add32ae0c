"""Pieces shared by the ``/v1`` routers: documented error responses and download headers."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query

from api.schemas import ErrorOut
from audio.codecs import MEDIA_TYPES
from contract.limits import MAX_ID

# Every id in a path is a positive Postgres ``bigint``: a larger one is refused with 422 before it
# reaches the database (which would fail on it).
Id = Annotated[int, Path(ge=1, le=MAX_ID, description="a positive id")]
# List paging: where to start.
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="items to skip")]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or invalid API key"},
    404: {"model": ErrorOut, "description": "no such resource"},
    422: {"model": ErrorOut, "description": "invalid request"},
}


def json_errors() -> dict[int | str, dict[str, Any]]:
    """:data:`ERRORS` as JSON, for a route whose success is another media type (an event
    stream): its errors come before the stream starts."""
    return {
        code: {
            "description": doc["description"],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
        for code, doc in ERRORS.items()
    }


def audio_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of an audio download."""
    return {
        200: {
            "description": "the audio file",
            "content": {MEDIA_TYPES[f]: {} for f in ("wav", "flac", "mp3", "ogg")},
        },
        409: {"model": ErrorOut, "description": "not every segment is done yet"},
        **ERRORS,
    }


def attachment(filename: str) -> dict[str, str]:
    """A ``Content-Disposition`` header offering ``filename`` for download."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", filename).strip("-") or "audio"
    return {"Content-Disposition": f'attachment; filename="{safe}"'}
