"""WebSocket /v1/audio/speech/stream with the real joe voice, in both modes: the embedded app
(the handler in-process) and a real TorchServe (the distributed mode's synthesizer)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

from api.main import create_app
from api.routes import ops, speech_stream
from api.routes.ops import install_metrics
from contract.settings import Mode, Settings
from devtools.torchserve_local import LocalTorchServe
from synthesis.torchserve import TorchServeSynthesizer

pytestmark = pytest.mark.integration

PARAGRAPH = [
    "The storm rolled in from the west.",
    "Rain drummed on the tin roof until midnight.",
    "By morning the sky had cleared.",
]


def speak_word_by_word(ws: WebSocketTestSession) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Send PARAGRAPH a word at a time; the first sentence's audio must come back before the
    words of the last sentence are sent. Returns every chunk, in the order received."""
    words = " ".join(PARAGRAPH).split(" ")
    first_end = len(PARAGRAPH[0].split(" "))
    for word in words[: first_end + 1]:
        ws.send_json({"type": "text", "text": word + " "})
    chunks = [receive(ws)]
    for word in words[first_end + 1 :]:
        ws.send_json({"type": "text", "text": word + " "})
    ws.send_json({"type": "end"})
    while (meta := ws.receive_json())["type"] == "audio":
        chunks.append((meta, np.frombuffer(ws.receive_bytes(), dtype="<i2")))
    assert meta["type"] == "done" and meta["chunks"] == len(PARAGRAPH), meta
    return chunks


def receive(ws: WebSocketTestSession) -> tuple[dict[str, Any], np.ndarray]:
    meta = ws.receive_json()
    assert meta["type"] == "audio", meta
    return meta, np.frombuffer(ws.receive_bytes(), dtype="<i2")


def assert_speech(chunks: list[tuple[dict[str, Any], np.ndarray]]) -> None:
    assert [meta["text"] for meta, _ in chunks] == PARAGRAPH
    for meta, samples in chunks:
        assert meta["sample_rate"] == 22050
        assert len(samples) == meta["samples"]
        # A spoken sentence: at least a third of a second per five words, and not silence.
        assert meta["duration_ms"] > 60 * len(meta["text"].split())
        assert np.abs(samples.astype(np.int32)).max() > 1000
        # Word times from the voice's duration predictor, in order, inside this chunk's audio.
        assert meta["timings"] == "model", meta
        words = meta["words"]
        assert len(words) >= len(meta["text"].split()) - 1
        starts = [w["start_ms"] for w in words]
        assert starts == sorted(starts)
        assert words[0]["start_ms"] >= meta["offset_ms"]
        assert words[-1]["end_ms"] <= meta["offset_ms"] + meta["duration_ms"] + 1


def test_embedded_stream_speaks_with_the_real_voice(joe_mar: Path, tmp_path: Path) -> None:
    settings = Settings(mode=Mode.EMBEDDED, data_dir=tmp_path, model_store=joe_mar.parent)
    with (
        TestClient(create_app(settings)) as client,
        client.websocket_connect("/v1/audio/speech/stream") as ws,
    ):
        ws.send_json({"type": "start", "voice": "joe"})
        chunks = speak_word_by_word(ws)
        metrics = client.get("/metrics").text
    assert_speech(chunks)
    # What an operator watches: the stream ended normally, each lane's queue depth and waits.
    assert 'voxmill_stream_closes_total{code="1000"} 1.0' in metrics
    assert 'voxmill_lane_queue_depth{lane="interactive"} 0.0' in metrics
    assert 'voxmill_lane_wait_seconds_count{lane="interactive"} 3.0' in metrics


@pytest.fixture(scope="module")
def distributed(torchserve: LocalTorchServe) -> Iterator[TestClient]:
    settings = Settings(
        mode=Mode.DISTRIBUTED,
        environment="test",
        torchserve_url=torchserve.inference_url,
        torchserve_key_file=torchserve.key_file,
        api_keys=["stream-key"],
    )
    synthesizer = TorchServeSynthesizer(settings)
    app = FastAPI()
    app.state.settings = settings
    app.state.synthesizer = synthesizer
    install_metrics(app)
    app.include_router(speech_stream.router)
    app.include_router(ops.router)
    with TestClient(app) as client:
        yield client
    synthesizer.close()


def test_distributed_stream_speaks_through_torchserve(distributed: TestClient) -> None:
    headers = {"Authorization": "Bearer stream-key"}
    with distributed.websocket_connect("/v1/audio/speech/stream", headers=headers) as ws:
        chunks = speak_word_by_word(ws)
    assert_speech(chunks)
