"""OpenAI's own Python SDK against a real server (``voxmill api`` under uvicorn, embedded mode,
the real joe voice): every ``response_format`` decodes to the length the server says, OpenAI voice
names work, SSE events parse, timestamps fit the audio, and errors raise the SDK's exceptions."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import openai
import pytest
from e2e.webapp import API_KEY, Server, start_server, stop_server

pytestmark = pytest.mark.integration

TEXT = "The quick brown fox jumps over the lazy dog. It was not amused, and said so twice."


@pytest.fixture(scope="module")
def server(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("openai-sdk"), API_KEY)
    running.api_key = API_KEY
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0)


def decoded(data: bytes) -> tuple[float, float]:
    """(length, allowed padding) of an audio file in seconds, decoding every frame with PyAV.

    A lossy encoder may add up to one frame of priming in front (AAC in ADTS carries no edit list
    to trim its 1,024 samples) and fills the last frame: so the decoded length may exceed the
    speech by up to two frames of that codec (AAC 1,024, MP3 1,152, Opus 960 samples). Lossless
    formats: none."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        sizes = [frame.samples for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
        lossless = stream.codec_context.name in {"flac"} or stream.codec_context.name.startswith(
            "pcm_"
        )
        return sum(sizes) / rate, 0.0 if lossless else 2 * max(sizes) / rate


def decoded_seconds(data: bytes) -> float:
    """Length of an audio file in seconds (see `decoded`)."""
    return decoded(data)[0]


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_format_decodes_to_the_length_of_the_speech(client: openai.OpenAI, fmt: str) -> None:
    timed = client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format=fmt,  # type: ignore[arg-type]
        extra_body={"timestamps": True},
    ).http_response.json()
    data = base64.b64decode(timed["audio"])
    seconds, padding = (
        (len(data) / 2 / timed["sample_rate"], 0.0) if fmt == "pcm" else decoded(data)
    )
    assert timed["duration"] > 3.0, "two sentences of speech"
    assert timed["duration"] - 0.005 <= seconds <= timed["duration"] + padding + 0.001

    # The plain answer (what OpenAI clients read) is a file of that format too.
    plain = client.audio.speech.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format=fmt,  # type: ignore[arg-type]
    )
    content = plain.content
    rate = int(plain.response.headers["x-sample-rate"])
    length, padding = (len(content) / 2 / rate, 0.0) if fmt == "pcm" else decoded(content)
    # Another synthesis of the same text: VITS samples its durations, so lengths differ a bit.
    assert 0.75 * timed["duration"] < length < 1.25 * timed["duration"] + padding


def test_mp3_is_the_default_and_every_openai_voice_name_speaks(client: openai.OpenAI) -> None:
    for voice in ("alloy", "nova", "Shimmer"):
        answer = client.audio.speech.create(model="tts-1-hd", voice=voice, input="Hello.")  # type: ignore[arg-type]
        assert answer.response.headers["content-type"] == "audio/mpeg"
        assert decoded_seconds(answer.content) > 0.2


def test_sse_events_carry_the_audio_and_end_with_usage(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format="opus",
        stream_format="sse",
        extra_body={"timestamps": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [
            json.loads(line[len("data: ") :])
            for line in response.iter_lines()
            if line.startswith("data: ")
        ]
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 2, "the audio arrives in pieces, not once at the end"
    assert events[-1]["type"] == "speech.audio.done"
    assert events[-1]["usage"]["input_tokens"] == len(TEXT)
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert decoded_seconds(audio) > 3.0
    words = [w for e in deltas for w in e["timestamps"]]
    assert [w["word"] for w in words][:4] == ["The", "quick", "brown", "fox"]
    starts = [w["start"] for w in words]
    assert starts == sorted(starts) and starts[-1] < decoded_seconds(audio)


def test_timestamps_give_words_and_sentences_inside_the_audio(client: openai.OpenAI) -> None:
    timed = client.audio.speech.with_raw_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format="wav",
        extra_body={"timestamps": True},
    ).http_response.json()
    words = timed["words"]
    expected = TEXT.replace(",", "").replace(".", "").split()
    assert [w["word"] for w in words] == expected
    edges = [t for w in words for t in (w["start"], w["end"])]
    assert edges == sorted(edges)
    assert edges[-1] <= timed["duration"]
    assert [s["text"] for s in timed["sentences"]] == [
        "The quick brown fox jumps over the lazy dog.",
        "It was not amused, and said so twice.",
    ]


def test_long_opus_and_aac_stream_before_the_whole_text_is_spoken(server: Server) -> None:
    long_text = " ".join([TEXT] * 4)
    with server.api() as api:
        for fmt in ("opus", "aac"):
            with api.stream(
                "POST", "/v1/audio/speech", json={"input": long_text, "response_format": fmt}
            ) as response:
                assert response.status_code == 200
                assert "content-length" not in response.headers, "streamed, not buffered"
                data = b"".join(response.iter_bytes())
            assert decoded_seconds(data) > 15.0


def test_errors_raise_the_sdks_own_exceptions(server: Server, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")  # type: ignore[arg-type]
    assert "unknown voice 'nobody'" in missing.value.message
    assert missing.value.body["param"] == "voice"  # type: ignore[index]

    with pytest.raises(openai.UnprocessableEntityError) as blank:
        client.audio.speech.create(model="tts-1", voice="alloy", input="   ")
    assert "input is blank" in blank.value.message

    with pytest.raises(openai.UnprocessableEntityError) as fast:
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=9.0)
    assert fast.value.body["param"] == "speed"  # type: ignore[index]

    stranger = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.audio.speech.create(model="tts-1", voice="alloy", input="Hi.")


def test_unknown_fields_are_ignored(client: openai.OpenAI) -> None:
    answer = client.audio.speech.create(
        model="gpt-4o-mini-tts",
        voice="coral",
        input="Hi there.",
        instructions="Speak warmly.",
        extra_body={"something_new": 1},
    )
    assert decoded_seconds(answer.content) > 0.3


def test_voices_are_listed_with_the_openai_names(server: Server) -> None:
    with server.api() as api:
        listed = api.get("/v1/audio/voices").json()
    assert "joe" in listed["voices"] and "alloy" in listed["voices"]
    assert listed["aliases"]["alloy"] == listed["default"] == "joe"


def test_pcm_is_raw_samples_at_the_announced_rate(client: openai.OpenAI) -> None:
    answer = client.audio.speech.create(
        model="tts-1", voice="alloy", input="One two three.", response_format="pcm"
    )
    samples = np.frombuffer(answer.content, dtype="<i2")
    assert int(answer.response.headers["x-sample-rate"]) == 22050
    assert 0.5 < len(samples) / 22050 < 3.0
    assert np.abs(samples).max() > 1000, "speech, not silence"
