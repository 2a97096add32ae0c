"""The two non-audio answers of ``POST /v1/audio/speech``: OpenAI's server-sent events, and the
timed JSON answer (audio with its word and sentence times).

**SSE** (``stream_format: "sse"``), as OpenAI's API reference defines the speech stream events:
one ``speech.audio.delta`` event per piece of encoded audio (``{"type": "speech.audio.delta",
"audio": "<base64>"}``), then ``speech.audio.done`` with ``usage``. The audio pieces concatenated
are the same file the plain answer would be. With ``timestamps: true`` each delta also carries
``timestamps``: the words it speaks, ``{"word", "start", "end"}`` in seconds from the start.
Usage counts are what Voxmill can count: input characters as ``input_tokens`` (there is no
tokenizer), output as 0.

**Timed JSON** (``timestamps: true`` without SSE): ``{"audio": "<base64>", "content_type",
"sample_rate", "duration", "words": [{"word", "start", "end"}], "sentences": [{"text", "start",
"end"}]}``, times in seconds (the units of OpenAI's ``verbose_json`` transcription words).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi.responses import JSONResponse, StreamingResponse

from audio.codecs import media_type
from contract.timings import Span, Timings

log = logging.getLogger(__name__)


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def word_objects(words: list[Span]) -> list[dict[str, Any]]:
    """Words as OpenAI's transcription words: ``{"word", "start", "end"}`` in seconds."""
    return [
        {"word": w.text, "start": _seconds(w.start_ms), "end": _seconds(w.end_ms)} for w in words
    ]


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def sse_response(
    pieces: AsyncIterator[tuple[bytes, list[Span]]], text: str, *, with_words: bool
) -> StreamingResponse:
    """Server-sent events of the audio pieces (each ``(encoded bytes, words)``)."""

    async def events() -> AsyncIterator[bytes]:
        async for data, words in pieces:
            event: dict[str, Any] = {
                "type": "speech.audio.delta",
                "audio": base64.b64encode(data).decode("ascii"),
            }
            if with_words:
                event["timestamps"] = word_objects(words)
            yield _event(event)
        usage = {"input_tokens": len(text), "output_tokens": 0, "total_tokens": len(text)}
        yield _event({"type": "speech.audio.done", "usage": usage})

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def timed_json(
    data: bytes, fmt: str, sample_rate: int, num_samples: int, timings: Timings
) -> JSONResponse:
    """The audio (base64) with its words and sentences."""
    return JSONResponse(
        {
            "audio": base64.b64encode(data).decode("ascii"),
            "content_type": media_type(fmt, sample_rate),
            "sample_rate": sample_rate,
            "duration": round(num_samples / sample_rate, 3),
            "words": word_objects(timings.words),
            "sentences": [
                {"text": s.text, "start": _seconds(s.start_ms), "end": _seconds(s.end_ms)}
                for s in timings.sentences
            ],
        }
    )
