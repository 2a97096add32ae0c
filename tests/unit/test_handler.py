"""The TorchServe handler, called directly with a stand-in context and the real joe voice."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from audio import codecs as audio
from handlers.local_context import LocalContext
from handlers.speech import RequestError, parse_request
from handlers.voxmill_handler import VoxmillHandler
from synthesis.inprocess import extract_mar

RATE = 22050
TEXTS = [
    "Hi.",
    "The quick brown fox jumps over the lazy dog.",
    "Dr. Smith paid $3.50 at 9:30 a.m. on March 3rd.",
    "Short one.",
    "A considerably longer sentence, with a comma or two, that keeps going for a while "
    "before it finally reaches its end.",
    "Numbers like 1984 and 42 are spoken as words.",
    "Why?",
    "Batching pads every item to the longest one, and trimming must undo that.",
]


@pytest.fixture(scope="module")
def handler(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> VoxmillHandler:
    model_dir = tmp_path_factory.mktemp("joe")
    config = extract_mar(joe_mar, model_dir)
    # The GPU profile's batching (the shipped CPU profile runs one sentence per model call).
    config["handler"]["max_batch_items"] = 16
    h = VoxmillHandler()
    h.initialize(LocalContext(model_dir, config))
    return h


@pytest.fixture
def model_calls(handler: VoxmillHandler, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch size of every call into the model."""
    assert handler.service is not None
    backend = handler.service.backend
    sizes: list[int] = []
    real = backend.infer_timed  # type: ignore[attr-defined]

    def infer_timed(batch: list[list[int]], params: object) -> object:
        sizes.append(len(batch))
        return real(batch, params)

    monkeypatch.setattr(backend, "infer_timed", infer_timed)
    return sizes


def call(handler: VoxmillHandler, bodies: list[object]) -> tuple[list[bytes], LocalContext]:
    ctx = LocalContext(Path("."))
    rows = [{"body": b} for b in bodies]
    return handler.handle(rows, ctx), ctx


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def quiet(body: dict[str, object]) -> dict[str, object]:
    return {**body, "noise_scale": 0.0, "noise_w": 0.0}


def test_one_sentence_is_plausible_speech(handler: VoxmillHandler) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    (reply,), ctx = call(handler, [{"text": text}])
    assert ctx.status(0) == 200
    assert ctx.headers[0]["content-type"] == "audio/wav"
    assert ctx.headers[0]["X-Sample-Rate"] == str(RATE)
    samples, rate = read_wav(reply)
    seconds = len(samples) / rate
    assert rate == RATE
    # English speech runs at roughly 10 to 20 characters a second.
    assert len(text) / 25 < seconds < len(text) / 6
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 500, "audio is (nearly) silent"


def test_pcm_format_returns_raw_samples(handler: VoxmillHandler) -> None:
    (wav_reply, pcm_reply), ctx = call(
        handler, [quiet({"text": "Same words."}), quiet({"text": "Same words.", "format": "pcm"})]
    )
    assert ctx.headers[1]["content-type"].startswith("audio/L16")
    wav_samples, _ = read_wav(wav_reply)
    assert np.array_equal(np.frombuffer(pcm_reply, dtype="<i2"), wav_samples)


def test_flac_is_the_same_audio_encoded_once_with_its_length_in_a_header(
    handler: VoxmillHandler,
) -> None:
    (wav_reply, flac_reply), ctx = call(
        handler, [quiet({"text": "Same words."}), quiet({"text": "Same words.", "format": "flac"})]
    )
    assert ctx.headers[1]["content-type"] == "audio/flac"
    assert flac_reply[:4] == b"fLaC"
    wav_samples, _ = read_wav(wav_reply)
    decoded, rate = audio.decode(flac_reply)
    assert rate == RATE and int(ctx.headers[1]["X-Sample-Rate"]) == RATE
    np.testing.assert_array_equal(decoded, wav_samples)  # lossless
    assert int(ctx.headers[1]["X-Audio-Samples"]) == len(decoded)


