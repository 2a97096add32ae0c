"""Text-to-speech requests in, audio out: validation, the text front end, dynamic batching.

Everything the TorchServe handler does lives here, importable and testable without TorchServe.
A request's text (plain, SSML, or a segment's spoken form) goes through the one front end,
:func:`text_processing.frontend.pieces`: the same sentence splitter as documents, the same
normalizer. A request may instead give the pieces directly (``"pieces"``: text, IPA phonemes,
pauses, each with a rate). A batch of requests becomes one list of sentences; sentences that share
voice parameters run through the model together in padded calls (sorted by length to keep the
padding small), and every waveform comes back trimmed to its own length before being stitched
back per request, with the pauses between sentences and those the request asked for.
:meth:`SpeechService.synthesize_timed` also gives each request's word and sentence times, from the
durations the voice predicted for each input symbol (:mod:`handlers.timings`).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from contract import limits
from contract.timings import Span, Timings
from handlers.backends.base import Backend, VoiceParams
from handlers.batching import plan_calls
from handlers.timings import Group, align_words, written_words
from text_processing.frontend import pieces as front_end
from text_processing.spoken import normalize
from text_processing.ssml import Piece, SsmlError
from text_processing.structure.sentences import split_long

logger = logging.getLogger(__name__)

# What a caller may ask for: FLAC is what conversions store (encoded here, once, and handed on
# untouched); WAV and raw PCM give samples to callers that process them (REST speech streaming).
FORMATS = ("wav", "flac", "pcm")
PEAK = 0.95


class RequestError(ValueError):
    """A request the handler refuses; the message goes back to the caller as is."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SynthesisRequest:
    """One validated request to the voice handler (one TorchServe batch item): its text (for
    logs) and the pieces the front end made of it (sentences in spoken form, phonemes, pauses)."""

    text: str
    params: VoiceParams = field(default_factory=VoiceParams)
    format: str = "wav"
    pieces: tuple[Piece, ...] = ()


@dataclass(frozen=True)
class ServiceOptions:
    """Tuning that comes from the ``handler:`` section of ``model-config.yaml``."""

    max_text_chars: int = limits.MAX_SEGMENT_CHARS
    chunk_chars: int = limits.MAX_SENTENCE_CHARS
    max_batch_items: int = 16
    # What one more padded model call costs, in padded input tokens (handlers/batching.py);
    # 0 fills every call up to max_batch_items.
    call_overhead_tokens: int = 0
    sentence_pause_ms: int = limits.SENTENCE_PAUSE_MS
    clause_pause_ms: int = limits.CLAUSE_PAUSE_MS

    @classmethod
    def from_mapping(cls, raw: dict[str, Any] | None) -> ServiceOptions:
        """Build from a config mapping, ignoring unknown keys."""
        raw = raw or {}
        known = {k: int(v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _number(body: dict[str, Any], key: str, default: float | None, lo: float, hi: float) -> Any:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"'{key}' must be a number between {lo} and {hi}")
    if not math.isfinite(value):
        raise RequestError(f"'{key}' must be a finite number between {lo} and {hi}, got {value}")
    if not lo <= float(value) <= hi:
        raise RequestError(f"'{key}' must be between {lo} and {hi}, got {value}")
    return float(value)


def parse_request(raw: Any, *, max_text_chars: int) -> SynthesisRequest:
    """Validate one request body (JSON object, JSON bytes, or plain text bytes).

    Raises:
        RequestError: With a message that says what was wrong.
    """
    import json

    body: Any = raw
    if isinstance(raw, bytes | bytearray):
        decoded = bytes(raw).decode("utf-8", errors="strict") if raw else ""
        if decoded.lstrip().startswith("{"):
            try:
                body = json.loads(decoded)
            except json.JSONDecodeError as e:
                raise RequestError(f"request body is not valid JSON: {e.msg}") from e
        else:
            body = {"text": decoded}
    if not isinstance(body, dict):
        raise RequestError('request body must be a JSON object like {"text": "Hello."}')
    unknown = set(body) - {"text", "pieces", "speed", "noise_scale", "noise_w", "format"}
    if unknown:
        raise RequestError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "pieces" in body:
        if "text" in body:
            raise RequestError("give either 'text' or 'pieces', not both")
        pieces = _parse_pieces(body["pieces"])
        text = " ".join(p.text for p in pieces if p.kind != "break")
    else:
        given = body.get("text")
        if not isinstance(given, str):
            raise RequestError("'text' (or 'pieces') is required and must be a string")
        text = given
        if not text.strip():
            raise RequestError("'text' is empty: give the text to speak")
        pieces = []
    if len(text) > max_text_chars:
        raise RequestError(
            f"'text' is {len(text)} characters; the limit is {max_text_chars}. "
            "Split longer documents into sentences (the conversion API does this for you).",
            status=413,
        )
    fmt = body.get("format", "wav")
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise RequestError(f"'format' must be one of {', '.join(FORMATS)}")
    params = VoiceParams(
        speed=_number(body, "speed", limits.SPEED_DEFAULT, limits.SPEED_MIN, limits.SPEED_MAX),
        noise_scale=_number(body, "noise_scale", None, limits.NOISE_MIN, limits.NOISE_MAX),
        noise_w=_number(body, "noise_w", None, limits.NOISE_MIN, limits.NOISE_MAX),
    )
    try:
        if not pieces:
            pieces = front_end(text)
        else:  # each text piece through the same front end: sentences, spoken form
            pieces = [
                replace(q, rate=q.rate * p.rate) if q.kind != "break" else q
                for p in pieces
                for q in (front_end(p.text) if p.kind == "text" else [p])
            ]
    except SsmlError as e:
        raise RequestError(f"invalid SSML: {e}") from e
    return SynthesisRequest(text=text, params=params, format=fmt, pieces=tuple(pieces))


def _parse_pieces(raw: Any) -> list[Piece]:
    """The ``pieces`` field: ``[{"text": "..."} | {"ipa": "..."} | {"break_ms": 500}, ...]``,
    text and IPA pieces with an optional ``"rate"`` (a factor on the speed, 0.25 to 4)."""
    if not isinstance(raw, list) or not raw:
        raise RequestError("'pieces' must be a non-empty list")
    out: list[Piece] = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict) or len(set(item) & {"text", "ipa", "break_ms"}) != 1:
            raise RequestError(
                f"pieces[{n}] must be an object with one of 'text', 'ipa' or 'break_ms'"
            )
        extra = set(item) - {"text", "ipa", "break_ms", "rate"}
        if extra:
            raise RequestError(f"pieces[{n}]: unknown field(s): {', '.join(sorted(extra))}")
        rate = _number(item, "rate", 1.0, limits.SPEED_MIN, limits.SPEED_MAX)
        if "break_ms" in item:
            ms = item["break_ms"]
            top = limits.MAX_BREAK_MS
            if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= top:
                raise RequestError(f"pieces[{n}].break_ms must be 0 to {top}")
            out.append(Piece("break", ms=ms))
            continue
        key = "text" if "text" in item else "ipa"
        value = item[key]
        if not isinstance(value, str) or not value.strip():
            raise RequestError(f"pieces[{n}].{key} must be a non-blank string")
        out.append(
            Piece("text", value, rate=rate) if key == "text" else Piece("ipa", ipa=value, rate=rate)
        )
    return out


