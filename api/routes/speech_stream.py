"""``WebSocket /v1/audio/speech/stream``: text in as it is written, audio out sentence by sentence.

For voice agents and read-aloud clients whose text arrives a few words at a time: each sentence
is synthesized as soon as it is complete (or on ``flush``), so audio starts before the text ends.

Protocol (docs/streaming.md has the full reference and examples/stream_client.py a client):

Client → server, JSON text frames:

- ``{"type": "start", "voice": "joe", "speed": 1.0}`` — optional, and only as the first message;
  OpenAI's voice names stand for configured voices, as for ``POST /v1/audio/speech``, and an
  unknown voice is refused at once (1007).
- ``{"type": "text", "text": "Hello wor"}`` — a piece of text, spaces included, as it comes.
- ``{"type": "flush"}`` — speak what is buffered now, even without a sentence end.
- ``{"type": "end"}`` — no more text: the rest is spoken, then ``done`` and close 1000.

Server → client, in order, per sentence: a JSON ``audio`` message, then one binary frame:

- ``{"type": "audio", "index": 0, "text": "...", "sample_rate": 22050, "samples": n,
  "offset_ms": 0, "duration_ms": 1234, "words": [{"word", "start_ms", "end_ms"}],
  "timings": "model"}``; ``offset_ms`` and the word times count from the start of the
  stream's audio; each binary frame after the first starts with the pause between sentences.
- the binary frame: raw PCM, signed 16-bit little-endian, mono, at ``sample_rate``.
- at the end ``{"type": "done", "chunks": n, "duration_ms": ...}``.
- on an error ``{"type": "error", "code": 1013, "detail": "..."}`` then the close with that code.

Close codes: 1000 done; 1001 idle past ``VOXMILL_STREAM_IDLE_TIMEOUT_S``; 1003 a binary frame
from the client; 1007 invalid message, option, voice or SSML; 1009 a message or an unfinished
sentence over its limit; 1011 synthesis failed; 1013 voice servers saturated or unreachable
(retry later). A refused API key is refused at the handshake: HTTP 401 where the server supports
WebSocket denial responses, else close 1008.

A sentence with nothing to say (``...``, emoji) is a pause, as in documents: no audio of its own,
:data:`contract.limits.SILENT_SENTENCE_MS` more silence before the next sentence.

Back-pressure: at most ``VOXMILL_STREAM_MAX_PENDING`` complete sentences wait for synthesis and
sending; while they wait the socket is not read, so a client that reads audio slowly is slowed
down by TCP instead of growing the server's memory.

Word timings come from the voice's duration predictor (``"timings": "model"``); a voice that
reports none gets them estimated (the sentence's speech shared among its words by their letters,
``"timings": "estimated"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge, Histogram
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from api.lanes import OverloadedError
from api.models import Voice
from api.openai_compat import resolve_alias
from api.routes.ops import metrics_of
from api.routes.speech import STREAM_CHUNK_CHARS, pause_after
from api.security import key_matches
from audio.codecs import pause_samples
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import (
    Audio,
    NothingToSpeakError,
    PermanentSynthesisError,
    SynthesisError,
    Synthesizer,
    TransientSynthesisError,
    UnknownVoiceError,
)
from text_processing.frontend import speech_chunks
from text_processing.incremental import BufferFullError, SentenceBuffer
from text_processing.ssml import SsmlError

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["speech"])

# WebSocket close codes (RFC 6455 §7.4.1, and 1012-1014 from IANA's registry).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
# A close frame's reason is at most 123 bytes (RFC 6455 §5.5: 125-byte control payload).
_MAX_REASON_BYTES = 123


class StreamError(Exception):
    """Ends the stream with ``code``; ``detail`` goes to the client first."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class _Pause:
    """A sentence with nothing to say (``...``, emoji): spoken as a pause, as in documents."""

    text: str


class StartMessage(BaseModel):
    """The optional first message: the stream's voice and speed."""

    model_config = ConfigDict(extra="forbid")

    type: str
    voice: str | None = Field(default=None, max_length=100)
    speed: float = Field(
        default=limits.SPEED_DEFAULT,
        ge=limits.SPEED_MIN,
        le=limits.SPEED_MAX,
        allow_inf_nan=False,  # NaN: "a finite number", not a bound it does not break
    )


