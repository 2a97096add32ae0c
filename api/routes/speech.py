"""``POST /v1/audio/speech`` (OpenAI-compatible synchronous synthesis) and ``GET /v1/voices``.

The text goes straight to the app's synthesizer (TorchServe in the distributed mode, the handler
in-process in the embedded mode), never through the conversion queue. Text longer than one chunk
(about a sentence) is streamed: the first chunk is synthesized and sent at once, and while chunk
*n* is being sent chunk *n+1* is synthesized (a look-ahead of one), so the time to first audio is
one chunk's synthesis whatever the length of the input.

How each ``response_format`` is delivered:

- ``wav`` (the default; OpenAI's is mp3): one chunk → a complete WAV with its length; several → a
  streaming WAV header whose sizes say "unknown" (0xFFFFFFFF, as ffmpeg and browsers accept),
  then 16-bit PCM per chunk.
- ``pcm``: raw 16-bit little-endian mono samples (rate in ``X-Sample-Rate``), streamed per chunk.
- ``mp3``: MPEG frames can be concatenated, so each chunk is encoded and streamed on its own
  (without its Xing/LAME info frame, whose frame count would otherwise make players stop after the
  first chunk). Each chunk adds the encoder's padding, a few tens of milliseconds between sentences.
- ``flac`` and ``ogg``: a stream of per-chunk files is not a valid FLAC or Ogg stream, so every
  chunk is synthesized first and the audio encoded once (no streaming; the time to first byte is
  the whole synthesis).

Errors before the first byte become JSON errors (``{"detail": ...}``): 404 for an unknown voice
(with the served voices), 503 with ``Retry-After`` for a busy or unreachable voice server, 422 for
text the voice refuses. After the first byte the status is already sent, so a failure is logged
and the stream ends early.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.routes.ops import Metrics, metrics_of
from api.security import require_api_key
from audio.codecs import (
    MEDIA_TYPES,
    encode,
    media_type,
    pause_samples,
    pcm_bytes,
    wav_stream_header,
)
from contract.messages import SynthesisParams
from contract.settings import Settings
from handlers.speech import ServiceOptions
from synthesis.base import (
    Audio,
    PermanentSynthesisError,
    SynthesisError,
    Synthesizer,
    TransientSynthesisError,
    UnknownVoiceError,
)
from text_processing.frontend import speech_chunks
from text_processing.ssml import SsmlError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["speech"], dependencies=[Depends(require_api_key)])

# OpenAI's model names; clients written for OpenAI send one of them, meaning "the usual voice".
OPENAI_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})
# The unit of streaming: about a sentence. Short sentences are packed up to this size (fewer
# round trips), long ones split at clauses; the voice handler itself accepts far more.
STREAM_CHUNK_CHARS = 200
# The first chunk is kept to whole sentences within this size when the text allows it: the time
# to first audio is that chunk's synthesis.
FIRST_CHUNK_CHARS = 100
# Seconds a client should wait before retrying after a 503.
RETRY_AFTER_S = 5

ResponseFormat = Literal["wav", "flac", "mp3", "ogg", "pcm"]
_ENCODED_ONCE: frozenset[str] = frozenset({"flac", "ogg"})


class SpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech``; unknown fields (OpenAI's ``instructions``, ...) are
    ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(
        default=None,
        description="A voice name, or an OpenAI model name (tts-1, tts-1-hd) for the default voice",
    )
    voice: str | None = Field(default=None, description="The voice; wins over `model`")
    input: str = Field(min_length=1, description="The text to speak")
    response_format: ResponseFormat = Field(default="wav", description="wav, flac, mp3, ogg, pcm")
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="Speaking rate, 1.0 = normal")


class VoiceInfo(BaseModel):
    """One voice a client can ask for."""

    id: str
    name: str
    default: bool = False


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _synthesizer(request: Request) -> Synthesizer:
    synthesizer: Synthesizer | None = getattr(request.app.state, "synthesizer", None)
    if synthesizer is None:
        # The distributed API without a TorchServe URL: conversions work (through the workers),
        # synchronous speech cannot.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=(
                "speech synthesis is not configured on this server: set VOXMILL_TORCHSERVE_URL "
                "(or VOXMILL_VOICE_ROUTES)"
            ),
        )
    return synthesizer


def _metrics(request: Request) -> Metrics:
    return metrics_of(request.app)


SettingsDep = Annotated[Settings, Depends(_settings)]
SynthesizerDep = Annotated[Synthesizer, Depends(_synthesizer)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]


def resolve_voice(body: SpeechRequest, default_voice: str) -> str:
    """The voice to use: ``voice``, else ``model`` unless it is an OpenAI model name, else the
    default voice."""
    if body.voice:
        return body.voice
    if body.model and body.model not in OPENAI_MODELS:
        return body.model
    return default_voice


class _Speaker:
    """One request's synthesizer calls, run off the event loop and measured."""

    def __init__(
        self, synthesizer: Synthesizer, voice: str, params: SynthesisParams, metrics: Metrics
    ) -> None:
        self.synthesizer = synthesizer
        self.voice = voice
        self.params = params
        self.metrics = metrics

    async def say(self, text: str) -> Audio:
        start = time.perf_counter()
        try:
            audio = await run_in_threadpool(
                self.synthesizer.synthesize, self.voice, text, self.params
            )
        except Exception as e:
            self.metrics.synthesis_failures.labels(self.voice, type(e).__name__).inc()
            raise
        self.metrics.synthesis_seconds.labels(self.voice).observe(time.perf_counter() - start)
        self.metrics.audio_seconds.labels(self.voice).inc(len(audio.samples) / audio.sample_rate)
        return audio


