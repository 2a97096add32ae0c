"""Text-to-speech requests in, audio out: validation, the text front end, dynamic batching.

Everything the TorchServe handler does lives here, importable and testable without TorchServe.
A batch of requests becomes one list of sentences; sentences that share voice parameters run
through the model together in padded calls (sorted by length to keep the padding small), and
every waveform comes back trimmed to its own length before being stitched back per request.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contract import limits
from handlers.backends.base import Backend, VoiceParams
from handlers.batching import plan_calls
from text_processing.chunking import split_for_synthesis
from text_processing.normalize import normalize

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
    """One validated request to the voice handler (one TorchServe batch item)."""

    text: str
    params: VoiceParams = field(default_factory=VoiceParams)
    format: str = "wav"


@dataclass(frozen=True)
class ServiceOptions:
    """Tuning that comes from the ``handler:`` section of ``model-config.yaml``."""

    max_text_chars: int = limits.MAX_SEGMENT_CHARS
    chunk_chars: int = 400
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
    unknown = set(body) - {"text", "speed", "noise_scale", "noise_w", "format"}
    if unknown:
        raise RequestError(f"unknown field(s): {', '.join(sorted(unknown))}")
    text = body.get("text")
    if not isinstance(text, str):
        raise RequestError("'text' is required and must be a string")
    if not text.strip():
        raise RequestError("'text' is empty: give the text to speak")
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
    return SynthesisRequest(text=text, params=params, format=fmt)


def _normalize_peak(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-6:
        return np.zeros_like(audio)
    return (audio * (PEAK / peak)).astype(np.float32)


@dataclass
class _Item:
    request: int
    ids: list[int]
    pause_after_ms: int
    audio: np.ndarray | None = None


class SpeechService:
    """Synthesizes batches of requests with one back-end."""

    def __init__(self, backend: Backend, options: ServiceOptions | None = None) -> None:
        self.backend = backend
        self.options = options or ServiceOptions()

    @property
    def sample_rate(self) -> int:
        """The voice's sample rate in Hz."""
        return self.backend.sample_rate

    def _items(self, index: int, request: SynthesisRequest) -> list[_Item]:
        opts = self.options
        items: list[_Item] = []
        chunks = split_for_synthesis(normalize(request.text), opts.chunk_chars)
        for chunk in chunks:
            sentences = self.backend.prepare(chunk)
            ends_sentence = chunk.rstrip()[-1:] in {".", "!", "?"}
            for n, ids in enumerate(sentences):
                last = n == len(sentences) - 1
                pause = (
                    opts.sentence_pause_ms if (not last or ends_sentence) else opts.clause_pause_ms
                )
                items.append(_Item(index, ids, pause))
        return items

    def synthesize_each(self, requests: list[SynthesisRequest | RequestError]) -> list[Any]:
        """Synthesize every valid request of a batch; float32 audio per request, in order.

        A request that was already a :class:`RequestError`, or whose text has nothing speakable,
        yields its error in its place instead of raising.
        """
        results: list[Any] = list(requests)
        items: list[_Item] = []
        params: list[VoiceParams] = []
        for i, request in enumerate(requests):
            params.append(
                request.params if isinstance(request, SynthesisRequest) else VoiceParams()
            )
            if isinstance(request, RequestError):
                continue
            found = self._items(i, request)
            if not found:
                results[i] = RequestError("the text has nothing to speak (no letters or numbers)")
            items.extend(found)
        self._run(items, params)
        audio = self._assemble(items, len(requests))
        return [r if isinstance(r, RequestError) else audio[i] for i, r in enumerate(results)]

    def _run(self, items: list[_Item], params: list[VoiceParams]) -> None:
        groups: dict[VoiceParams, list[_Item]] = defaultdict(list)
        for item in items:
            groups[params[item.request]].append(item)
        size = max(1, self.options.max_batch_items)
        for voice_params, group in groups.items():
            group.sort(key=lambda it: len(it.ids))
            calls = plan_calls(
                [len(it.ids) for it in group],
                max_items=size,
                call_overhead_tokens=max(0, self.options.call_overhead_tokens),
            )
            for run in calls:
                batch = group[run.start : run.stop]
                waves = self.backend.infer([it.ids for it in batch], voice_params)
                for item, wave in zip(batch, waves, strict=True):
                    item.audio = _normalize_peak(wave)

    def _assemble(self, items: list[_Item], count: int) -> list[np.ndarray]:
        per_request: list[list[np.ndarray]] = [[] for _ in range(count)]
        rate = self.backend.sample_rate
        for position, item in enumerate(items):
            assert item.audio is not None
            per_request[item.request].append(item.audio)
            last_of_request = (
                position + 1 == len(items) or items[position + 1].request != item.request
            )
            if not last_of_request:
                per_request[item.request].append(
                    np.zeros(rate * item.pause_after_ms // 1000, dtype=np.float32)
                )
        return [
            np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
            for parts in per_request
        ]