@dataclass(frozen=True)
class StreamMetrics:
    """The stream route's metrics, in the app's registry."""

    connections: Gauge
    pending: Gauge
    synthesizing: Gauge
    chunks: Counter
    closes: Counter
    first_audio_seconds: Histogram

    @classmethod
    def of(cls, app: Any) -> StreamMetrics:
        """The app's stream metrics (made on first use, in the app's registry)."""
        existing = getattr(app.state, "stream_metrics", None)
        if existing is not None:
            return existing
        registry = metrics_of(app).registry
        made = cls(
            connections=Gauge(
                "voxmill_stream_connections",
                "Open WebSocket speech streams.",
                registry=registry,
            ),
            pending=Gauge(
                "voxmill_stream_pending",
                "Complete sentences of WebSocket streams waiting to be synthesized and sent.",
                registry=registry,
            ),
            synthesizing=Gauge(
                "voxmill_stream_synthesizing",
                "Synthesizer calls running for WebSocket streams.",
                registry=registry,
            ),
            chunks=Counter(
                "voxmill_stream_chunks", "Sentences synthesized for streams.", registry=registry
            ),
            closes=Counter(
                "voxmill_stream_closes",
                "WebSocket streams ended, by close code (disconnect: the client went away).",
                ["code"],
                registry=registry,
            ),
            first_audio_seconds=Histogram(
                "voxmill_stream_first_audio_seconds",
                "Time from a stream's first complete sentence to its first audio sent.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
                registry=registry,
            ),
        )
        app.state.stream_metrics = made
        return made


def estimate_words(text: str, duration_ms: int, offset_ms: int) -> list[dict[str, Any]]:
    """Word times for ``text`` spoken in ``duration_ms`` starting at ``offset_ms``: the duration
    shared among the words in proportion to their letters (an estimate, marked as such).

    Returns:
        ``[{"word", "start_ms", "end_ms"}]`` in order; empty for text without words.
    """
    words = text.split()
    weights = [max(1, sum(c.isalnum() for c in w)) for w in words]
    total = sum(weights)
    out: list[dict[str, Any]] = []
    at = 0.0
    for word, weight in zip(words, weights, strict=True):
        start = offset_ms + at
        at += duration_ms * weight / total
        out.append({"word": word, "start_ms": round(start), "end_ms": round(offset_ms + at)})
    return out


def _word_times(audio: Audio, text: str, offset_ms: int) -> dict[str, Any]:
    """The chunk's ``words`` and where their times come from: ``"model"`` (the voice's duration
    predictor, :mod:`handlers.timings`) when the voice reported them, else ``"estimated"``
    (:func:`estimate_words`; voices built before timings existed)."""
    if audio.timings is not None and audio.timings.words:
        words = audio.timings.shifted(offset_ms).words
        return {
            "words": [{"word": w.text, "start_ms": w.start_ms, "end_ms": w.end_ms} for w in words],
            "timings": "model",
        }
    return {"words": estimate_words(text, audio.duration_ms, offset_ms), "timings": "estimated"}


def _presented_key(websocket: WebSocket) -> str:
    scheme, _, token = websocket.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _authorized(websocket: WebSocket, settings: Settings) -> bool:
    """Whether the handshake carries a configured key (``Authorization: Bearer``, as for the REST
    routes); if not, the handshake is refused with 401 (or close 1008)."""
    if not settings.api_keys:
        return True
    token = _presented_key(websocket)
    if token and key_matches(token, list(settings.api_key_roles())):
        return True
    detail = (
        "invalid API key"
        if token
        else "missing API key: send the header 'Authorization: Bearer <key>'"
    )
    try:
        await websocket.send_denial_response(
            JSONResponse(
                {"detail": detail},
                status_code=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": "Bearer"},
            )
        )
    except RuntimeError:  # the server cannot send a denial response: refuse with a close
        await websocket.close(CLOSE_POLICY, detail)
    return False


def known_voices(websocket: WebSocket, synthesizer: Synthesizer) -> list[str]:
    """The voices a stream may ask for: the synthesizer's and the registered (uploaded) ones,
    as ``POST /v1/jobs`` checks them. Empty when they cannot be listed (then synthesis says)."""
    try:
        known = list(synthesizer.voices())
        session_factory = getattr(websocket.app.state, "session_factory", None)
        if session_factory is not None:
            with session_factory() as session:
                known += session.scalars(select(Voice.name))
    except Exception:  # the check is a courtesy; the first synthesis still refuses the voice
        log.warning("could not list the voices for a speech stream", exc_info=True)
        return []
    return sorted(set(known))


def _drain(queue: asyncio.Queue[str | _Pause | None]) -> list[str | _Pause | None]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def _close(websocket: WebSocket, code: int, detail: str) -> int:
    """Tell the client why (an ``error`` message unless ``code`` is 1000), close with ``code``
    and return it; a client already gone is not an error."""
    if code != CLOSE_NORMAL:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await websocket.send_json({"type": "error", "code": code, "detail": detail})
    reason = detail.encode()[:_MAX_REASON_BYTES].decode(errors="ignore")
    with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
        await websocket.close(code, reason)
    return code


