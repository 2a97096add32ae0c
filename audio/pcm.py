"""Mono signed 16-bit samples and their simplest framings: raw PCM and WAV headers.

Written here rather than with a library: a WAV header is 44 fixed bytes, and a streaming one must
say "unknown length" (0xFFFFFFFF), which the libraries write only at the end of a seekable file.
"""

from __future__ import annotations

import struct

import numpy as np

_UNKNOWN_SIZE = 0xFFFFFFFF


def check_rate(sample_rate: int) -> None:
    """Raise ``ValueError`` unless ``sample_rate`` is a positive number of Hz."""
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive number of Hz, got {sample_rate}")


def as_int16(samples: np.ndarray) -> np.ndarray:
    """Mono signed 16-bit samples from int16 or floating-point (-1.0 … 1.0) input.

    Args:
        samples: Shape ``(n,)`` or ``(n, 1)``; int16, or floats that are clipped to [-1, 1].

    Returns:
        A 1-D int16 array (the input itself when it already is one).

    Raises:
        ValueError: More than one channel, or a sample type that is neither int16 nor float.
    """
    arr = np.asarray(samples)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"expected mono samples of shape (n,), got shape {arr.shape}")
    if arr.dtype == np.int16:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        return np.round(np.clip(arr, -1.0, 1.0) * 32767.0).astype(np.int16)
    raise ValueError(f"expected int16 or float samples, got {arr.dtype}")


def pcm_bytes(samples: np.ndarray) -> bytes:
    """Raw signed 16-bit little-endian PCM."""
    return as_int16(samples).astype("<i2", copy=False).tobytes()


def wav_header(sample_rate: int, num_samples: int) -> bytes:
    """The 44-byte header of a mono 16-bit PCM WAV file holding ``num_samples`` samples."""
    check_rate(sample_rate)
    data_bytes = 2 * num_samples
    if data_bytes > _UNKNOWN_SIZE - 36:
        raise ValueError("too much audio for one WAV file (4 GiB); use flac, mp3 or ogg")
    return _header(sample_rate, 36 + data_bytes, data_bytes)


def wav_stream_header(sample_rate: int) -> bytes:
    """A WAV header for audio of unknown length, sent before the first sample when streaming.

    The RIFF and data sizes are 0xFFFFFFFF ("as long as the stream lasts"), which browsers,
    ffmpeg and libsndfile accept; the real length cannot be known until the last sentence is
    synthesized.
    """
    check_rate(sample_rate)
    return _header(sample_rate, _UNKNOWN_SIZE, _UNKNOWN_SIZE)


def _header(sample_rate: int, riff_size: int, data_size: int) -> bytes:
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        riff_size,
        b"WAVE",
        b"fmt ",
        16,  # fmt chunk size
        1,  # PCM
        1,  # channels
        sample_rate,
        sample_rate * 2,  # bytes per second
        2,  # bytes per frame
        16,  # bits per sample
        b"data",
        data_size,
    )
