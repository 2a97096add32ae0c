"""The small interface both voice families implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class VoiceParams:
    """Synthesis knobs shared by every item of one model call.

    ``None`` means the voice's own default.
    """

    speed: float = 1.0
    noise_scale: float | None = None
    noise_w: float | None = None


class Backend(Protocol):
    """A loaded voice that turns a batch of sentences into one waveform each."""

    sample_rate: int

    def prepare(self, text: str) -> list[list[int]]:
        """Normalized text to model inputs: one token-id sequence per sentence."""
        ...

    def infer(self, batch: list[list[int]], params: VoiceParams) -> list[np.ndarray]:
        """Run the whole batch in one padded call.

        Returns:
            One float32 waveform per input, trimmed to that item's own length.
        """
        ...


def pad_batch(batch: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token sequences into a ``[batch, max_len]`` int64 array plus their lengths."""
    lengths = np.array([len(ids) for ids in batch], dtype=np.int64)
    padded = np.full((len(batch), int(lengths.max())), pad_id, dtype=np.int64)
    for row, ids in enumerate(batch):
        padded[row, : len(ids)] = ids
    return padded, lengths
