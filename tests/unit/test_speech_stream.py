"""WebSocket /v1/audio/speech/stream (api/routes/speech_stream.py) over a real uvicorn server on
loopback, with a stub synthesizer whose audio length is known (``SAMPLES_PER_CHAR`` per
character), so every expected length and order can be checked.

The real voice speaks through the same route in tests/integration/test_speech_stream_voice.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from api.lanes import AdmittedSynthesizer, LaneGate
from api.routes import ops, speech, speech_stream
from api.routes.ops import install_metrics
from audio.codecs import pause_samples
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio, NothingToSpeakError, UnknownVoiceError

RATE = 22050
SAMPLES_PER_CHAR = 40
WAIT_S = 60.0


class StubSynth:
    """A tone of ``samples_per_char`` samples per character; counts calls and calls running."""

    def __init__(self, samples_per_char: int = SAMPLES_PER_CHAR) -> None:
        self.samples_per_char = samples_per_char
        self.texts: list[str] = []
        self.running = 0
        self.lock = threading.Lock()
        self.before: Callable[[str], None] | None = None

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        with self.lock:
            self.texts.append(text)
            self.running += 1
        try:
            if voice != "joe":
                raise UnknownVoiceError(f"voice {voice!r} is not served; available: joe")
            if self.before is not None:
                self.before(text)
            n = len(text) * self.samples_per_char
            samples = (np.sin(np.arange(n) * 0.05) * 8000).astype(np.int16)
            return Audio(samples=samples, sample_rate=RATE)
        finally:
            with self.lock:
                self.running -= 1

    def voices(self) -> list[str]:
        return ["joe"]


def make_app(synth: Any, **settings: Any) -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings.model_validate(settings)
    app.state.synthesizer = synth
    app.state.readiness = []
    install_metrics(app)
    app.include_router(ops.router)
    app.include_router(speech.router)
    app.include_router(speech_stream.router)
    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """``app`` on a real uvicorn server on loopback; yields the stream's ws:// URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="auto")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the server to start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/v1/audio/speech/stream"
    finally:
        server.should_exit = True
        thread.join(WAIT_S)


