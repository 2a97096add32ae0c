"""Audio encoding, decoding and joining: pure functions on mono 16-bit samples.

Everything Voxmill stores or sends is mono signed 16-bit audio. :func:`encode` turns samples into
a whole file of one of :data:`FORMATS` (which encoder writes which is in :mod:`audio.formats`);
:func:`decode` turns any of them (but raw PCM, which has no header, unless told its sample rate)
back into samples. :func:`join` builds a chapter or project download from its sentences, with
pauses between them; :func:`joined_length` says how long the result will be without building it.
Streams of unknown length are written by :class:`audio.stream.StreamWriter`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Sequence
from typing import BinaryIO

import numpy as np
import soundfile as sf

from audio.formats import FORMATS, TABLE, lookup
from audio.pcm import as_int16, check_rate, pcm_bytes, wav_header, wav_stream_header
from audio.stream import StreamWriter

__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "as_int16",
    "decode",
    "duration_ms",
    "encode",
    "encode_to",
    "join",
    "joined_length",
    "media_type",
    "pause_samples",
    "pcm_bytes",
    "wav_header",
    "wav_stream_header",
]

log = logging.getLogger(__name__)

MEDIA_TYPES: dict[str, str] = {name: f.media_type for name, f in TABLE.items()}
# Writing a long signal in one call has crashed some libsndfile Vorbis builds; blocks are cheap.
_BLOCK_FRAMES = 1 << 16


def media_type(fmt: str, sample_rate: int | None = None) -> str:
    """The HTTP ``Content-Type`` for ``fmt``.

    Args:
        fmt: One of :data:`FORMATS`.
        sample_rate: For ``pcm``, added as the ``rate`` parameter (raw PCM has no header to say
            it); ignored for the other formats.

    Returns:
        The media type, for example ``audio/mpeg`` or ``audio/L16;rate=22050;channels=1``.
    """
    spec = lookup(fmt)
    if spec.name == "pcm" and sample_rate:
        return f"{spec.media_type};rate={sample_rate};channels=1"
    return spec.media_type


def encode(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode mono audio as one whole file.

    Args:
        samples: int16 samples, or floats in [-1, 1] (see :func:`as_int16`).
        sample_rate: Samples per second. MP3 allows only 8, 11.025, 12, 16, 22.05, 24, 32,
            44.1 and 48 kHz.
        fmt: ``wav`` (16-bit PCM), ``flac`` (16-bit, lossless), ``mp3``, ``ogg`` (Vorbis),
            ``opus`` (Ogg), ``aac`` (ADTS) or ``pcm`` (raw signed 16-bit little-endian).

    Returns:
        The encoded file.

    Raises:
        ValueError: An unknown format, bad samples, no samples for ``flac`` or ``mp3`` (which
            cannot be empty), or a sample rate the codec cannot take.
    """
    spec = lookup(fmt)
    check_rate(sample_rate)
    pcm = as_int16(samples)
    if spec.name == "pcm":
        return pcm_bytes(pcm)
    if spec.name == "wav":
        return wav_header(sample_rate, len(pcm)) + pcm_bytes(pcm)
    if not len(pcm) and not spec.can_be_empty:
        # libsndfile writes nothing at all for an empty FLAC or MP3 stream: refuse rather
        # than hand back a zero-byte "file" that no player opens.
        raise ValueError(f"there is no audio to encode: {spec.name} cannot hold zero samples")
    buf = io.BytesIO()
    encode_to(buf, [pcm], sample_rate, spec.name)
    data = buf.getvalue()
    log.debug(
        "encoded %d samples at %d Hz as %s: %d bytes", len(pcm), sample_rate, spec.name, len(data)
    )
    return data


