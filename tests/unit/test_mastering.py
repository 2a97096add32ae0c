"""Mastering presets on the joe voice's real speech: the encoded export, decoded again, is at the
preset's loudness (pyloudnorm, ±1 LU; ACX: RMS ±1 dB and inside −23…−18 dB) and never over its
peak ceiling; ACX files are 44.1 kHz MP3 at 192 kb/s with room tone at both ends."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest

from audio import codecs
from audio.mastering import PRESETS, limit, loudness, master, preset, true_peak
from audio.resample import resample
from handlers.local_context import LocalContext
from handlers.voxmill_handler import VoxmillHandler
from synthesis.inprocess import extract_mar

TEXT = (
    "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, "
    "his chin nuzzled into his breast in an effort to escape the vile wind, slipped quickly "
    "through the glass doors of Victory Mansions, though not quickly enough to prevent a swirl "
    "of gritty dust from entering along with him."
)


@pytest.fixture(scope="module")
def speech(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, int]:
    model_dir = tmp_path_factory.mktemp("joe")
    handler = VoxmillHandler()
    handler.initialize(LocalContext(model_dir, extract_mar(joe_mar, model_dir)))
    assert handler.service is not None
    (audio,) = handler.service.synthesize_each(handler.preprocess([{"body": {"text": TEXT}}]))
    pcm = codecs.as_int16(audio)
    # Quieter than any target, so every preset has to raise it (and then limit the peaks).
    return (pcm * 0.3).astype(np.int16), handler.service.sample_rate


def db(x: float) -> float:
    return float(20 * np.log10(max(x, 1e-12)))


@pytest.mark.parametrize("name", ["podcast", "broadcast"])
def test_lufs_presets_reach_the_target_without_passing_the_ceiling(
    speech: tuple[np.ndarray, int], name: str
) -> None:
    samples, rate = speech
    chosen = preset(name)
    mastered = master(samples, rate, chosen)
    # What a listener gets: the exported file, decoded.
    decoded, decoded_rate = codecs.decode(codecs.encode(mastered, rate, "flac"))
    x = decoded.astype(np.float64) / 32768
    measured = pyloudnorm.Meter(decoded_rate).integrated_loudness(x)
    assert abs(measured - chosen.target) <= 1.0, (name, measured)
    assert db(true_peak(x)) <= chosen.ceiling_db, "true peak over the ceiling"
    assert len(decoded) == len(samples), "loudness changes level, never length"


def test_acx_meets_the_submission_requirements(speech: tuple[np.ndarray, int]) -> None:
    samples, rate = speech
    acx = PRESETS["acx"]
    at_44k = resample(samples, rate, 44100)
    mastered = master(at_44k, 44100, acx)
    out = io.BytesIO()
    codecs.encode_to(out, [mastered], 44100, "mp3", bit_rate=acx.bit_rate)
    data = out.getvalue()

    from mutagen.mp3 import MP3

    info = MP3(io.BytesIO(data)).info
    assert info.sample_rate == 44100 and info.bitrate == 192_000
    decoded, decoded_rate = codecs.decode(data)
    assert decoded_rate == 44100
    x = decoded.astype(np.float64) / 32768
    rms = db(float(np.sqrt(np.mean(x**2))))
    assert -23.0 <= rms <= -18.0 and abs(rms - acx.target) <= 1.0, rms
    assert db(float(np.abs(x).max())) <= -3.0, "ACX: peaks at most -3 dB"
    # Room tone: 0.5-1 s at the head, 1-5 s at the tail, quiet (ACX: noise floor under -60 dB)
    # and not digital silence.
    head = x[: int(0.5 * 44100)]
    tail = x[-int(1.0 * 44100) :]
    for tone in (head, tail):
        level = db(float(np.sqrt(np.mean(tone**2))))
        assert -90.0 < level < -60.0, level
    speech_start = np.argmax(np.abs(x) > 0.01) / 44100
    speech_end = (len(x) - np.argmax(np.abs(x[::-1]) > 0.01)) / 44100
    assert 0.5 <= speech_start <= 1.2
    assert 1.0 <= len(x) / 44100 - speech_end <= 5.0


def test_the_limiter_catches_peaks_between_samples() -> None:
    rate = 48000
    # A tone at a quarter of the sample rate, phased so that every sample misses the crest:
    # sample peaks read 0.707 of the true peak.
    n = np.arange(rate)
    tone = 0.99 * np.sin(2 * np.pi * (rate / 4) * n / rate + np.pi / 4)
    assert db(float(np.abs(tone).max())) < -2.9
    assert db(true_peak(tone)) > -0.2
    limited = limit(tone, rate, -1.0)
    assert db(true_peak(limited)) <= -1.0 + 0.05


def test_silence_is_left_alone_and_unknown_presets_are_refused() -> None:
    quiet = np.zeros(48000, dtype=np.int16)
    assert not np.any(master(quiet, 48000, preset("podcast")))
    assert loudness(quiet, 48000) == -np.inf
    with pytest.raises(ValueError, match="acx, podcast, broadcast"):
        preset("loud")
