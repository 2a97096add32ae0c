"""Audio encoding, decoding and joining: lengths and samples a listener would notice."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest
import soundfile as sf

from audio import codecs as audio
from contract import limits

RATE = 22050  # the joe voice's rate
# The formats the API offers for downloads and speech (the rest are tested in test_audio_stream).
API_FORMATS = ("wav", "flac", "mp3", "ogg", "pcm")
PAUSES = {
    "sentence_pause_ms": limits.SENTENCE_PAUSE_MS,
    "paragraph_pause_ms": limits.PARAGRAPH_PAUSE_MS,
}
# MP3 encoders pad the start (and Vorbis may round the end); a few tens of ms is inaudible.
LOSSY_TOLERANCE = round(0.05 * RATE)


def tone(seconds: float = 1.0, rate: int = RATE, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(np.sin(2 * np.pi * hz * t) * 12000).astype(np.int16)


def noise(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32767, n, dtype=np.int16)


def best_lag_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of ``b`` with ``a`` at the shift (encoder delay) that fits best."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    best = -1.0
    for lag in range(0, LOSSY_TOLERANCE, 8):
        n = min(len(a), len(b) - lag)
        x, y = a[:n], b[lag : lag + n]
        best = max(best, float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9)))
    return best


# ---------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("fmt", ["wav", "flac", "pcm"])
def test_lossless_formats_round_trip_bit_exact(fmt: str) -> None:
    samples = noise(RATE + 17)
    data = audio.encode(samples, RATE, fmt)
    decoded, rate = audio.decode(data, pcm_sample_rate=RATE if fmt == "pcm" else None)
    assert rate == RATE
    assert decoded.dtype == np.int16
    np.testing.assert_array_equal(decoded, samples)


@pytest.mark.parametrize("fmt", ["mp3", "ogg"])
@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_lossy_formats_keep_length_and_sound(fmt: str, rate: int) -> None:
    samples = tone(1.5, rate)
    data = audio.encode(samples, rate, fmt)
    assert len(data) < len(samples) * 2 / 4  # it is actually compressed
    decoded, got_rate = audio.decode(data)
    assert got_rate == rate
    assert decoded.dtype == np.int16 and decoded.ndim == 1
    assert abs(len(decoded) - len(samples)) <= round(0.05 * rate)
    assert best_lag_correlation(samples, decoded) > 0.9


@pytest.mark.parametrize("fmt", API_FORMATS)
def test_float_input_is_scaled_and_clipped(fmt: str) -> None:
    floats = np.concatenate([tone(0.5).astype(np.float32) / 12000 * 0.5, [2.0, -2.0]])
    data = audio.encode(floats, RATE, fmt)
    decoded, _ = audio.decode(data, pcm_sample_rate=RATE if fmt == "pcm" else None)
    if fmt in ("wav", "flac", "pcm"):
        assert decoded[-2:].tolist() == [32767, -32767]
        assert abs(int(np.abs(decoded[:-2]).max()) - 16384) < 2
    else:
        assert abs(len(decoded) - len(floats)) <= LOSSY_TOLERANCE


def test_container_signatures_and_media_types() -> None:
    samples = tone(0.2)
    assert audio.encode(samples, RATE, "wav")[:4] == b"RIFF"
    assert audio.encode(samples, RATE, "flac")[:4] == b"fLaC"
    assert audio.encode(samples, RATE, "ogg")[:4] == b"OggS"
    mp3 = audio.encode(samples, RATE, "mp3")
    assert mp3[:3] == b"ID3" or (mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0)
    assert audio.encode(samples, RATE, "pcm") == samples.astype("<i2").tobytes()
    assert {fmt: audio.MEDIA_TYPES[fmt] for fmt in API_FORMATS} == {
        "wav": "audio/wav",
        "flac": "audio/flac",
        "mp3": "audio/mpeg",
        "ogg": "audio/ogg",
        "pcm": "audio/L16",
    }
    assert audio.media_type("pcm", RATE) == "audio/L16;rate=22050;channels=1"
    assert audio.media_type("MP3") == "audio/mpeg"


def test_wav_is_readable_by_the_standard_library() -> None:
    samples = noise(1000)
    with wave.open(io.BytesIO(audio.encode(samples, RATE, "wav"))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        assert w.getnframes() == 1000
        assert np.frombuffer(w.readframes(1000), "<i2").tolist() == samples.tolist()


def test_stereo_files_are_decoded_to_mono() -> None:
    left = tone(0.1)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, stereo, RATE, format="WAV", subtype="PCM_16")
    decoded, _ = audio.decode(buf.getvalue())
    assert decoded.ndim == 1
    assert np.abs(decoded.astype(int) - left.astype(int) / 2).max() <= 1


def test_empty_audio() -> None:
    empty = np.zeros(0, np.int16)
    for fmt in ("wav", "ogg", "pcm"):
        decoded, _ = audio.decode(
            audio.encode(empty, RATE, fmt), pcm_sample_rate=RATE if fmt == "pcm" else None
        )
        assert len(decoded) == 0
    for fmt in ("flac", "mp3"):
        with pytest.raises(ValueError, match="no audio to encode"):
            audio.encode(empty, RATE, fmt)


# ---------------------------------------------------------------------------------------------
# Refusals


def test_unknown_format_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match=r"'au'.*wav, pcm, flac, mp3, ogg, opus, aac"):
        audio.encode(tone(0.1), RATE, "au")
    with pytest.raises(ValueError, match="wav, pcm, flac, mp3, ogg, opus, aac"):
        audio.media_type("wma")


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.zeros((10, 2), np.int16), "mono"),
        (np.zeros(10, np.int32), "int16 or float"),
    ],
)
def test_bad_samples(samples: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audio.encode(samples, RATE, "wav")


def test_bad_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        audio.encode(tone(0.1), 0, "wav")
    with pytest.raises(ValueError, match="mp3"):
        audio.encode(tone(0.1, 44000), 44000, "mp3")


def test_garbage_does_not_decode() -> None:
    with pytest.raises(ValueError, match="cannot decode 11 bytes"):
        audio.decode(b"hello world")
    with pytest.raises(ValueError, match="even number of bytes"):
        audio.decode(b"abc", pcm_sample_rate=RATE)


# ---------------------------------------------------------------------------------------------
# Joining


def test_join_puts_pauses_between_sentences_and_longer_ones_between_paragraphs() -> None:
    a, b, c = np.full(100, 1, np.int16), np.full(200, 2, np.int16), np.full(50, 3, np.int16)
    joined = audio.join([[a, b], [c]], 1000, sentence_pause_ms=10, paragraph_pause_ms=30)
    expected = np.concatenate([a, np.zeros(10), b, np.zeros(30), c]).astype(np.int16)
    np.testing.assert_array_equal(joined, expected)
    assert joined[0] == 1 and joined[-1] == 3  # no silence at the very start or end


@pytest.mark.parametrize(
    "lengths",
    [
        [[RATE]],
        [[1000, 2000, 3000]],
        [[1000], [2000], [3000, 17]],
        [[], [500, 0, 500], [], [1]],
        [[0]],
        [],
    ],
)
@pytest.mark.parametrize(("sentence_ms", "paragraph_ms"), [(250, 700), (0, 0), (333, 1001)])
def test_joined_length_is_exact(
    lengths: list[list[int]], sentence_ms: int, paragraph_ms: int
) -> None:
    paragraphs = [[noise(n, seed=n) for n in p] for p in lengths]
    joined = audio.join(
        paragraphs, RATE, sentence_pause_ms=sentence_ms, paragraph_pause_ms=paragraph_ms
    )
    assert joined.dtype == np.int16
    assert len(joined) == audio.joined_length(
        lengths, RATE, sentence_pause_ms=sentence_ms, paragraph_pause_ms=paragraph_ms
    )


def test_joined_length_by_hand() -> None:
    # 3 sentences in 2 paragraphs: one sentence pause (250 ms) and one paragraph pause (700 ms).
    lengths = [[RATE, RATE], [RATE]]
    joined = audio.joined_length(lengths, RATE, **PAUSES)
    assert joined == 3 * RATE + round(0.25 * RATE) + round(0.7 * RATE)
    assert audio.pause_samples(250, RATE) == 5512
    assert audio.duration_ms(joined, RATE) == 3950


def test_join_accepts_float_segments_and_encodes() -> None:
    joined = audio.join([[tone(0.5).astype(np.float32) / 32768], [tone(0.25)]], RATE, **PAUSES)
    data = audio.encode(joined, RATE, "flac")
    decoded, _ = audio.decode(data)
    np.testing.assert_array_equal(decoded, joined)


# ---------------------------------------------------------------------------------------------
# Streaming WAV


def test_wav_stream_header_has_unknown_sizes() -> None:
    header = audio.wav_stream_header(RATE)
    assert len(header) == 44
    riff, riff_size, wave_id = struct.unpack("<4sI4s", header[:12])
    assert (riff, riff_size, wave_id) == (b"RIFF", 0xFFFFFFFF, b"WAVE")
    assert header[36:40] == b"data"
    assert struct.unpack("<I", header[40:44])[0] == 0xFFFFFFFF
    channels, rate, byte_rate, block, bits = struct.unpack("<HIIHH", header[22:36])
    assert (channels, rate, byte_rate, block, bits) == (1, RATE, 2 * RATE, 2, 16)
    assert audio.wav_header(RATE, 10)[4:8] == struct.pack("<I", 36 + 20)
