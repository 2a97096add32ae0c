"""POST /v1/audio/speech and GET /v1/voices (api/routes/voices.py) with a stub synthesizer.

The stub speaks ``SAMPLES_PER_CHAR`` samples per character, so every expected length is known.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import threading
from collections.abc import Callable

import av
import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes import ops, speech, voices
from api.routes.ops import install_metrics
from audio import codecs as audio_codecs
from audio.codecs import pause_samples
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import (
    Audio,
    NothingToSpeakError,
    PermanentSynthesisError,
    TransientSynthesisError,
    UnknownVoiceError,
)

RATE = 22050
SAMPLES_PER_CHAR = 40
SENTENCE_PAUSE = pause_samples(250, RATE)


def sentence(word: str, chars: int = 150) -> str:
    """A sentence of exactly ``chars`` characters: long enough that no two share a chunk."""
    body = " ".join([word] * chars)[: chars - 1].rstrip()
    return body.ljust(chars - 1, "x").capitalize() + "."


THREE = [sentence("alpha"), sentence("bravo"), sentence("charlie")]


class StubSynth:
    """Deterministic audio; records calls; optional hook run before each synthesis."""

    def __init__(self, voices: tuple[str, ...] = ("joe", "kim")) -> None:
        self._voices = list(voices)
        self.calls: list[tuple[str, str, SynthesisParams | None]] = []
        self.before: Callable[[int, str], None] | None = None
        self.lock = threading.Lock()

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        with self.lock:
            index = len(self.calls)
            self.calls.append((voice, text, params))
        if voice not in self._voices:
            raise UnknownVoiceError(f"voice {voice!r} is not served")
        if self.before is not None:
            self.before(index, text)
        return Audio(samples=tone(len(text) * SAMPLES_PER_CHAR), sample_rate=RATE)

    def voices(self) -> list[str]:
        return list(self._voices)


def tone(n: int) -> np.ndarray:
    return (np.sin(np.arange(n) * 2 * np.pi * 220 / RATE) * 8000).astype(np.int16)


def make_client(synth: StubSynth, **settings: object) -> TestClient:
    app = FastAPI()
    app.state.settings = Settings.model_validate(settings)
    app.state.synthesizer = synth
    app.state.readiness = []
    install_metrics(app)
    app.include_router(speech.router)
    app.include_router(voices.router)
    app.include_router(ops.router)
    return TestClient(app)


@pytest.fixture
def synth() -> StubSynth:
    return StubSynth()


@pytest.fixture
def client(synth: StubSynth) -> TestClient:
    return make_client(synth)


def streamed_length(texts: list[str]) -> int:
    """Samples of ``texts`` spoken one after another with a sentence pause between them."""
    return sum(len(t) for t in texts) * SAMPLES_PER_CHAR + SENTENCE_PAUSE * (len(texts) - 1)


def mp3_samples(data: bytes) -> int:
    """Samples in an MP3 stream, decoded frame by frame as a streaming player does (FFmpeg)."""
    with av.open(io.BytesIO(data), "r") as container:
        return sum(frame.samples for frame in container.decode(audio=0))


# --- formats -------------------------------------------------------------------------------


def test_short_input_is_one_complete_wav(client: TestClient, synth: StubSynth) -> None:
    response = client.post(
        "/v1/audio/speech",
        json={"input": "Hello there.", "voice": "joe", "response_format": "wav"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-sample-rate"] == str(RATE)
    assert int(response.headers["content-length"]) == len(response.content)
    samples, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    assert rate == RATE
    np.testing.assert_array_equal(samples, tone(12 * SAMPLES_PER_CHAR))
    assert [(v, t) for v, t, _ in synth.calls] == [("joe", "Hello there.")]


def test_mp3_is_the_default_format_as_openais(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"input": "Hi."})
    assert response.headers["content-type"] == "audio/mpeg"
    assert mp3_samples(response.content) > 0


def test_wav_is_a_riff_file(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"input": "Hi.", "response_format": "wav"})

    assert response.content[:4] == b"RIFF"
    assert response.content[8:12] == b"WAVE"


def test_long_input_streams_a_wav_of_the_whole_text(client: TestClient, synth: StubSynth) -> None:
    response = client.post(
        "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": "wav"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert "content-length" not in response.headers
    assert [t for _, t, _ in synth.calls] == THREE
    samples, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    assert rate == RATE
    assert len(samples) == streamed_length(THREE)
    # The sentences in order, a sentence pause of silence between them.
    first = len(THREE[0]) * SAMPLES_PER_CHAR
    np.testing.assert_array_equal(samples[:first], tone(first))
    assert not samples[first : first + SENTENCE_PAUSE].any()


def test_pcm_is_raw_16_bit_little_endian(client: TestClient) -> None:
    response = client.post(
        "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": "pcm"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("audio/L16")
    assert response.headers["x-sample-rate"] == str(RATE)
    samples = np.frombuffer(response.content, dtype="<i2")
    assert len(samples) == streamed_length(THREE)
    np.testing.assert_array_equal(samples[:100], tone(100))


def test_short_mp3_decodes_to_the_right_length(client: TestClient) -> None:
    response = client.post(
        "/v1/audio/speech", json={"input": "Hello there.", "response_format": "mp3"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    samples, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    assert rate == RATE
    assert abs(len(samples) - 12 * SAMPLES_PER_CHAR) < 0.1 * RATE


def test_long_mp3_streams_frames_a_player_reads_to_the_end(client: TestClient) -> None:
    response = client.post(
        "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": "mp3"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mpeg"
    # No Xing/Info frame: its frame count would make players stop after the first sentence.
    assert b"Xing" not in response.content and b"Info" not in response.content
    expected = streamed_length(THREE)
    # One encoder for the whole answer: its delay and padding (under 2 frames) are added once.
    assert expected <= mp3_samples(response.content) < expected + 2 * 1152


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_flac_and_ogg_are_encoded_once_for_the_whole_text(client: TestClient, fmt: str) -> None:
    response = client.post(
        "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": fmt}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == f"audio/{fmt}"
    assert int(response.headers["content-length"]) == len(response.content)
    samples, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    assert rate == RATE
    assert len(samples) == streamed_length(THREE)


# --- streaming -------------------------------------------------------------------------------


def test_first_sentence_arrives_before_the_last_is_synthesized(synth: StubSynth) -> None:
    first_received = threading.Event()
    second_started = threading.Event()
    waited: list[bool] = []

    def hold_later_sentences(index: int, _text: str) -> None:
        if index == 1:
            second_started.set()
        if index > 0:
            waited.append(first_received.wait(timeout=5))

    synth.before = hold_later_sentences
    first_bytes = 44 + 2 * len(THREE[0]) * SAMPLES_PER_CHAR
    with (
        make_client(synth) as client,
        client.stream(
            "POST", "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": "wav"}
        ) as response,
    ):
        assert response.status_code == 200
        received = b""
        chunks = response.iter_raw()
        while len(received) < first_bytes:
            received += next(chunks)
        # The look-ahead: sentence 2 is being synthesized while sentence 1 is sent, and
        # sentence 3 waits for it.
        assert second_started.wait(timeout=5)
        assert [t for _, t, _ in synth.calls] == THREE[:2]
        first_received.set()
        received += b"".join(chunks)

    assert waited == [True, True], "later sentences were synthesized before the first was sent"
    assert len(received) == 44 + 2 * streamed_length(THREE)


def test_synthesis_runs_off_the_event_loop(client: TestClient, synth: StubSynth) -> None:
    loops: list[bool] = []

    def record_loop(_index: int, _text: str) -> None:
        try:
            asyncio.get_running_loop()
            loops.append(True)
        except RuntimeError:
            loops.append(False)

    synth.before = record_loop
    client.post("/v1/audio/speech", json={"input": " ".join(THREE)})

    assert loops == [False, False, False]


def test_failure_mid_stream_ends_the_stream_after_what_was_spoken(
    client: TestClient, synth: StubSynth, caplog: pytest.LogCaptureFixture
) -> None:
    def fail_third(index: int, _text: str) -> None:
        if index == 2:
            raise TransientSynthesisError("TorchServe unreachable")

    synth.before = fail_third
    with caplog.at_level(logging.ERROR, logger="api.routes.speech"):
        response = client.post(
            "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": "pcm"}
        )

    assert response.status_code == 200
    assert len(response.content) == 2 * streamed_length(THREE[:2])
    assert "ended after 2 of 3 chunks: TorchServe unreachable" in caplog.text


# --- errors before the first byte ------------------------------------------------------------


def test_unknown_voice_is_404_with_the_served_voices(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"input": "Hello.", "voice": "zed"})

    assert response.status_code == 404
    body = response.json()
    assert body["voices"] == ["joe", "kim"]
    assert body["detail"] == "unknown voice 'zed'; available voices: joe, kim"


def test_transient_failure_is_503_with_retry_after(client: TestClient, synth: StubSynth) -> None:
    def busy(_index: int, _text: str) -> None:
        raise TransientSynthesisError("TorchServe busy (HTTP 503): no free worker")

    synth.before = busy
    response = client.post("/v1/audio/speech", json={"input": " ".join(THREE)})

    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "no free worker" in response.json()["detail"]


def test_failure_of_a_later_sentence_in_a_flac_is_still_an_error(
    client: TestClient, synth: StubSynth
) -> None:
    def fail_second(index: int, _text: str) -> None:
        if index == 1:
            raise TransientSynthesisError("timed out")

    synth.before = fail_second
    response = client.post(
        "/v1/audio/speech", json={"input": " ".join(THREE), "response_format": "flac"}
    )

    assert response.status_code == 503


def test_text_the_voice_refuses_is_422(client: TestClient, synth: StubSynth) -> None:
    def refuse(_index: int, _text: str) -> None:
        raise PermanentSynthesisError("the text has nothing to speak (no letters or numbers)")

    synth.before = refuse
    response = client.post("/v1/audio/speech", json={"input": "Hello."})

    assert response.status_code == 422
    assert "nothing to speak" in response.json()["detail"]


@pytest.mark.parametrize("text", ["!!!", "...", "😀😀", ". . ."])
def test_input_with_nothing_to_speak_is_422_before_synthesis(
    client: TestClient, synth: StubSynth, text: str
) -> None:
    response = client.post("/v1/audio/speech", json={"input": text})

    assert response.status_code == 422
    assert "the text has nothing to speak (no letters or numbers)" in response.json()["detail"]
    assert synth.calls == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": ""}, "at least 1 character"),
        ({"input": "   \n\t "}, "input is blank"),
        ({}, "Field required"),
        ({"input": "Hi.", "speed": 0.2}, "greater than or equal to 0.25"),
        ({"input": "Hi.", "speed": 4.5}, "less than or equal to 4"),
        ({"input": "Hi.", "response_format": "m4a"}, "'opus', 'aac', 'flac', 'wav', 'pcm' or"),
    ],
)
def test_bad_requests_are_422_with_the_reason(
    client: TestClient, synth: StubSynth, body: dict[str, object], message: str
) -> None:
    response = client.post("/v1/audio/speech", json=body)

    assert response.status_code == 422
    assert message in response.text
    assert synth.calls == []


def test_input_over_the_limit_is_refused_before_synthesis(synth: StubSynth) -> None:
    client = make_client(synth, max_speech_chars=50)

    assert client.post("/v1/audio/speech", json={"input": "a" * 50}).status_code == 200
    response = client.post("/v1/audio/speech", json={"input": "a" * 51})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("input is 51 characters; the limit is 50.")
    assert len(synth.calls) == 1


# --- voice, model and speed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "voice"),
    [
        ({"model": "tts-1"}, "joe"),
        ({"model": "tts-1-hd"}, "joe"),
        ({"model": "kim"}, "kim"),
        ({"model": "tts-1", "voice": "kim"}, "kim"),
        ({"model": "joe", "voice": "kim"}, "kim"),
        ({}, "joe"),
    ],
)
def test_voice_comes_from_voice_then_model_then_default(
    client: TestClient, synth: StubSynth, body: dict[str, str], voice: str
) -> None:
    response = client.post("/v1/audio/speech", json={"input": "Hi.", **body})

    assert response.status_code == 200
    assert synth.calls[0][0] == voice


def test_default_voice_comes_from_settings(synth: StubSynth) -> None:
    client = make_client(synth, default_voice="kim")

    client.post("/v1/audio/speech", json={"input": "Hi.", "model": "tts-1"})

    assert synth.calls[0][0] == "kim"


def test_speed_reaches_the_synthesizer_and_extra_fields_are_ignored(
    client: TestClient, synth: StubSynth
) -> None:
    body = {"input": "Hi.", "speed": 1.5, "instructions": "cheerful", "stream_format": "audio"}

    assert client.post("/v1/audio/speech", json=body).status_code == 200
    params = synth.calls[0][2]
    assert params is not None and params.speed == 1.5


def test_voices_lists_the_synthesizer_voices(synth: StubSynth) -> None:
    response = make_client(synth, default_voice="kim").get("/v1/voices")

    assert response.status_code == 200
    assert response.json() == [
        {"id": "joe", "name": "joe", "default": False, "builtin": True, "versions": []},
        {"id": "kim", "name": "kim", "default": True, "builtin": True, "versions": []},
    ]


def test_without_a_synthesizer_speech_is_503_with_what_to_set() -> None:
    app = FastAPI()
    app.state.settings = Settings()
    app.state.synthesizer = None
    app.include_router(speech.router)
    app.include_router(voices.router)
    client = TestClient(app)

    for response in (
        client.post("/v1/audio/speech", json={"input": "Hi."}),
        client.get("/v1/voices"),
    ):
        assert response.status_code == 503
        assert "VOXMILL_TORCHSERVE_URL" in response.json()["detail"]


def test_a_short_first_sentence_is_sent_on_its_own(client: TestClient, synth: StubSynth) -> None:
    text = f"Hello there. {sentence('delta', 95)} {sentence('echo', 80)} {THREE[0]}"

    response = client.post("/v1/audio/speech", json={"input": text, "response_format": "pcm"})

    assert response.status_code == 200
    spoken = [t for _, t, _ in synth.calls]
    assert spoken[0] == "Hello there."
    assert " ".join(spoken) == text, "every word once, in order"
    assert len(response.content) == 2 * streamed_length(spoken)


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("Hi.", ["Hi."]),
        ("", []),
        # The first of two long sentences is not cut short at a clause.
        (" ".join(THREE[:2]), THREE[:2]),
        # Short sentences after the first stay packed.
        ("One. Two. Three.", ["One. Two. Three."]),
    ],
)
def test_plan_chunks(text: str, chunks: list[str]) -> None:
    assert speech.plan_chunks(text) == chunks


def test_markdown_and_ssml_tags_are_never_spoken(client: TestClient, synth: StubSynth) -> None:
    markdown = "## Chapter one\n\nThis is **bold** and `code`."
    assert client.post("/v1/audio/speech", json={"input": markdown}).status_code == 200
    said = " ".join(t for _, t, _ in synth.calls)
    assert said == "Chapter one. This is bold and code."
    synth.calls.clear()
    ssml = 'Wait <break time="2s"/> then <say-as interpret-as="characters">ok</say-as>.'
    assert client.post("/v1/audio/speech", json={"input": ssml}).status_code == 200
    said = " ".join(t for _, t, _ in synth.calls)
    assert '<break time="2000ms"/>' in said and "o k" in said and "say-as" not in said


def test_invalid_ssml_is_422_saying_where(client: TestClient, synth: StubSynth) -> None:
    response = client.post("/v1/audio/speech", json={"input": "Hi <say-as>x</speak>"})
    assert response.status_code == 422
    assert "invalid SSML" in response.json()["detail"] and "line 1" in response.json()["detail"]
    assert not synth.calls


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac"])
def test_compressed_streams_start_after_the_first_sentence(synth: StubSynth, fmt: str) -> None:
    """Ogg Opus and AAC stream like MP3: the first sentence's audio is on the wire while the
    rest waits, and the whole answer is one stream that decodes to every sentence."""
    first_received = threading.Event()
    waited: list[bool] = []

    def hold_later_sentences(index: int, _text: str) -> None:
        if index > 1:
            waited.append(first_received.wait(timeout=5))

    synth.before = hold_later_sentences
    body = {"input": " ".join(THREE), "response_format": fmt}
    with (
        make_client(synth) as client,
        client.stream("POST", "/v1/audio/speech", json=body) as response,
    ):
        assert response.status_code == 200
        assert "content-length" not in response.headers
        chunks = response.iter_raw()
        received = next(chunks)
        assert received, "audio before the last sentence is synthesized"
        first_received.set()
        received += b"".join(chunks)

    assert waited == [True]
    samples, rate = audio_codecs.decode(received)
    seconds = len(samples) / rate
    assert abs(seconds - streamed_length(THREE) / RATE) < 0.1


# --- text with nothing to say inside -----------------------------------------------------------

CLOSING = "Then a normal closing sentence that should be heard."
LONG_TOKENS = [
    "a" * 2000 + " " + "b" * 2000 + ". " + CLOSING,
    "a" * 4096,
    "1" * 4000,
]


def refuse_unspeakable(_index: int, text: str) -> None:
    """As the voice handler: text without letters or numbers is refused."""
    if not any(ch.isalnum() for ch in text):
        raise NothingToSpeakError(limits.NOTHING_TO_SPEAK)


@pytest.mark.parametrize("text", LONG_TOKENS)
def test_chunks_of_very_long_words_all_have_something_to_say(text: str) -> None:
    chunks = speech.plan_chunks(text)

    assert all(any(ch.isalnum() for ch in chunk) for chunk in chunks), [
        c for c in chunks if len(c) < 5
    ]
    # No letter or digit is lost, in order.
    said = "".join(ch for ch in " ".join(chunks) if ch.isalnum())
    assert said == "".join(ch for ch in text if ch.isalnum())


def test_a_very_long_word_streams_to_the_end_of_the_text(
    client: TestClient, synth: StubSynth
) -> None:
    synth.before = refuse_unspeakable
    response = client.post(
        "/v1/audio/speech", json={"input": LONG_TOKENS[0], "response_format": "pcm"}
    )

    assert response.status_code == 200
    texts = [t for _, t, _ in synth.calls]
    assert texts[-1].endswith(CLOSING)
    speech_samples = sum(len(t) for t in texts) * SAMPLES_PER_CHAR
    assert len(response.content) // 2 > speech_samples


def pause_for_second(texts: list[str]) -> int:
    """Samples of ``texts`` spoken with the second one refused: a silent sentence instead."""
    rest = [texts[0], texts[2]]
    silent = pause_samples(limits.SILENT_SENTENCE_MS, RATE)
    return sum(len(t) for t in rest) * SAMPLES_PER_CHAR + 2 * SENTENCE_PAUSE + silent


@pytest.mark.parametrize(
    "body",
    [
        {"response_format": "pcm"},
        {"response_format": "pcm", "timestamps": True},
        {"response_format": "pcm", "stream_format": "sse"},
        {"response_format": "flac"},
    ],
)
def test_a_later_sentence_the_voice_finds_nothing_in_becomes_a_pause(
    client: TestClient, synth: StubSynth, body: dict[str, object]
) -> None:
    def refuse_second(index: int, _text: str) -> None:
        if index == 1:
            raise NothingToSpeakError(limits.NOTHING_TO_SPEAK)

    synth.before = refuse_second
    response = client.post("/v1/audio/speech", json={"input": " ".join(THREE), **body})

    assert response.status_code == 200
    assert [t for _, t, _ in synth.calls] == THREE
    if body.get("timestamps"):
        data = base64.b64decode(response.json()["audio"])
    elif body.get("stream_format") == "sse":
        events = [
            json.loads(line.removeprefix("data: "))
            for line in response.text.splitlines()
            if line.startswith("data: ")
        ]
        data = b"".join(
            base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta"
        )
    elif body["response_format"] == "flac":
        data = sf.read(io.BytesIO(response.content), dtype="int16")[0].tobytes()
    else:
        data = response.content
    samples = np.frombuffer(data, dtype="<i2")
    assert len(samples) == pause_for_second(THREE)
    first = len(THREE[0]) * SAMPLES_PER_CHAR
    silent = SENTENCE_PAUSE + pause_samples(limits.SILENT_SENTENCE_MS, RATE) + SENTENCE_PAUSE
    assert not samples[first : first + silent].any()
