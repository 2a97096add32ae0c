"""Audio encoding, decoding and joining: pure functions on mono 16-bit samples.

Everything Voxmill stores or sends is mono signed 16-bit audio. :func:`encode` turns samples into
one of :data:`FORMATS`; :func:`decode` turns any of them (but raw PCM, which has no header, unless
told its sample rate) back into samples. :func:`join` builds a chapter or project download from
its sentences, with pauses between them; :func:`joined_length` says how long the result will be
without building it. :func:`wav_stream_header` and :func:`stream_wav` serve WAV over HTTP before
the total length is known.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import soundfile as sf

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("wav", "flac", "mp3", "ogg", "pcm")
MEDIA_TYPES: dict[str, str] = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "pcm": "audio/L16",
}
# libsndfile's container and codec for the compressed formats.
_SOUNDFILE_FORMATS: dict[str, tuple[str, str]] = {
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}
# Writing a long signal in one call has crashed some libsndfile Vorbis builds; blocks are cheap.
_BLOCK_FRAMES = 1 << 16
_WAV_HEADER_BYTES = 44
_UNKNOWN_SIZE = 0xFFFFFFFF


def _check_format(fmt: str) -> str:
    key = fmt.lower()
    if key not in FORMATS:
        raise ValueError(f"unsupported audio format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return key


def _check_rate(sample_rate: int) -> None:
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be a positive number of Hz, got {sample_rate}")


def media_type(fmt: str, sample_rate: int | None = None) -> str:
    """The HTTP ``Content-Type`` for ``fmt``.

    Args:
        fmt: One of :data:`FORMATS`.
        sample_rate: For ``pcm``, added as the ``rate`` parameter (raw PCM has no header to say
            it); ignored for the other formats.

    Returns:
        The media type, for example ``audio/mpeg`` or ``audio/L16;rate=22050;channels=1``.
    """
    key = _check_format(fmt)
    if key == "pcm" and sample_rate:
        return f"{MEDIA_TYPES[key]};rate={sample_rate};channels=1"
    return MEDIA_TYPES[key]


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
    _check_rate(sample_rate)
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
    _check_rate(sample_rate)
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


def stream_wav(
    chunks: Iterable[np.ndarray], sample_rate: int, *, pause_ms: int = 0
) -> Iterator[bytes]:
    """Yield a streaming WAV: :func:`wav_stream_header`, then each chunk's PCM as it arrives.

    Args:
        chunks: Audio pieces in order, typically one per sentence.
        sample_rate: Their sample rate.
        pause_ms: Silence put between two chunks (not before the first nor after the last).

    Yields:
        The header, then one ``bytes`` per chunk (with the pause before it, from the second on).
    """
    yield wav_stream_header(sample_rate)
    gap = b"\x00\x00" * pause_samples(pause_ms, sample_rate)
    for i, chunk in enumerate(chunks):
        yield (gap if i else b"") + pcm_bytes(chunk)


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono audio.

    Args:
        samples: int16 samples, or floats in [-1, 1] (see :func:`as_int16`).
        sample_rate: Samples per second. MP3 allows only 8, 11.025, 12, 16, 22.05, 24, 32,
            44.1 and 48 kHz.
        fmt: ``wav`` (16-bit PCM), ``flac`` (16-bit, lossless), ``mp3``, ``ogg`` (Vorbis) or
            ``pcm`` (raw signed 16-bit little-endian, no header).

    Returns:
        The encoded file.

    Raises:
        ValueError: An unknown format, bad samples, no samples for ``flac`` or ``mp3`` (which
            cannot be empty), or a sample rate the codec cannot take.
    """
    key = _check_format(fmt)
    _check_rate(sample_rate)
    pcm = as_int16(samples)
    if key == "pcm":
        return pcm_bytes(pcm)
    if key == "wav":
        return wav_header(sample_rate, len(pcm)) + pcm_bytes(pcm)
    if not len(pcm) and key in ("flac", "mp3"):
        # libsndfile writes nothing at all for an empty FLAC or MP3 stream: refuse rather
        # than hand back a zero-byte "file" that no player opens.
        raise ValueError(f"there is no audio to encode: {key} cannot hold zero samples")
    container, subtype = _SOUNDFILE_FORMATS[key]
    buf = io.BytesIO()
    try:
        with sf.SoundFile(
            buf, "w", samplerate=sample_rate, channels=1, format=container, subtype=subtype
        ) as out:
            for i in range(0, len(pcm), _BLOCK_FRAMES):
                out.write(pcm[i : i + _BLOCK_FRAMES])
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ValueError(
            f"cannot encode {len(pcm)} samples at {sample_rate} Hz as {key}: {e}"
        ) from e
    data = buf.getvalue()
    log.debug("encoded %d samples at %d Hz as %s: %d bytes", len(pcm), sample_rate, key, len(data))
    return data


