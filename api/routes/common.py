"""Pieces shared by the ``/v1`` routers: documented error responses and download headers."""

from __future__ import annotations

import re
from typing import Any

from api.schemas import ErrorOut
from audio.codecs import MEDIA_TYPES

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or invalid API key"},
    404: {"model": ErrorOut, "description": "no such resource"},
    422: {"model": ErrorOut, "description": "invalid request"},
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
