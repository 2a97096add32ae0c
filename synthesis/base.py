"""The one interface every caller of a voice uses: the worker, the REST endpoint and the CLI.

Two implementations: :class:`synthesis.torchserve.TorchServeSynthesizer` (HTTP to TorchServe, the
distributed mode) and :class:`synthesis.inprocess.InProcessSynthesizer` (the handler loaded in this
process, the embedded mode). Both return the same audio for the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from contract.messages import SynthesisParams


class SynthesisError(Exception):
    """A synthesis that did not produce audio."""


class TransientSynthesisError(SynthesisError):
    """Worth retrying: the server was busy, timed out or dropped the connection."""


class PermanentSynthesisError(SynthesisError):
    """Retrying will not help: the voice server rejected the input or does not know the voice."""


class UnknownVoiceError(PermanentSynthesisError):
    """The voice is not served."""


@dataclass(frozen=True)
class Audio:
    """Mono 16-bit audio."""

    samples: np.ndarray  # int16, shape (n,)
    sample_rate: int

    @property
    def duration_ms(self) -> int:
        """Length in milliseconds."""
        return round(1000 * len(self.samples) / self.sample_rate)


class Synthesizer(Protocol):
    """Text to audio with a named voice."""

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        """Synthesize ``text``; raises a :class:`SynthesisError` subclass on failure."""
        ...

    def voices(self) -> list[str]:
        """The voices this synthesizer can use."""
        ...
