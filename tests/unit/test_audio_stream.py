"""The streaming audio writer: any number of chunks make one stream a player reads to the end."""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest

from audio import codecs as audio
from audio.formats import TABLE
from audio.stream import StreamWriter

RATE = 22050
STREAMED = [name for name, spec in TABLE.items() if spec.streamable]


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.round(np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def stream(fmt: str, chunks: list[np.ndarray]) -> list[bytes]:
    writer = StreamWriter(fmt, RATE)
    return [writer.write(chunk) for chunk in chunks] + [writer.close()]


def decoded_seconds(data: bytes, fmt: str) -> float:
    samples, rate = audio.decode(data, pcm_sample_rate=RATE if fmt == "pcm" else None)
    return len(samples) / rate


def test_every_format_of_the_table_streams_except_ogg_vorbis() -> None:
    # PyAV's FFmpeg has no libvorbis: Ogg Vorbis is written whole only.
    assert set(STREAMED) == {"wav", "pcm", "flac", "mp3", "opus", "aac"}
    with pytest.raises(ValueError, match="ogg cannot be streamed"):
        StreamWriter("ogg", RATE)


@pytest.mark.parametrize("fmt", STREAMED)
def test_three_chunks_decode_to_the_whole_length(fmt: str) -> None:
    chunks = [tone(0.5), tone(0.3, hz=220), tone(0.7, hz=330)]

    parts = stream(fmt, chunks)

    # An encoder adds its delay and padding (up to 0.1 s) once, not per chunk (3 x 0.07 s).
    assert decoded_seconds(b"".join(parts), fmt) == pytest.approx(1.5, abs=0.11)


@pytest.mark.parametrize("fmt", ["wav", "pcm", "mp3", "aac"])
def test_audio_comes_out_before_the_stream_ends(fmt: str) -> None:
    """A stream is useful only if a chunk's audio leaves the writer when the chunk goes in."""
    writer = StreamWriter(fmt, RATE)
    first = writer.write(tone(0.5))
    assert len(first) > 1000
    writer.close()


def test_mp3_stream_has_no_info_frame_and_no_per_chunk_padding() -> None:
    chunks = [tone(0.4) for _ in range(5)]

    data = b"".join(stream("mp3", chunks))

    # An Xing/Info frame holds a frame count that would stop players early; an ID3 tag is noise.
    assert b"Xing" not in data and b"Info" not in data and not data.startswith(b"ID3")
    with av.open(io.BytesIO(data), "r") as container:
        frames = [frame.samples for frame in container.decode(audio=0)]
    # One encoder for the whole stream: only its own delay is added, not 5 times.
    assert sum(frames) - 5 * len(chunks[0]) < 2 * 1152


def test_streamed_wav_header_says_unknown_length_then_pcm() -> None:
    chunks = [tone(0.3), tone(0.2, hz=220)]
    parts = stream("wav", chunks)

    assert parts[0][:44] == audio.wav_stream_header(RATE)
    assert struct.unpack("<I", parts[0][40:44])[0] == 0xFFFFFFFF
    decoded, rate = audio.decode(b"".join(parts))
    assert rate == RATE
    np.testing.assert_array_equal(decoded, np.concatenate(chunks))


def test_opus_is_resampled_to_a_rate_it_takes() -> None:
    data = b"".join(stream("opus", [tone(1.0)]))
    samples, rate = audio.decode(data)
    assert rate == 48000
    assert len(samples) / rate == pytest.approx(1.0, abs=0.03)


def test_whole_files_of_stream_only_formats_come_from_the_writer() -> None:
    data = audio.encode(tone(1.0), RATE, "aac")
    assert data[:2] == b"\xff\xf1"  # an ADTS frame
    assert decoded_seconds(data, "aac") == pytest.approx(1.0, abs=0.11)


def test_an_empty_or_closed_stream() -> None:
    writer = StreamWriter("wav", RATE)
    assert writer.close() == audio.wav_stream_header(RATE)
    assert writer.close() == b""
    with pytest.raises(ValueError, match="closed"):
        writer.write(tone(0.1))


def test_bad_format_and_rate() -> None:
    with pytest.raises(ValueError, match="unsupported audio format 'au'"):
        StreamWriter("au", RATE)
    with pytest.raises(ValueError, match="positive"):
        StreamWriter("mp3", 0)
