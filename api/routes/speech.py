"""``POST /v1/audio/speech`` (OpenAI-compatible synchronous synthesis); the voices themselves are
listed by ``GET /v1/voices`` (:mod:`api.routes.voices`).

The text goes straight to the app's synthesizer (TorchServe in the distributed mode, the handler
in-process in the embedded mode), never through the conversion queue. Text longer than one chunk
(about a sentence) is streamed: the first chunk is synthesized and sent at once, and while chunk
*n* is being sent chunk *n+1* is synthesized (a look-ahead of one), so the time to first audio is
one chunk's synthesis whatever the length of the input.

How each ``response_format`` is delivered:

One chunk is encoded as one complete file (with its length). Several are encoded as they come by
one :class:`audio.stream.StreamWriter`, which keeps a single encoder open for the whole answer:

- ``mp3`` (the default, as OpenAI's): one MP3 stream, without the Xing/LAME info frame (its frame
  count cannot be known before the end).
- ``opus`` (Ogg Opus at 48 kHz) and ``aac`` (AAC in ADTS): one PyAV encoder for the whole
  answer, its pages/frames sent as each chunk is encoded.
- ``wav``: a streaming WAV header whose sizes say "unknown"
  (0xFFFFFFFF, as ffmpeg and browsers accept), then 16-bit PCM per chunk.
- ``pcm``: raw 16-bit little-endian mono samples (rate in ``X-Sample-Rate``), streamed per chunk.
- ``flac`` and ``ogg``: written whole, after every chunk is synthesized (no streaming; the time to
  first byte is the whole synthesis): a FLAC stream carries no length, which many readers
  (libsndfile among them) refuse, and PyAV has no Vorbis encoder fit for use.

``stream_format: "sse"`` sends the same bytes as OpenAI's server-sent events
(:mod:`api.openai_sse`). ``timestamps: true`` adds the word and sentence times the voice measured:
a JSON answer (``audio`` base64, ``words``, ``sentences``), or a ``timestamps`` list on each SSE
delta. OpenAI's voice names map to configured voices (:mod:`api.openai_compat`).

Errors before the first byte become JSON errors in OpenAI's shape plus ``detail``
(:func:`api.openai_compat.error_response`): 404 for an unknown voice
(with the served voices), 503 with ``Retry-After`` for a busy or unreachable voice server, 422 for
text the voice refuses (and for input with nothing to speak: no letters or numbers). Every chunk
has something to say (:func:`text_processing.frontend.speech_chunks`); a later chunk the voice
still finds nothing to say in becomes a pause of ``limits.SILENT_SENTENCE_MS``, as such a sentence
of a document does. After the first byte the status is already sent, so any other failure is
logged and the stream ends early.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Literal, get_args

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.openai_compat import error_response, resolve_alias
from api.openai_sse import sse_response, timed_json
from api.routes.ops import Metrics, metrics_of
from api.security import require_api_key
from audio.codecs import encode, media_type, pause_samples
from audio.stream import StreamWriter
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from contract.timings import Span, Timings
from synthesis.base import (
    Audio,
    NothingToSpeakError,
    PermanentSynthesisError,
    SynthesisError,
    Synthesizer,
    TransientSynthesisError,
    UnknownVoiceError,
    VoiceServerAuthError,
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

ResponseFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm", "ogg"]
# Streamed chunk by chunk when the input has several; the others are encoded whole.
STREAMED_FORMATS: frozenset[str] = frozenset({"wav", "pcm", "mp3", "opus", "aac"})


class CreateSpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech`` (OpenAI's ``CreateSpeechRequest``); unknown fields
    (OpenAI's ``instructions``, ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(
        default=None,
        description="A voice name, or an OpenAI model name (tts-1, tts-1-hd) for the default voice",
    )
    voice: str | None = Field(default=None, description="The voice; wins over `model`")
    input: str = Field(min_length=1, description="The text to speak")
    response_format: ResponseFormat = Field(
        default="mp3", description="mp3 (default), opus, aac, flac, wav, pcm, ogg"
    )
    stream_format: Literal["audio", "sse"] = Field(
        default="audio", description="audio: the file's bytes; sse: OpenAI's server-sent events"
    )
    timestamps: StrictBool = Field(
        default=False,
        description="Also return word and sentence times (JSON answer, or on each SSE event)",
    )
    speed: float = Field(
        default=limits.SPEED_DEFAULT,
        ge=limits.SPEED_MIN,
        le=limits.SPEED_MAX,
        allow_inf_nan=False,  # NaN: "a finite number", not a bound it does not break
        description="Speaking rate, 1.0 = normal",
    )


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


def resolve_voice(body: CreateSpeechRequest, settings: Settings) -> str:
    """The voice to use: ``voice``, else ``model`` unless it is an OpenAI model name, else the
    default voice; an OpenAI voice name stands for the voice its alias names."""
    if body.voice:
        return resolve_alias(body.voice, settings)
    if body.model and body.model not in OPENAI_MODELS:
        return resolve_alias(body.model, settings)
    return settings.default_voice


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

    async def say_later(self, text: str, sample_rate: int) -> Audio:
        """As :meth:`say`, for a chunk after the first: one the voice finds nothing to say in
        becomes a pause (as such a sentence of a document does) instead of ending the answer."""
        try:
            return await self.say(text)
        except NothingToSpeakError as e:
            log.warning("speech with voice %r: a pause for %r: %s", self.voice, text[:40], e)
            return Audio(_silence(limits.SILENT_SENTENCE_MS, sample_rate), sample_rate)


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
        return limits.SENTENCE_PAUSE_MS
    return limits.CLAUSE_PAUSE_MS


def _silence(ms: int, sample_rate: int) -> np.ndarray:
    return np.zeros(pause_samples(ms, sample_rate), dtype=np.int16)


def _error_response(error: SynthesisError, voice: str, synthesizer: Synthesizer) -> JSONResponse:
    """The JSON error for a synthesis that failed before any audio was sent."""
    if isinstance(error, UnknownVoiceError):
        try:
            voices = sorted(synthesizer.voices())
        except Exception:  # the list is a courtesy; the 404 stands without it
            log.warning("could not list voices", exc_info=True)
            voices = []
        listed = ", ".join(voices) or "none"
        return error_response(
            status.HTTP_404_NOT_FOUND,
            f"unknown voice {voice!r}; available voices: {listed}",
            param="voice",
            code="voice_not_found",
            voices=voices,
        )
    if isinstance(error, (TransientSynthesisError, VoiceServerAuthError)):
        # A refused inference key is this server's problem, not the request's: 503, logged.
        log.warning("speech with voice %r: voice server unavailable: %s", voice, error)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"the voice server is busy or unreachable, retry shortly ({error})",
            code="voice_unavailable",
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
    return error_response(code, f"synthesis failed: {error}", param="input")


def _words_at(audio: Audio, offset: int) -> list[Span]:
    """``audio``'s words moved to start ``offset`` samples into the answer."""
    if audio.timings is None:
        return []
    return audio.timings.shifted(round(1000 * offset / audio.sample_rate)).words


