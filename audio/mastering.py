"""Mastering presets: loudness normalization (ITU-R BS.1770) and a true-peak limiter.

A preset names a loudness target, a peak ceiling, a sample rate and (for ACX) an encoding and the
room tone at the head and tail of each file. :func:`master` takes one file's samples (a chapter,
or a short answer) and returns them mastered; a book is mastered chapter by chapter, so memory
stays bounded by the longest chapter, and every file of a ZIP meets the preset on its own (what
ACX checks: every file).

Loudness is measured with ``pyloudnorm`` (BS.1770-4 K-weighting and gating: integrated LUFS).
ACX's target is an RMS level, not LUFS: the file's RMS in dBFS, computed here over the whole file
(room tone included), as ACX's own check does.

The true peak is measured as BS.1770-4 Annex 2 says: 4× oversampling (``scipy.signal
.resample_poly``) and the largest absolute value. The limiter is written here because neither
pyloudnorm nor PyAV's bundled filters give a true-peak limiter over numpy samples (FFmpeg's
``alimiter`` limits sample peaks): it is the usual look-ahead design — the gain each sample needs
(from the oversampled peak), a running minimum over the look-ahead window, then a moving average
of the same length, which never exceeds the needed gain and ramps smoothly into every peak.

Presets (sources):

- ``acx``: ACX Audio Submission Requirements — RMS −23 to −18 dB (we aim at −20), peaks at most
  −3 dB, 44.1 kHz, MP3 192 kb/s CBR, 0.5–1 s of room tone at the head (0.75) and 1–5 s at the
  tail (2.0).
- ``podcast``: −16 LUFS integrated, true peak ≤ −1 dBTP (Apple Podcasts' and AES TD1004's
  recommendation for streaming speech).
- ``broadcast``: EBU R128 — −23 LUFS integrated, true peak ≤ −1 dBTP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

# Where the limiter aims below each ceiling: encoders (MP3, AAC) add a little overshoot.
CEILING_MARGIN_DB = 0.5
LOOKAHEAD_MS = 5.0
# Room tone: very quiet noise, not digital silence (ACX flags a dead-silent floor). Its RMS in
# dBFS sits far under ACX's −60 dB noise-floor limit.
ROOM_TONE_DBFS = -75.0


@dataclass(frozen=True)
class Preset:
    """What a mastered file must meet.

    Attributes:
        name: The preset's name in the API (``?mastering=``).
        measure: ``lufs`` (BS.1770 integrated loudness) or ``rms`` (whole-file RMS, dBFS).
        target: The level to reach, in LUFS or dBFS.
        ceiling_db: The highest true peak allowed, in dBTP.
        sample_rate: The rate files are written at (``None``: keep the voice's rate).
        format: The one format the preset delivers in (``None``: the caller chooses).
        bit_rate: Constant bit rate for ``format`` (bits per second), when it has one.
        head_s: Room tone before the speech, in seconds.
        tail_s: Room tone after it.
    """

    name: str
    measure: Literal["lufs", "rms"]
    target: float
    ceiling_db: float
    sample_rate: int | None = None
    format: str | None = None
    bit_rate: int | None = None
    head_s: float = 0.0
    tail_s: float = 0.0


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "acx",
            "rms",
            -20.0,
            -3.0,
            sample_rate=44100,
            format="mp3",
            bit_rate=192_000,
            head_s=0.75,
            tail_s=2.0,
        ),
        Preset("podcast", "lufs", -16.0, -1.0),
        Preset("broadcast", "lufs", -23.0, -1.0),
    )
}
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)


def preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: No such preset (the message lists them).
    """
    found = PRESETS.get(name.lower())
    if found is None:
        raise ValueError(f"unknown mastering preset {name!r}; use one of: {', '.join(PRESETS)}")
    return found


def _db(value: float) -> float:
    return 20 * math.log10(max(value, 1e-12))


def _gain(db: float) -> float:
    return float(10 ** (db / 20))


def true_peak(samples: np.ndarray) -> float:
    """The true peak (BS.1770-4 Annex 2: 4× oversampled), linear, of float samples."""
    from scipy.signal import resample_poly

    if not len(samples):
        return 0.0
    return float(np.max(np.abs(resample_poly(samples.astype(np.float64), 4, 1))))


def loudness(samples: np.ndarray, sample_rate: int, measure: str = "lufs") -> float:
    """Integrated loudness (LUFS, BS.1770 via pyloudnorm) or whole-file RMS (dBFS).

    ``-inf`` for silence or audio shorter than one 400 ms gating block.
    """
    x = samples.astype(np.float64)
    if measure == "rms":
        return _db(float(np.sqrt(np.mean(x**2)))) if len(x) else -math.inf
    import pyloudnorm

    if len(x) < int(0.4 * sample_rate):
        return -math.inf
    return float(pyloudnorm.Meter(sample_rate).integrated_loudness(x))


def limit(samples: np.ndarray, sample_rate: int, ceiling_db: float) -> np.ndarray:
    """Bring the true peak of float samples to at most ``ceiling_db`` dBTP, softly.

    Returns:
        New float64 samples; unchanged where no peak is over the ceiling.
    """
    from scipy.ndimage import minimum_filter1d, uniform_filter1d
    from scipy.signal import resample_poly

    x = samples.astype(np.float64)
    ceiling = _gain(ceiling_db)
    for _ in range(4):  # the inter-sample peaks move a little with the gain: check again
        over = np.abs(resample_poly(x, 4, 1))[: 4 * len(x)]
        peaks = over.reshape(-1, 4).max(axis=1) if len(over) == 4 * len(x) else np.abs(x)
        needed = np.minimum(1.0, ceiling / np.maximum(peaks, 1e-12))
        if needed.min() >= 1.0:
            break
        window = max(1, int(sample_rate * LOOKAHEAD_MS / 1000))
        # Minimum over [n, n + window) then mean over (n - window, n]: every average includes
        # the minimum that covers sample n, so the smoothed gain never exceeds what n needs.
        held = minimum_filter1d(needed, size=window, origin=-(window // 2), mode="nearest")
        smooth = uniform_filter1d(held, size=window, origin=(window - 1) // 2, mode="nearest")
        x = x * np.minimum(smooth, needed)
    return x


def room_tone(seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """``seconds`` of very quiet noise (:data:`ROOM_TONE_DBFS` RMS), float64."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(round(seconds * sample_rate)) * _gain(ROOM_TONE_DBFS)


def master(samples: np.ndarray, sample_rate: int, chosen: Preset) -> np.ndarray:
    """One file's audio mastered to ``chosen``: room tone around it (if the preset has it), the
    level brought to the target, the true peak limited to the ceiling.

    Args:
        samples: int16 samples, or floats in [-1, 1], at ``sample_rate`` (resample first when
            the preset names another rate).
        sample_rate: Their rate in Hz.
        chosen: The preset.

    Returns:
        float64 samples in [-1, 1]: the speech (plus room tone), at the target within ±0.5 LU
        (dB for RMS) when the speech is long enough to measure, never over the ceiling.
    """
    x = samples.astype(np.float64)
    if samples.dtype == np.int16:
        x = x / 32768.0
    if chosen.head_s or chosen.tail_s:
        x = np.concatenate(
            [
                room_tone(chosen.head_s, sample_rate, seed=1),
                x,
                room_tone(chosen.tail_s, sample_rate, seed=2),
            ]
        )
    ceiling = chosen.ceiling_db - CEILING_MARGIN_DB
    # Gain to the target, limit, measure again: limiting takes a little loudness away, so the
    # gain is corrected (a few rounds; each moves less).
    out = limit(x, sample_rate, ceiling)
    gain_db = 0.0
    for _ in range(5):
        level = loudness(out, sample_rate, chosen.measure)
        if not math.isfinite(level) or abs(chosen.target - level) < 0.1:
            break
        gain_db += chosen.target - level
        out = limit(x * _gain(gain_db), sample_rate, ceiling)
    return np.clip(out, -1.0, 1.0)