def encode_to(
    out: BinaryIO,
    pieces: Iterable[np.ndarray],
    sample_rate: int,
    fmt: str,
    *,
    bit_rate: int | None = None,
) -> None:
    """Encode audio that arrives in pieces into one whole compressed file, written to ``out``.

    For a download too long to hold encoded in memory: ``out`` is typically a temporary file.

    Args:
        out: A binary file open for writing (and seeking, for libsndfile's headers).
        pieces: Consecutive pieces of one signal (int16, or floats in [-1, 1]).
        sample_rate: Their rate.
        fmt: A compressed format of :data:`FORMATS` (not ``wav`` or ``pcm``).
        bit_rate: A constant bit rate (bits per second) for a format FFmpeg encodes (ACX's
            192 kb/s MP3); the format's own default otherwise.

    Raises:
        ValueError: As for :func:`encode`.
    """
    spec = lookup(fmt)
    check_rate(sample_rate)
    if spec.soundfile is None or (bit_rate and spec.av is not None):
        with StreamWriter(spec.name, sample_rate, bit_rate=bit_rate) as writer:
            for piece in pieces:
                out.write(writer.write(piece))
            out.write(writer.close())
        return
    container, subtype = spec.soundfile
    try:
        with sf.SoundFile(
            out,
            "w",
            samplerate=sample_rate,
            channels=1,
            format=container,
            subtype=subtype,
            closefd=False,
        ) as sound:
            for piece in pieces:
                pcm = as_int16(piece)
                for i in range(0, len(pcm), _BLOCK_FRAMES):
                    sound.write(pcm[i : i + _BLOCK_FRAMES])
    except (sf.LibsndfileError, RuntimeError) as e:
        raise ValueError(f"cannot encode audio at {sample_rate} Hz as {spec.name}: {e}") from e


def decode(data: bytes, *, pcm_sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode any format of :data:`FORMATS` to mono int16 samples.

    libsndfile reads what it knows (and reads FLAC fastest); FFmpeg (PyAV) the rest (AAC,
    FLAC streamed without a length).

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
        check_rate(pcm_sample_rate)
        if len(data) % 2:
            raise ValueError("raw 16-bit PCM must have an even number of bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.int16), pcm_sample_rate
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="int16", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        samples, rate = _decode_av(data, e)
    if samples.shape[1] == 1:
        mono = samples[:, 0]
    else:
        mono = np.round(samples.mean(axis=1)).astype(np.int16)
    return np.ascontiguousarray(mono), int(rate)


def _decode_av(data: bytes, first_error: Exception) -> tuple[np.ndarray, int]:
    """``(samples, rate)`` with samples shaped ``(n, channels)``, decoded by FFmpeg."""
    # PyAV (FFmpeg, ~36 MB) loads only when libsndfile cannot read the data: the voice handler
    # imports this module to write FLAC/WAV and must not need it.
    import av

    try:
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=stream.rate)
            parts = [
                out.to_ndarray().reshape(-1)
                for frame in container.decode(stream)
                for out in resampler.resample(frame)
            ]
            parts += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
            rate = int(stream.rate)
    except (av.FFmpegError, IndexError) as e:
        raise ValueError(
            f"cannot decode {len(data)} bytes as audio ({', '.join(FORMATS)}): {first_error}"
        ) from e
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return samples.astype(np.int16).reshape(-1, 1), rate


def pause_samples(ms: int, sample_rate: int) -> int:
    """How many samples ``ms`` milliseconds of silence take at ``sample_rate``."""
    if ms < 0:
        raise ValueError(f"a pause cannot be negative, got {ms} ms")
    return round(sample_rate * ms / 1000)


def joined_length(
    lengths: Sequence[Sequence[int]],
    sample_rate: int,
    *,
    sentence_pause_ms: int,
    paragraph_pause_ms: int,
) -> int:
    """The number of samples :func:`join` returns for segments of these lengths.

    Args:
        lengths: Segment lengths in samples, one list per paragraph.
        sample_rate: The sample rate, to turn pauses into samples.
        sentence_pause_ms: Silence between two segments of one paragraph (the product's value is
            ``contract.limits.SENTENCE_PAUSE_MS``).
        paragraph_pause_ms: Silence between two paragraphs (``contract.limits.PARAGRAPH_PAUSE_MS``).

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
    sentence_pause_ms: int,
    paragraph_pause_ms: int,
) -> np.ndarray:
    """Join sentences into one track, with a pause between sentences and a longer one between
    paragraphs.

    No silence is added before the first sentence or after the last. Empty segments (no audio)
    and paragraphs without audio are left out, so they add no pause either.

    Args:
        paragraphs: One list of segment samples per paragraph (int16 or floats in [-1, 1]).
        sample_rate: The segments' sample rate.
        sentence_pause_ms: Silence between two segments of one paragraph (the product's value is
            ``contract.limits.SENTENCE_PAUSE_MS``).
        paragraph_pause_ms: Silence between two paragraphs (``contract.limits.PARAGRAPH_PAUSE_MS``).

    Returns:
        1-D int16 samples, :func:`joined_length` long.
    """
    check_rate(sample_rate)
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
    check_rate(sample_rate)
    return round(1000 * num_samples / sample_rate)