_PAUSES = ServiceOptions()


def plan_chunks(text: str) -> list[str]:
    """The pieces ``text`` is synthesized and streamed in, in order: whole sentences packed up to
    :data:`STREAM_CHUNK_CHARS` (longer sentences cut at clauses), the first piece kept shorter
    (:data:`FIRST_CHUNK_CHARS`) when that leaves whole sentences. Empty for blank text. Markdown
    markup is removed and SSML kept as SSML (see :func:`text_processing.frontend.speech_input`),
    so no tag is ever read out.

    Raises:
        SsmlError: Invalid SSML (the message says where).
    """
    chunks = speech_chunks(text, STREAM_CHUNK_CHARS)
    if chunks and len(chunks[0]) > FIRST_CHUNK_CHARS and "<" not in chunks[0]:
        head = speech_chunks(chunks[0], FIRST_CHUNK_CHARS)
        # Only at a sentence end: cutting the first sentence at a clause would change its tune.
        if len(head) > 1 and _ends_sentence(head[0]):
            chunks[:1] = [head[0], " ".join(head[1:])]
    return chunks


def _ends_sentence(text: str) -> bool:
    return text.rstrip()[-1:] in {".", "!", "?"}


def pause_after(text: str) -> int:
    """Milliseconds of silence to put after the chunk ``text`` when another follows: the pauses
    the voice handler puts between the sentences (or clauses) of one request, so streamed audio
    sounds like the same text synthesized in one call."""
    if _ends_sentence(text):
        return _PAUSES.sentence_pause_ms
    return _PAUSES.clause_pause_ms


def _silence(ms: int, sample_rate: int) -> np.ndarray:
    return np.zeros(pause_samples(ms, sample_rate), dtype=np.int16)