class _Stream:
    """One connection: a reader that splits the text into sentences and a speaker that
    synthesizes and sends them in order, joined by a bounded queue (the back-pressure)."""

    def __init__(self, websocket: WebSocket, settings: Settings, synthesizer: Synthesizer) -> None:
        self.ws = websocket
        self.settings = settings
        self.synthesizer = synthesizer
        self.metrics = StreamMetrics.of(websocket.app)
        self.voice = settings.default_voice
        self.params = SynthesisParams()
        self.pending: asyncio.Queue[str | _Pause | None] = asyncio.Queue(
            settings.stream_max_pending
        )
        self.buffer = SentenceBuffer(settings.stream_max_buffer_chars)
        self.first_sentence_at: float | None = None

    async def run(self) -> int:
        """Serve the stream; return the close code sent (``0``: the client went away)."""
        reader = asyncio.ensure_future(self._read())
        speaker = asyncio.ensure_future(self._speak())
        try:
            done, _ = await asyncio.wait({reader, speaker}, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # raises the first failure
            await speaker  # the reader ended cleanly ("end"): finish speaking
        except StreamError as e:
            return await _close(self.ws, e.code, e.detail)
        except (WebSocketDisconnect, OSError):
            return 0  # the client is gone: nothing to tell it
        finally:
            for task in (reader, speaker):
                task.cancel()
            # Wait for the cancellations, so nothing of this stream runs after it returns.
            await asyncio.gather(reader, speaker, return_exceptions=True)
            left = sum(1 for text in _drain(self.pending) if text is not None)
            self.metrics.pending.dec(left)
        return await _close(self.ws, CLOSE_NORMAL, "done")

    async def _receive(self) -> dict[str, Any]:
        try:
            message = await asyncio.wait_for(
                self.ws.receive(), timeout=self.settings.stream_idle_timeout_s
            )
        except TimeoutError as e:
            raise StreamError(
                CLOSE_GOING_AWAY,
                f"no message for {self.settings.stream_idle_timeout_s:g} s; closing the stream",
            ) from e
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if message.get("text") is None:
            raise StreamError(CLOSE_UNSUPPORTED, "send JSON text messages, not binary frames")
        text: str = message["text"]
        if len(text) > limits.STREAM_MAX_MESSAGE_CHARS:
            raise StreamError(
                CLOSE_TOO_BIG,
                f"a message of {len(text)} characters; the limit is "
                f"{limits.STREAM_MAX_MESSAGE_CHARS}: send the text in smaller pieces",
            )
        try:
            body = json.loads(text)
        except json.JSONDecodeError as e:
            raise StreamError(CLOSE_INVALID, f"not JSON: {e}") from e
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            raise StreamError(CLOSE_INVALID, 'each message is a JSON object with a "type"')
        return body

    async def _read(self) -> None:
        first = True
        while True:
            body = await self._receive()
            kind = body["type"]
            if kind == "start":
                if not first:
                    raise StreamError(CLOSE_INVALID, '"start" may only be the first message')
                await self._start(body)
            elif kind == "text":
                piece = body.get("text")
                if not isinstance(piece, str):
                    raise StreamError(CLOSE_INVALID, 'a "text" message needs a string "text"')
                try:
                    sentences = self.buffer.add(piece)
                except BufferFullError as e:
                    raise StreamError(CLOSE_TOO_BIG, str(e)) from e
                await self._queue(sentences)
            elif kind in ("flush", "end"):
                await self._queue(self.buffer.flush())
                if kind == "end":
                    await self.pending.put(None)
                    return
            else:
                raise StreamError(
                    CLOSE_INVALID, f"unknown message type {kind!r}: use start, text, flush or end"
                )
            first = False

    async def _start(self, body: dict[str, Any]) -> None:
        try:
            start = StartMessage.model_validate(body)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'start'}: {err['msg']}"
                for err in e.errors()[:3]
            )
            raise StreamError(CLOSE_INVALID, f"invalid start message: {problems}") from e
        if start.voice:
            # OpenAI's voice names stand for configured voices, as in POST /v1/audio/speech.
            voice = resolve_alias(start.voice, self.settings)
            known = await run_in_threadpool(known_voices, self.ws, self.synthesizer)
            if known and voice not in known:
                raise StreamError(
                    CLOSE_INVALID,
                    f"unknown voice {start.voice!r}; available voices: {', '.join(known)}",
                )
            self.voice = voice
        self.params = SynthesisParams(speed=start.speed)

    async def _queue(self, sentences: list[str]) -> None:
        for sentence in sentences:
            try:
                # Markdown removed, SSML kept whole, over-long sentences cut at clauses: the
                # same pieces POST /v1/audio/speech would speak.
                chunks = await run_in_threadpool(speech_chunks, sentence, STREAM_CHUNK_CHARS)
            except SsmlError as e:
                raise StreamError(CLOSE_INVALID, f"invalid SSML: {e}") from e
            said: list[str | _Pause] = [*chunks]
            if not chunks and sentence.strip():
                said = [_Pause(sentence)]
            for chunk in said:
                if self.first_sentence_at is None:
                    self.first_sentence_at = time.perf_counter()
                await self.pending.put(chunk)  # waits while the speaker is behind
                self.metrics.pending.inc()

    async def _speak(self) -> None:
        index = 0
        position = 0  # samples sent so far
        rate = 0
        previous: str | None = None
        paused_ms = 0  # sentences with nothing to say since the last audio
        while (text := await self.pending.get()) is not None:
            self.metrics.pending.dec()
            audio = None if isinstance(text, _Pause) else await self._synthesize(text)
            if audio is None or isinstance(text, _Pause):
                # Sent as silence before the next sentence: until then the sample rate is
                # unknown, and a pause with no speech after it would not be heard anyway.
                paused_ms += limits.SILENT_SENTENCE_MS
                continue
            rate = audio.sample_rate
            gap = 0 if previous is None else pause_samples(pause_after(previous) + paused_ms, rate)
            paused_ms = 0
            samples = np.concatenate([np.zeros(gap, dtype=np.int16), audio.samples])
            offset_ms = round(1000 * (position + gap) / rate)
            await self.ws.send_json(
                {
                    "type": "audio",
                    "index": index,
                    "text": text,
                    "sample_rate": rate,
                    "samples": len(samples),
                    "offset_ms": offset_ms,
                    "duration_ms": audio.duration_ms,
                    **_word_times(audio, text, offset_ms),
                }
            )
            await self.ws.send_bytes(samples.astype("<i2").tobytes())
            if index == 0 and self.first_sentence_at is not None:
                self.metrics.first_audio_seconds.observe(
                    time.perf_counter() - self.first_sentence_at
                )
            index += 1
            position += len(samples)
            previous = text
        duration_ms = round(1000 * position / rate) if rate else 0
        await self.ws.send_json({"type": "done", "chunks": index, "duration_ms": duration_ms})

    async def _synthesize(self, text: str) -> Audio | None:
        """The audio of ``text``; ``None`` when the voice finds nothing to say in it (a pause)."""
        self.metrics.synthesizing.inc()
        try:
            audio = await run_in_threadpool(
                self.synthesizer.synthesize, self.voice, text, self.params
            )
        except OverloadedError as e:
            raise StreamError(CLOSE_TRY_AGAIN, str(e)) from e
        except UnknownVoiceError as e:
            raise StreamError(CLOSE_INVALID, str(e)) from e
        except NothingToSpeakError as e:
            log.info("speech stream: a pause for %r: %s", text[:40], e)
            return None
        except TransientSynthesisError as e:
            raise StreamError(
                CLOSE_TRY_AGAIN, f"the voice server is busy or unreachable, retry shortly ({e})"
            ) from e
        except PermanentSynthesisError as e:
            raise StreamError(CLOSE_INVALID, f"synthesis refused the text: {e}") from e
        except SynthesisError as e:
            raise StreamError(CLOSE_INTERNAL, f"synthesis failed: {e}") from e
        finally:
            self.metrics.synthesizing.dec()
        self.metrics.chunks.inc()
        return audio


@router.websocket("/audio/speech/stream")
async def speech_stream(websocket: WebSocket) -> None:
    """Stream speech for text sent piece by piece (see the module docstring for the protocol)."""
    settings: Settings = websocket.app.state.settings
    if not await _authorized(websocket, settings):
        return
    metrics = StreamMetrics.of(websocket.app)
    await websocket.accept()
    metrics.connections.inc()
    code = 0
    try:
        synthesizer: Synthesizer | None = getattr(websocket.app.state, "synthesizer", None)
        if synthesizer is None:
            code = await _close(
                websocket,
                CLOSE_INTERNAL,
                "speech synthesis is not configured on this server: set VOXMILL_TORCHSERVE_URL",
            )
            return
        code = await _Stream(websocket, settings, synthesizer).run()
    finally:
        metrics.connections.dec()
        metrics.closes.labels(str(code) if code else "disconnect").inc()