def test_batch_of_eight_matches_each_request_alone(
    handler: VoxmillHandler, model_calls: list[int]
) -> None:
    bodies = [quiet({"text": t}) for t in TEXTS]
    replies, ctx = call(handler, bodies)
    assert [ctx.status(i) for i in range(8)] == [200] * 8
    # One padded model call for the eight sentences, not a loop.
    assert model_calls == [8]
    lengths = []
    for body, reply in zip(bodies, replies, strict=True):
        together, _ = read_wav(reply)
        (alone_reply,), _ = call(handler, [body])
        alone, _ = read_wav(alone_reply)
        # Trimmed to its own length: no padded tail from the longest item of the batch.
        assert len(together) == len(alone)
        tail = int(0.05 * RATE)
        head = slice(0, max(0, len(alone) - tail))
        assert np.max(np.abs(together[head].astype(int) - alone[head].astype(int))) <= 64
        lengths.append(len(together))
    assert max(lengths) > 3 * min(lengths), "items should keep very different lengths"


def test_bad_items_fail_alone_and_the_batch_survives(handler: VoxmillHandler) -> None:
    bodies: list[object] = [
        {"text": "Good one."},
        {"text": ""},
        {"text": "x" * 5000},
        {"text": 42},
        {"text": "Fine too.", "speed": "fast"},
        b"{not json",
        b"\xff\xfe\x00",
        {"text": "Also good.", "colour": "blue"},
        {"text": "Last good one."},
    ]
    replies, ctx = call(handler, bodies)
    statuses = [ctx.status(i) for i in range(len(bodies))]
    assert statuses == [200, 400, 413, 400, 400, 400, 400, 400, 200]
    for i in (0, 8):
        samples, _ = read_wav(replies[i])
        assert len(samples) > RATE // 4
    errors = {i: json.loads(replies[i])["error"] for i in range(1, 8)}
    assert "empty" in errors[1]
    assert "limit is 2000" in errors[2]
    assert "'text'" in errors[3]
    assert "'speed'" in errors[4]
    assert "JSON" in errors[5]
    assert "UTF-8" in errors[6]
    assert "colour" in errors[7]


def test_speed_changes_duration(handler: VoxmillHandler) -> None:
    text = "Speaking faster makes the audio shorter."
    (normal, fast), _ = call(handler, [quiet({"text": text}), quiet({"text": text, "speed": 2.0})])
    n, _ = read_wav(normal)
    f, _ = read_wav(fast)
    assert 0.4 < len(f) / len(n) < 0.65


def test_long_text_is_split_and_joined_with_pauses(handler: VoxmillHandler) -> None:
    sentence = "This sentence is repeated to make a long passage for the voice. "
    text = sentence * 12  # ~780 characters: more than one chunk
    (reply,), ctx = call(handler, [quiet({"text": text})])
    assert ctx.status(0) == 200
    samples, _ = read_wav(reply)
    (one,), _ = call(handler, [quiet({"text": sentence})])
    single, _ = read_wav(one)
    # Twelve sentences plus eleven pauses of 250 ms, within the jitter of sentence lengths.
    expected = 12 * len(single) + 11 * int(0.25 * RATE)
    assert abs(len(samples) - expected) < 0.1 * expected
    # The pauses are real silence.
    window = int(0.2 * RATE)
    energy = np.convolve(np.abs(samples.astype(float)), np.ones(window) / window, mode="valid")
    assert np.sum(energy < 1.0) > 0


@pytest.mark.parametrize("number", [b"NaN", b"-Infinity"])
def test_a_speed_that_is_not_a_finite_number_is_called_so(number: bytes) -> None:
    body = b'{"text": "Hi.", "speed": ' + number + b"}"
    with pytest.raises(RequestError, match=r"'speed' must be a finite number between 0\.25 and 4"):
        parse_request(body, max_text_chars=2000)