# MPEG-1 / MPEG-2(.5) layer III bitrates (kbit/s) and sample rates, by header index.
_MP3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(header: bytes) -> int | None:
    """Bytes in the layer III frame starting with ``header`` (4 bytes), or ``None`` if it is not
    a frame header."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    if layer != 1 or version == 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[3 if version == 3 else 2][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    return (144 if version == 3 else 72) * bitrate // rate + ((header[2] >> 1) & 1)


def mp3_stream_part(data: bytes) -> bytes:
    """An MP3 file's audio frames alone, fit to be concatenated with others into one stream.

    Drops a leading ID3v2 tag and the Xing/Info (LAME) frame: that frame carries the frame count
    of this file only, and decoders that trust it stop playing at the end of the first part.
    """
    offset = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = 0
        for byte in data[6:10]:  # a "syncsafe" integer: 7 bits per byte
            size = (size << 7) | (byte & 0x7F)
        offset = 10 + size + (10 if data[5] & 0x10 else 0)
    length = _mp3_frame_length(data[offset : offset + 4])
    if length is not None:
        first = data[offset : offset + length]
        if b"Xing" in first or b"Info" in first:
            offset += length
    return data[offset:]


def _error_response(error: SynthesisError, voice: str, synthesizer: Synthesizer) -> JSONResponse:
    """The JSON error for a synthesis that failed before any audio was sent."""
    if isinstance(error, UnknownVoiceError):
        try:
            voices = sorted(synthesizer.voices())
        except Exception:  # the list is a courtesy; the 404 stands without it
            log.warning("could not list voices", exc_info=True)
            voices = []
        listed = ", ".join(voices) or "none"
        return JSONResponse(
            {"detail": f"unknown voice {voice!r}; available voices: {listed}", "voices": voices},
            status_code=status.HTTP_404_NOT_FOUND,
        )
    if isinstance(error, TransientSynthesisError):
        log.warning("speech with voice %r: voice server unavailable: %s", voice, error)
        return JSONResponse(
            {"detail": f"the voice server is busy or unreachable, retry shortly ({error})"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    # A permanent failure is the voice refusing this text (or a server misconfiguration, which
    # readiness reports): retrying the same request will not help.
    log.warning("speech with voice %r failed: %s", voice, error)
    code = (
        status.HTTP_422_UNPROCESSABLE_CONTENT
        if isinstance(error, PermanentSynthesisError)
        else status.HTTP_500_INTERNAL_SERVER_ERROR
    )
    return JSONResponse({"detail": f"synthesis failed: {error}"}, status_code=code)


async def _encode_part(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """One piece of a streamed body: PCM for wav and pcm, a headerless MP3 part for mp3."""
    if fmt == "mp3":
        data = await run_in_threadpool(encode, samples, sample_rate, "mp3")
        return mp3_stream_part(data)
    return pcm_bytes(samples)


async def _stream(
    speaker: _Speaker, chunks: list[str], first: Audio, fmt: str
) -> AsyncIterator[bytes]:
    """The response body: ``first`` (the audio of ``chunks[0]``) at once, then each later chunk
    as it is synthesized, the next one always being synthesized while the current one is sent."""
    texts: Iterator[str] = iter(chunks[1:])

    def start_next() -> asyncio.Task[Audio] | None:
        text = next(texts, None)
        return None if text is None else asyncio.ensure_future(speaker.say(text))

    rate = first.sample_rate
    sent = 1
    pending = start_next()
    try:
        header = wav_stream_header(rate) if fmt == "wav" else b""
        yield header + await _encode_part(first.samples, rate, fmt)
        while pending is not None:
            audio = await pending
            pending = start_next()
            if audio.sample_rate != rate:
                raise SynthesisError(
                    f"chunk {sent + 1} came at {audio.sample_rate} Hz, the stream is at {rate} Hz"
                )
            gap = _silence(pause_after(chunks[sent - 1]), rate)
            yield await _encode_part(np.concatenate([gap, audio.samples]), rate, fmt)
            sent += 1
    except Exception as e:
        # The 200 and part of the audio are already on the wire: end the stream short.
        log.error(
            "speech stream with voice %r ended after %d of %d chunks: %s",
            speaker.voice,
            sent,
            len(chunks),
            e,
            exc_info=not isinstance(e, SynthesisError),
        )
    finally:
        if pending is not None:
            pending.cancel()


@router.post(
    "/audio/speech",
    summary="Speak a text (OpenAI-compatible)",
    response_class=Response,
    responses={
        200: {"content": {media: {} for media in sorted(set(MEDIA_TYPES.values()))}},
        404: {"description": "Unknown voice; the body lists the served voices"},
        422: {"description": "Input blank, too long, or refused by the voice"},
        503: {"description": "Voice server busy or unreachable; see Retry-After"},
    },
)
async def create_speech(
    body: SpeechRequest,
    settings: SettingsDep,
    synthesizer: SynthesizerDep,
    metrics: MetricsDep,
) -> Response:
    """Synthesize ``input`` and return the audio, streamed per sentence when it is long.

    See the module docstring for what each ``response_format`` does.
    """
    if len(body.input) > settings.max_speech_chars:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=(
                f"input is {len(body.input)} characters; the limit is {settings.max_speech_chars}."
                " Send shorter text, or convert long text as a document project"
            ),
        )
    try:
        chunks = await run_in_threadpool(plan_chunks, body.input)
    except SsmlError as e:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"invalid SSML in input: {e}"
        ) from e
    if not chunks:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="input is blank: send the text to speak"
        )
    fmt = body.response_format
    voice = resolve_voice(body, settings.default_voice)
    speaker = _Speaker(synthesizer, voice, SynthesisParams(speed=body.speed), metrics)
    try:
        first = await speaker.say(chunks[0])
        rate = first.sample_rate
        headers = {"X-Sample-Rate": str(rate)}
        if len(chunks) > 1 and fmt not in _ENCODED_ONCE:
            return StreamingResponse(
                _stream(speaker, chunks, first, fmt),
                media_type=media_type(fmt, rate),
                headers=headers,
            )
        parts = [first.samples]
        for previous, text in itertools.pairwise(chunks):
            audio = await speaker.say(text)
            parts += [_silence(pause_after(previous), rate), audio.samples]
    except SynthesisError as e:
        return _error_response(e, voice, synthesizer)
    data = await run_in_threadpool(encode, np.concatenate(parts), rate, fmt)
    return Response(data, media_type=media_type(fmt, rate), headers=headers)


@router.get("/voices", summary="The voices this server speaks with")
async def list_voices(settings: SettingsDep, synthesizer: SynthesizerDep) -> list[VoiceInfo]:
    """Every voice the synthesizer serves, the default one marked."""
    names = await run_in_threadpool(synthesizer.voices)
    return [
        VoiceInfo(id=name, name=name, default=name == settings.default_voice)
        for name in sorted(names)
    ]
