"""Sample-rate conversion, for joining audio of voices that speak at different rates (a narrator
at 22050 Hz, a quoted speaker at 16000 Hz) into one file.

``soxr`` (libsoxr, the SoX resampler) does the conversion; the output length is fixed to
``round(n * target / rate)`` so that lengths computed from stored sample counts (an export's
``Content-Length``) match the audio exactly.
"""

from __future__ import annotations

import numpy as np


def resampled_length(num_samples: int, rate: int, target: int) -> int:
    """How many samples ``num_samples`` at ``rate`` Hz become at ``target`` Hz."""
    if rate == target:
        return num_samples
    return round(num_samples * target / rate)


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` (int16, mono) converted from ``rate`` to ``target`` Hz, int16, of exactly
    :func:`resampled_length` samples."""
    if rate == target or len(samples) == 0:
        return samples
    import soxr

    out = soxr.resample(samples.astype(np.int16), rate, target, quality="HQ")
    want = resampled_length(len(samples), rate, target)
    if len(out) < want:
        out = np.concatenate([out, np.zeros(want - len(out), dtype=out.dtype)])
    return np.asarray(out[:want], dtype=np.int16)