def wait_for(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def gauge(app: FastAPI, name: str) -> float:
    value = ops.metrics_of(app).registry.get_sample_value(name)
    return 0.0 if value is None else value


def sentences(n: int, words: int = 8) -> list[str]:
    return [f"Sentence number {i} has " + " ".join(["words"] * words) + "." for i in range(n)]


def receive_chunk(ws: ClientConnection) -> tuple[dict[str, Any], bytes]:
    """One audio message and its binary frame."""
    meta = json.loads(ws.recv(timeout=WAIT_S))
    assert meta["type"] == "audio", meta
    pcm = ws.recv(timeout=WAIT_S)
    assert isinstance(pcm, bytes)
    return meta, pcm


def receive_rest(ws: ClientConnection) -> tuple[list[tuple[dict[str, Any], bytes]], dict[str, Any]]:
    """Every remaining audio chunk, then the ``done`` message."""
    chunks = []
    while True:
        message = ws.recv(timeout=WAIT_S)
        assert isinstance(message, str)
        meta = json.loads(message)
        if meta["type"] == "done":
            return chunks, meta
        assert meta["type"] == "audio", meta
        pcm = ws.recv(timeout=WAIT_S)
        assert isinstance(pcm, bytes)
        chunks.append((meta, pcm))


@pytest.fixture
def synth() -> StubSynth:
    return StubSynth()


def test_a_paragraph_sent_word_by_word_comes_back_in_order_first_audio_before_the_end(
    synth: StubSynth,
) -> None:
    paragraph = sentences(4)
    words = " ".join(paragraph).split(" ")
    # The last word of the first sentence: once the next word arrives, that sentence is complete.
    first_end = len(paragraph[0].split(" "))
    app = make_app(synth)
    with serve(app) as url, connect(url) as ws:
        ws.send(json.dumps({"type": "start", "voice": "joe", "speed": 1.25}))
        for word in words[: first_end + 1]:
            ws.send(json.dumps({"type": "text", "text": word + " "}))
        # Audio of the first sentence arrives while most of the paragraph is still unsent.
        first, first_pcm = receive_chunk(ws)
        assert first["text"] == paragraph[0]
        for word in words[first_end + 1 :]:
            ws.send(json.dumps({"type": "text", "text": word + " "}))
        ws.send(json.dumps({"type": "end"}))
        rest, done = receive_rest(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

    chunks = [(first, first_pcm), *rest]
    assert [meta["text"] for meta, _ in chunks] == paragraph
    assert [meta["index"] for meta, _ in chunks] == list(range(4))
    gap = pause_samples(250, RATE)
    position = 0
    for i, (meta, pcm) in enumerate(chunks):
        expected = len(paragraph[i]) * SAMPLES_PER_CHAR + (gap if i else 0)
        assert meta["sample_rate"] == RATE
        assert meta["samples"] == expected == len(pcm) // 2
        assert meta["offset_ms"] == round(1000 * (position + (gap if i else 0)) / RATE)
        words_out = [w["word"] for w in meta["words"]]
        assert words_out == paragraph[i].split()
        assert meta["words"][0]["start_ms"] == meta["offset_ms"]
        assert meta["words"][-1]["end_ms"] == meta["offset_ms"] + meta["duration_ms"]
        position += meta["samples"]
    assert done == {"type": "done", "chunks": 4, "duration_ms": round(1000 * position / RATE)}
    assert synth.texts == paragraph
    assert gauge(app, "voxmill_stream_connections") == 0


def test_flush_speaks_text_without_a_sentence_end(synth: StubSynth) -> None:
    with serve(make_app(synth)) as url, connect(url) as ws:
        ws.send(json.dumps({"type": "text", "text": "Hello there, "}))
        ws.send(json.dumps({"type": "text", "text": "how are"}))
        ws.send(json.dumps({"type": "flush"}))
        meta, pcm = receive_chunk(ws)
        # Spoken as a sentence, as POST /v1/audio/speech speaks a line without a stop.
        assert meta["text"] == "Hello there, how are."
        assert len(pcm) == 2 * len("Hello there, how are.") * SAMPLES_PER_CHAR
        ws.send(json.dumps({"type": "text", "text": "you today"}))
        ws.send(json.dumps({"type": "end"}))
        rest, done = receive_rest(ws)
    assert [m["text"] for m, _ in rest] == ["you today."]
    assert done["chunks"] == 2


def test_a_slow_reader_holds_the_server_back_and_still_gets_everything_in_order() -> None:
    # Half a megabyte of audio per sentence: far more than socket buffers hold, so a client
    # that does not read must stop the server after a few sentences.
    synth = StubSynth(samples_per_char=4000)
    paragraph = sentences(40)
    app = make_app(synth, stream_max_pending=2)
    with serve(app) as url, connect(url, max_size=None) as ws:
        sender = threading.Thread(
            target=lambda: (
                [ws.send(json.dumps({"type": "text", "text": s + " "})) for s in paragraph]
                + [ws.send(json.dumps({"type": "end"}))]
            ),
            daemon=True,
        )
        sender.start()
        sender.join(WAIT_S)  # small messages: the socket takes them all, read or not
        # Stalled: the queue ahead of the speaker is full (the reader waits to add to it) and
        # nothing is being synthesized, so the speaker is waiting for the client to read.
        wait_for(
            lambda: (
                gauge(app, "voxmill_stream_pending") == 2
                and gauge(app, "voxmill_stream_synthesizing") == 0
            ),
            "the stream to stall on the slow reader",
        )
        stalled_at = len(synth.texts)
        assert stalled_at < len(paragraph)
        chunks, done = receive_rest(ws)
    assert [m["text"] for m, _ in chunks] == paragraph
    assert done["chunks"] == len(paragraph)


def test_an_abrupt_disconnect_stops_the_stream_and_leaves_no_work_running() -> None:
    synth = StubSynth(samples_per_char=4000)
    paragraph = sentences(40)
    app = make_app(synth, stream_max_pending=2)
    with serve(app) as url:
        with connect(url, max_size=None) as ws:
            for s in paragraph:
                ws.send(json.dumps({"type": "text", "text": s + " "}))
            receive_chunk(ws)
            ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the client vanished
        wait_for(lambda: gauge(app, "voxmill_stream_connections") == 0, "the stream to end")
        wait_for(lambda: synth.running == 0, "the last synthesis to finish")
        spoken = len(synth.texts)
        assert spoken < len(paragraph)
        assert gauge(app, "voxmill_stream_synthesizing") == 0
        assert gauge(app, "voxmill_stream_pending") == 0
        # Nothing of the stream is left to start another synthesis.
        assert len(synth.texts) == spoken
    assert (
        ops.metrics_of(app).registry.get_sample_value(
            "voxmill_stream_closes_total", {"code": "disconnect"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing API key"),
        ({"Authorization": "Bearer wrong"}, "invalid API key"),
        ({"Authorization": "Basic a2V5"}, "missing API key"),
    ],
)
def test_a_stream_without_a_valid_key_is_refused_at_the_handshake(
    synth: StubSynth, headers: dict[str, str], detail: str
) -> None:
    with serve(make_app(synth, api_keys="sesame")) as url:
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers)
        assert refused.value.response.status_code == 401
        assert detail in refused.value.response.body.decode()
        with connect(url, additional_headers={"Authorization": "Bearer sesame"}) as ws:
            ws.send(json.dumps({"type": "text", "text": "Open."}))
            ws.send(json.dumps({"type": "end"}))
            chunks, done = receive_rest(ws)
    assert [m["text"] for m, _ in chunks] == ["Open."]
    assert done["chunks"] == 1
    assert synth.texts == ["Open."]


def closing(ws: ClientConnection) -> tuple[dict[str, Any], int, str]:
    """The error message and the close code and reason that follow it."""
    error = json.loads(ws.recv(timeout=WAIT_S))
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=WAIT_S)
    rcvd = closed.value.rcvd
    assert rcvd is not None
    return error, rcvd.code, rcvd.reason


@pytest.mark.parametrize(
    ("messages", "code", "detail"),
    [
        (["not json"], 1007, "not JSON"),
        ([json.dumps({"type": "shout"})], 1007, "unknown message type 'shout'"),
        ([json.dumps({"type": "text"})], 1007, 'a "text" message needs a string "text"'),
        ([json.dumps({"type": "start", "speed": 9})], 1007, "invalid start message: speed"),
        ([json.dumps({"type": "start", "pitch": 2})], 1007, "invalid start message: pitch"),
        (
            [json.dumps({"type": "text", "text": "x"}), json.dumps({"type": "start"})],
            1007,
            '"start" may only be the first message',
        ),
        ([b"\x00\x01"], 1003, "not binary frames"),
        ([json.dumps({"type": "text", "text": "a" * 5000})], 1009, "the limit is 4096"),
        (
            [json.dumps({"type": "text", "text": "word " * 500})],
            1009,
            "without a sentence end (the limit is 2000)",
        ),
        (
            [json.dumps({"type": "start", "voice": "nobody"}), json.dumps({"type": "end"})],
            1007,
            "",
        ),
    ],
)
def test_bad_messages_close_with_a_code_and_the_reason(
    synth: StubSynth, messages: list[str | bytes], code: int, detail: str
) -> None:
    with serve(make_app(synth)) as url, connect(url) as ws:
        if messages[-1] == json.dumps({"type": "end"}):
            messages = [*messages[:-1], json.dumps({"type": "text", "text": "Hi."}), messages[-1]]
        for message in messages:
            ws.send(message)
        error, got_code, reason = closing(ws)
    assert error["type"] == "error" and error["code"] == code == got_code
    assert detail in error["detail"]
    assert reason and error["detail"].startswith(reason[:40])


def test_an_unknown_voice_names_the_available_ones(synth: StubSynth) -> None:
    with serve(make_app(synth)) as url, connect(url) as ws:
        ws.send(json.dumps({"type": "start", "voice": "nobody"}))
        ws.send(json.dumps({"type": "text", "text": "Hi."}))
        ws.send(json.dumps({"type": "end"}))
        error, code, _ = closing(ws)
    assert code == 1007
    assert "nobody" in error["detail"] and "joe" in error["detail"]


def test_an_unknown_voice_is_refused_at_start_before_any_text(synth: StubSynth) -> None:
    # The idle timeout is long: only a check at "start" closes the stream.
    with serve(make_app(synth, stream_idle_timeout_s=3600)) as url, connect(url) as ws:
        ws.send(json.dumps({"type": "start", "voice": "nobody"}))
        error, code, reason = closing(ws)
    assert code == error["code"] == 1007
    assert error["detail"] == "unknown voice 'nobody'; available voices: joe"
    assert reason == error["detail"]
    assert synth.texts == []


@pytest.mark.parametrize("alias", ["nova", "alloy", "Shimmer"])
def test_openai_voice_names_stand_for_configured_voices_as_in_rest(
    synth: StubSynth, alias: str
) -> None:
    app = make_app(synth)
    with serve(app) as url, connect(url) as ws:
        ws.send(json.dumps({"type": "start", "voice": alias}))
        ws.send(json.dumps({"type": "text", "text": "Hello there."}))
        ws.send(json.dumps({"type": "end"}))
        chunks, done = receive_rest(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert [m["text"] for m, _ in chunks] == ["Hello there."]
    assert done["chunks"] == 1
    rest = TestClient(app).post("/v1/audio/speech", json={"input": "Hi.", "voice": alias})
    assert rest.status_code == 200


def test_sentences_with_nothing_to_say_are_pauses_and_the_stream_goes_on(
    synth: StubSynth,
) -> None:
    def refuse(text: str) -> None:
        if text == "Quiet.":  # the voice itself finds nothing in it
            raise NothingToSpeakError(limits.NOTHING_TO_SPEAK)

    synth.before = refuse
    with serve(make_app(synth)) as url, connect(url) as ws:
        for piece in ["Hello there.", None, "...", None, "😀😀", None, "Quiet.", None, "Bye now."]:
            message = {"type": "flush"} if piece is None else {"type": "text", "text": piece}
            ws.send(json.dumps(message))
        ws.send(json.dumps({"type": "end"}))
        chunks, done = receive_rest(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=WAIT_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert [m["text"] for m, _ in chunks] == ["Hello there.", "Bye now."]
    assert "Quiet." in synth.texts
    # Each sentence with nothing to say lengthens the pause before the next by a silent sentence.
    (_, first), (second, pcm) = chunks
    gap = pause_samples(250 + 3 * limits.SILENT_SENTENCE_MS, RATE)
    assert second["samples"] == gap + len("Bye now.") * SAMPLES_PER_CHAR == len(pcm) // 2
    assert not np.frombuffer(pcm, dtype="<i2")[:gap].any()
    assert second["offset_ms"] == round(1000 * (len(first) // 2 + gap) / RATE)
    assert done["chunks"] == 2


def test_saturated_voice_servers_close_the_stream_with_1013_and_rest_gets_503(
    synth: StubSynth,
) -> None:
    gate = LaneGate(concurrency=1, max_wait_s=0.05, bulk_yield_max_s=0)
    app = make_app(AdmittedSynthesizer(synth, gate))
    with gate.interactive():  # every slot taken, and none comes free
        with serve(app) as url, connect(url) as ws:
            ws.send(json.dumps({"type": "text", "text": "Busy?"}))
            ws.send(json.dumps({"type": "end"}))
            error, code, _ = closing(ws)
        rest = TestClient(app).post("/v1/audio/speech", json={"input": "Busy?"})
    assert code == 1013 and "saturated" in error["detail"]
    assert rest.status_code == 503
    assert int(rest.headers["Retry-After"]) > 0
    assert "saturated" in rest.json()["detail"]
    assert synth.texts == []
    # Once a slot is free, the same request is served.
    assert TestClient(app).post("/v1/audio/speech", json={"input": "Free."}).status_code == 200


def test_estimated_word_times_share_the_duration_by_letters() -> None:
    words = speech_stream.estimate_words("I am here.", 1000, 500)
    assert [w["word"] for w in words] == ["I", "am", "here."]
    assert [(w["start_ms"], w["end_ms"]) for w in words] == [(500, 643), (643, 929), (929, 1500)]
