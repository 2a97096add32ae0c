"""The one interface every caller of a voice uses: the worker, the REST endpoint and the CLI.

Two implementations: :class:`synthesis.torchserve.TorchServeSynthesizer` (HTTP to TorchServe, the
distributed mode) and :class:`synthesis.inprocess.InProcessSynthesizer` (the handler loaded in this
process, the embedded mode). Both return the same audio for the same text, encoded by the same
handler code.

Two ways to ask: :meth:`Synthesizer.synthesize_encoded` returns the file the voice handler
encoded (FLAC, for storage), handed on untouched with its length from the handler's headers;
:meth:`Synthesizer.synthesize` returns samples (raw PCM from the handler) for callers that join or
re-encode them (REST streaming, the CLI).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from contract import limits
from contract.messages import SynthesisParams
from contract.timings import Timings

log = logging.getLogger(__name__)


class SynthesisError(Exception):
    """A synthesis that did not produce audio."""


class TransientSynthesisError(SynthesisError):
    """Worth retrying: the server was busy, timed out or dropped the connection."""


class VoiceServerUnavailable(TransientSynthesisError):
    """The voice server is down, restarting or overloaded (refused or dropped connection, HTTP
    502/503/504): the task waits for it, within the time budget, instead of counting attempts."""


class VoiceServerAuthError(SynthesisError):
    """The voice server refused this process's credentials (TorchServe's inference key): a problem
    of the worker, never of a segment. The worker stops consuming until a re-read key works."""


class PermanentSynthesisError(SynthesisError):
    """Retrying will not help: the voice server rejected the input or does not know the voice."""


class UnknownVoiceError(PermanentSynthesisError):
    """The voice is not served."""


class NothingToSpeakError(PermanentSynthesisError):
    """The voice found nothing to say in the text (only punctuation, symbols or emoji)."""


def refusal(message: str) -> PermanentSynthesisError:
    """The error for a voice handler's refusal ``message``: :class:`NothingToSpeakError` when
    the handler found nothing to say, else a plain :class:`PermanentSynthesisError`."""
    if limits.NOTHING_TO_SPEAK in message:
        return NothingToSpeakError(message)
    return PermanentSynthesisError(message)


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit audio."""

    samples: np.ndarray  # int16, shape (n,)
    sample_rate: int
    # Word and sentence times from the voice's duration predictor; None if it gives none.
    timings: Timings | None = field(default=None, compare=False)

    @property
    def duration_ms(self) -> int:
        """Length in milliseconds."""
        return round(1000 * len(self.samples) / self.sample_rate)

    @classmethod
    def from_pcm(cls, data: bytes, sample_rate: int, timings: Timings | None = None) -> Audio:
        """From raw signed 16-bit little-endian PCM (the handler's ``pcm`` format)."""
        if len(data) % 2:
            raise PermanentSynthesisError(f"{len(data)} bytes of 16-bit PCM: an odd count")
        return cls(
            samples=np.frombuffer(data, dtype="<i2").astype(np.int16),
            sample_rate=sample_rate,
            timings=timings,
        )


def timings_from_header(value: str | None) -> Timings | None:
    """The handler's ``X-Timings`` header, or ``None`` when absent or unreadable (the audio is
    still good: timings are an extra, and an archive built before them sends none)."""
    if not value:
        return None
    try:
        return Timings.from_header(value)
    except ValueError as e:  # pydantic's ValidationError is one
        log.warning("ignoring unreadable X-Timings header: %s", e)
        return None


def handler_request(text: str, params: SynthesisParams | None, fmt: str) -> dict[str, object]:
    """The body the voice handler takes (``handlers/voxmill_handler.py``) for one text."""
    params = params or SynthesisParams()
    body: dict[str, object] = {"text": text, "speed": params.speed, "format": fmt}
    if params.noise_scale is not None:
        body["noise_scale"] = params.noise_scale
    if params.noise_w is not None:
        body["noise_w"] = params.noise_w
    return body


@dataclass(frozen=True)
class EncodedAudio:
    """A mono audio file as the voice handler encoded it.

    Attributes:
        data: The file (for ``flac``: a complete FLAC file).
        format: Its format (``flac``, ``wav`` or ``pcm``).
        sample_rate: Samples per second (the handler's ``X-Sample-Rate``).
        num_samples: Its length in samples (the handler's ``X-Audio-Samples``).
        timings: Word and sentence times (the handler's ``X-Timings``), if the voice gives them.
    """

    data: bytes = field(repr=False)
    format: str
    sample_rate: int
    num_samples: int
    timings: Timings | None = field(default=None, compare=False)

    @property
    def duration_ms(self) -> int:
        """Length in milliseconds."""
        return round(1000 * self.num_samples / self.sample_rate)


class Synthesizer(Protocol):
    """Text to audio with a named voice."""

    def synthesize(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        version: str | None = None,
        pool: str | None = None,
    ) -> Audio:
        """Synthesize ``text`` to samples; raises a :class:`SynthesisError` subclass on failure.

        ``version`` pins a version of a registered voice (default: the voice's default version);
        ``pool`` names the TorchServe pool that serves it (ignored in-process).
        """
        ...

    def synthesize_encoded(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        fmt: str = "flac",
        version: str | None = None,
        pool: str | None = None,
    ) -> EncodedAudio:
        """Synthesize ``text`` to a file the handler encoded as ``fmt``, without decoding it;
        raises a :class:`SynthesisError` subclass on failure. ``version`` and ``pool`` as for
        :meth:`synthesize`."""
        ...

    def voices(self) -> list[str]:
        """The voices this synthesizer can use."""
        ...