async def _stream(
    speaker: _Speaker, chunks: list[str], first: Audio, fmt: str
) -> AsyncIterator[tuple[bytes, list[Span]]]:
    """The response body: ``first`` (the audio of ``chunks[0]``) at once, then each later chunk
    as it is synthesized, the next one always being synthesized while the current one is sent.
    Each piece comes with the words it speaks, timed from the start of the answer."""
    texts: Iterator[str] = iter(chunks[1:])
    rate = first.sample_rate

    def start_next() -> asyncio.Task[Audio] | None:
        text = next(texts, None)
        return None if text is None else asyncio.ensure_future(speaker.say_later(text, rate))

    sent = 1
    pending = start_next()
    with StreamWriter(fmt, rate) as writer:
        try:
            yield await run_in_threadpool(writer.write, first.samples), _words_at(first, 0)
            while pending is not None:
                audio = await pending
                pending = start_next()
                if audio.sample_rate != rate:
                    raise SynthesisError(
                        f"chunk {sent + 1} came at {audio.sample_rate} Hz, "
                        f"the stream is at {rate} Hz"
                    )
                gap = _silence(pause_after(chunks[sent - 1]), rate)
                words = _words_at(audio, writer.samples_written + len(gap))
                part = await run_in_threadpool(writer.write, np.concatenate([gap, audio.samples]))
                if part or words:
                    yield part, words
                sent += 1
            tail = await run_in_threadpool(writer.close)
            if tail:
                yield tail, []
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


async def _audio_bytes(pieces: AsyncIterator[tuple[bytes, list[Span]]]) -> AsyncIterator[bytes]:
    async for data, _words in pieces:
        if data:
            yield data


@router.post(
    "/audio/speech",
    summary="Speak a text (OpenAI-compatible)",
    response_class=Response,
    responses={
        200: {
            "content": {
                **{media_type(fmt): {} for fmt in get_args(ResponseFormat)},
                "text/event-stream": {},
                "application/json": {},
            }
        },
        404: {"description": "Unknown voice; the body lists the served voices"},
        422: {"description": "Input blank, too long, or refused by the voice"},
        503: {"description": "Voice server busy or unreachable; see Retry-After"},
    },
)
async def create_speech(
    body: CreateSpeechRequest,
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
        # The voice's own words for the same refusal, so that clients see one message for it.
        problem = limits.NOTHING_TO_SPEAK if body.input.strip() else "input is blank"
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{problem}: send the text to speak"
        )
    fmt = body.response_format
    voice = resolve_voice(body, settings)
    speaker = _Speaker(synthesizer, voice, SynthesisParams(speed=body.speed), metrics)
    try:
        first = await speaker.say(chunks[0])
        rate = first.sample_rate
        headers = {"X-Sample-Rate": str(rate)}
        streamed = fmt in STREAMED_FORMATS
        if streamed and body.stream_format == "sse":
            pieces = _stream(speaker, chunks, first, fmt)
            return sse_response(pieces, body.input, with_words=body.timestamps)
        if streamed and len(chunks) > 1 and not body.timestamps:
            return StreamingResponse(
                _audio_bytes(_stream(speaker, chunks, first, fmt)),
                media_type=media_type(fmt, rate),
                headers=headers,
            )
        parts = [first.samples]
        words = _words_at(first, 0)
        sentences = list(first.timings.sentences) if first.timings else []
        placed = len(first.samples)
        for previous, text in itertools.pairwise(chunks):
            audio = await speaker.say_later(text, rate)
            gap = _silence(pause_after(previous), rate)
            parts += [gap, audio.samples]
            if audio.timings is not None:
                moved = audio.timings.shifted(round(1000 * (placed + len(gap)) / rate))
                words += moved.words
                sentences += moved.sentences
            placed += len(gap) + len(audio.samples)
    except SynthesisError as e:
        return _error_response(e, voice, synthesizer)
    data = await run_in_threadpool(encode, np.concatenate(parts), rate, fmt)
    if body.stream_format == "sse":
        return sse_response(_once(data, words), body.input, with_words=body.timestamps)
    if body.timestamps:
        return timed_json(data, fmt, rate, placed, Timings(words=words, sentences=sentences))
    return Response(data, media_type=media_type(fmt, rate), headers=headers)


async def _once(data: bytes, words: list[Span]) -> AsyncIterator[tuple[bytes, list[Span]]]:
    yield data, words