def _normalize_peak(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-6:
        return np.zeros_like(audio)
    return (audio * (PEAK / peak)).astype(np.float32)


@dataclass
class _Item:
    request: int
    ids: list[int] | None  # None: a pause, whose audio is already there
    pause_after_ms: int
    rate: float = 1.0
    audio: np.ndarray | None = None
    forced_pause: bool = False  # a pause the request asked for: kept even at the very end
    chunk: int | None = None  # index into _Request.chunks: the text this item speaks part of
    id_samples: np.ndarray | None = None  # samples per input id, from the duration predictor
    start: int = 0  # where its audio starts in the request's answer, in samples


@dataclass(frozen=True)
class Timed:
    """One request's audio with its word and sentence timings (``None`` when the voice cannot
    give durations)."""

    audio: np.ndarray
    timings: Timings | None


class SpeechService:
    """Synthesizes batches of requests with one back-end."""

    def __init__(self, backend: Backend, options: ServiceOptions | None = None) -> None:
        self.backend = backend
        self.options = options or ServiceOptions()

    @property
    def sample_rate(self) -> int:
        """The voice's sample rate in Hz."""
        return self.backend.sample_rate

    def _items(self, index: int, request: SynthesisRequest, chunks: list[str]) -> list[_Item]:
        """The request's model inputs: one item per sentence the front end made (cut at clauses
        when longer than ``chunk_chars``), one per IPA piece, and pauses between them."""
        opts = self.options
        items: list[_Item] = []
        for piece in request.pieces:
            if piece.kind == "break":
                if items:
                    items[-1].pause_after_ms = piece.ms  # the asked-for pause replaces ours
                    items[-1].forced_pause = True
                elif piece.ms:
                    silence = np.zeros(self.sample_rate * piece.ms // 1000, dtype=np.float32)
                    items.append(_Item(index, None, 0, audio=silence))
                continue
            if piece.kind == "ipa":
                prepare_ipa = getattr(self.backend, "prepare_ipa", None)
                sequences = (
                    [prepare_ipa(piece.ipa)]
                    if prepare_ipa is not None
                    else self.backend.prepare(normalize(piece.text))
                )
                chunks.append(piece.text)
                for ids in sequences:
                    items.append(
                        _Item(index, ids, opts.clause_pause_ms, piece.rate, chunk=len(chunks) - 1)
                    )
                continue
            sentence = piece.text
            for a, b in split_long(sentence, 0, len(sentence), opts.chunk_chars):
                chunk = sentence[a:b]
                ends_sentence = chunk.rstrip()[-1:] in {".", "!", "?"} or b == len(sentence)
                sequences = self.backend.prepare(chunk)
                chunks.append(chunk)
                for n, ids in enumerate(sequences):
                    last = n == len(sequences) - 1
                    pause = (
                        opts.sentence_pause_ms
                        if (not last or ends_sentence)
                        else opts.clause_pause_ms
                    )
                    items.append(_Item(index, ids, pause, piece.rate, chunk=len(chunks) - 1))
        return items

    def synthesize_each(self, requests: list[SynthesisRequest | RequestError]) -> list[Any]:
        """Synthesize every valid request of a batch; float32 audio per request, in order.

        A request that was already a :class:`RequestError`, or whose text has nothing speakable,
        yields its error in its place instead of raising.
        """
        return [r.audio if isinstance(r, Timed) else r for r in self.synthesize_timed(requests)]

    def synthesize_timed(
        self, requests: list[SynthesisRequest | RequestError]
    ) -> list[Timed | RequestError]:
        """As :meth:`synthesize_each`, each audio with its :class:`Timed` word and sentence
        times (milliseconds from the start of that request's audio)."""
        results: list[Any] = list(requests)
        items: list[_Item] = []
        chunks: list[list[str]] = [[] for _ in requests]
        params: list[VoiceParams] = []
        for i, request in enumerate(requests):
            params.append(
                request.params if isinstance(request, SynthesisRequest) else VoiceParams()
            )
            if isinstance(request, RequestError):
                continue
            found = self._items(i, request, chunks[i])
            if not found:
                results[i] = RequestError(limits.NOTHING_TO_SPEAK)
            items.extend(found)
        self._run(items, params)
        audio = self._assemble(items, len(requests))
        return [
            r
            if isinstance(r, RequestError)
            else Timed(audio[i], self._timings([it for it in items if it.request == i], chunks[i]))
            for i, r in enumerate(results)
        ]

    def _timings(self, items: list[_Item], chunks: list[str]) -> Timings | None:
        """Words and sentences of one request, from the items' durations and places."""
        groups_for = getattr(self.backend, "groups", None)
        word_lengths = getattr(self.backend, "word_lengths", None)
        if groups_for is None or word_lengths is None:
            return None
        rate = self.sample_rate
        per_chunk: dict[int, list[_Item]] = defaultdict(list)
        for item in items:
            if item.chunk is not None and item.audio is not None:
                if item.id_samples is None:
                    return None
                per_chunk[item.chunk].append(item)

        def ms(samples: int) -> int:
            return round(1000 * samples / rate)

        words: list[Span] = []
        sentences: list[Span] = []
        for chunk, parts in sorted(per_chunk.items()):
            groups: list[Group] = []
            for item in parts:
                groups += groups_for(item.ids, item.id_samples, item.start)
            text = chunks[chunk]
            written = written_words(text)
            for word, a, b in align_words(written, word_lengths(written), groups):
                words.append(Span(text=word, start_ms=ms(a), end_ms=ms(b)))
            first, last = parts[0], parts[-1]
            assert last.audio is not None
            sentences.append(
                Span(
                    text=" ".join(text.split()),
                    start_ms=ms(first.start),
                    end_ms=ms(last.start + len(last.audio)),
                )
            )
        return Timings(words=words, sentences=sentences)

    def _run(self, items: list[_Item], params: list[VoiceParams]) -> None:
        groups: dict[VoiceParams, list[_Item]] = defaultdict(list)
        for item in items:
            if item.ids is None:
                continue
            base = params[item.request]
            if item.rate != 1.0:
                speed = min(limits.SPEED_MAX, max(limits.SPEED_MIN, base.speed * item.rate))
                base = VoiceParams(speed=speed, noise_scale=base.noise_scale, noise_w=base.noise_w)
            groups[base].append(item)
        size = max(1, self.options.max_batch_items)
        for voice_params, group in groups.items():
            group.sort(key=lambda it: len(it.ids or ()))
            calls = plan_calls(
                [len(it.ids or ()) for it in group],
                max_items=size,
                call_overhead_tokens=max(0, self.options.call_overhead_tokens),
            )
            infer_timed = getattr(self.backend, "infer_timed", None)
            for run in calls:
                batch = group[run.start : run.stop]
                inputs = [it.ids or [] for it in batch]
                if infer_timed is not None:
                    for item, (wave, id_samples) in zip(
                        batch, infer_timed(inputs, voice_params), strict=True
                    ):
                        item.audio = _normalize_peak(wave)
                        item.id_samples = id_samples
                    continue
                waves = self.backend.infer(inputs, voice_params)
                for item, wave in zip(batch, waves, strict=True):
                    item.audio = _normalize_peak(wave)

    def _assemble(self, items: list[_Item], count: int) -> list[np.ndarray]:
        per_request: list[list[np.ndarray]] = [[] for _ in range(count)]
        rate = self.backend.sample_rate
        placed = [0] * count
        for position, item in enumerate(items):
            assert item.audio is not None
            item.start = placed[item.request]
            placed[item.request] += len(item.audio)
            per_request[item.request].append(item.audio)
            last_of_request = (
                position + 1 == len(items) or items[position + 1].request != item.request
            )
            if not last_of_request or item.forced_pause:
                pause = np.zeros(rate * item.pause_after_ms // 1000, dtype=np.float32)
                placed[item.request] += len(pause)
                per_request[item.request].append(pause)
        return [
            np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            for parts in per_request
        ]