def decode(data: bytes, *, pcm_sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode WAV, FLAC, MP3 or Ogg Vorbis (or raw PCM) to mono int16 samples.

    Args:
        data: The encoded file.
        pcm_sample_rate: Set it to read ``data`` as raw signed 16-bit little-endian PCM at that
            rate (raw PCM carries no header to detect).

    Returns:
        The samples (1-D int16; several channels are averaged) and the sample rate.

    Raises:
        ValueError: The data is not audio in a supported format.
    """
    if pcm_sample_rate is not None:
        _check_rate(pcm_sample_rate)
        if len(data) % 2:
            raise ValueError("raw 16-bit PCM must have an even number of bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.int16), pcm_sample_rate
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise ValueError(
            f"cannot decode {len(data)} bytes as audio ({', '.join(FORMATS[:4])}): {e}"
        ) from e
    if samples.shape[1] == 1:
        mono = samples[:, 0]
    else:
        mono = np.round(samples.mean(axis=1)).astype(np.int16)
    return np.ascontiguousarray(mono), int(rate)


def pause_samples(ms: int, sample_rate: int) -> int:
    """How many samples ``ms`` milliseconds of silence take at ``sample_rate``."""
    if ms < 0:
        raise ValueError(f"a pause cannot be negative, got {ms} ms")
    return round(sample_rate * ms / 1000)


def joined_length(
    lengths: Sequence[Sequence[int]],
    sample_rate: int,
    *,
    sentence_pause_ms: int = 250,
    paragraph_pause_ms: int = 700,
) -> int:
    """The number of samples :func:`join` returns for segments of these lengths.

    Args:
        lengths: Segment lengths in samples, one list per paragraph.
        sample_rate: The sample rate, to turn pauses into samples.
        sentence_pause_ms: Silence between two segments of one paragraph.
        paragraph_pause_ms: Silence between two paragraphs.

    Returns:
        The joined length in samples. Empty segments and paragraphs count as absent.
    """
    sentence_gap = pause_samples(sentence_pause_ms, sample_rate)
    paragraph_gap = pause_samples(paragraph_pause_ms, sample_rate)
    total = 0
    paragraphs = 0
    for paragraph in lengths:
        present = [n for n in paragraph if n > 0]
        if not present:
            continue
        total += sum(present) + sentence_gap * (len(present) - 1)
        paragraphs += 1
    return total + paragraph_gap * max(paragraphs - 1, 0)


def join(
    paragraphs: Sequence[Sequence[np.ndarray]],
    sample_rate: int,
    *,
    sentence_pause_ms: int = 250,
    paragraph_pause_ms: int = 700,
) -> np.ndarray:
    """Join sentences into one track, with a pause between sentences and a longer one between
    paragraphs.

    No silence is added before the first sentence or after the last. Empty segments (no audio)
    and paragraphs without audio are left out, so they add no pause either.

    Args:
        paragraphs: One list of segment samples per paragraph (int16 or floats in [-1, 1]).
        sample_rate: The segments' sample rate.
        sentence_pause_ms: Silence between two segments of one paragraph.
        paragraph_pause_ms: Silence between two paragraphs.

    Returns:
        1-D int16 samples, :func:`joined_length` long.
    """
    _check_rate(sample_rate)
    sentence_gap = np.zeros(pause_samples(sentence_pause_ms, sample_rate), dtype=np.int16)
    paragraph_gap = np.zeros(pause_samples(paragraph_pause_ms, sample_rate), dtype=np.int16)
    parts: list[np.ndarray] = []
    for paragraph in paragraphs:
        segments = [s for s in (as_int16(x) for x in paragraph) if len(s)]
        if not segments:
            continue
        if parts:
            parts.append(paragraph_gap)
        for i, segment in enumerate(segments):
            if i:
                parts.append(sentence_gap)
            parts.append(segment)
    if not parts:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate(parts)


def duration_ms(num_samples: int, sample_rate: int) -> int:
    """Milliseconds of audio in ``num_samples`` samples, rounded."""
    _check_rate(sample_rate)
    return round(1000 * num_samples / sample_rate)
