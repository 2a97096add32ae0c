"""POST /v1/audio/speech against a real TorchServe serving model-store/joe.mar.

The app is assembled from the speech and ops routers with the distributed mode's synthesizer
(:class:`synthesis.torchserve.TorchServeSynthesizer`, token read from TorchServe's key file).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes import ops, speech
from api.routes.ops import install_metrics
from contract.settings import Mode, Settings
from devtools.torchserve_local import LocalTorchServe
from synthesis.torchserve import TorchServeSynthesizer

pytestmark = pytest.mark.integration

SHORT = "Hello from Voxmill."
LONG = (
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch of his "
    "old wooden house at the edge of the valley. "
    "Later that evening, a storm rolled in from the west, and the rain drummed on the tin roof "
    "until well after midnight, keeping everyone awake. "
    "By morning the sky had cleared, the fields were glistening, and the fox was nowhere to be "
    "seen, though its tracks led straight down to the river."
)


@pytest.fixture(scope="module")
def client(torchserve: LocalTorchServe) -> Iterator[TestClient]:
    settings = Settings(
        mode=Mode.DISTRIBUTED,
        environment="test",
        torchserve_url=torchserve.inference_url,
        torchserve_key_file=torchserve.key_file,
        default_voice="joe",
    )
    synthesizer = TorchServeSynthesizer(settings)
    app = FastAPI()
    app.state.settings = settings
    app.state.synthesizer = synthesizer
    app.state.readiness = [synthesizer.ping]
    install_metrics(app)
    app.include_router(speech.router)
    app.include_router(ops.router)
    with TestClient(app) as test_client:
        yield test_client
    synthesizer.close()


def wav(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    return samples, int(rate)


def test_short_text_is_a_wav_of_plausible_length(client: TestClient) -> None:
    response = client.post(
        "/v1/audio/speech", json={"model": "tts-1", "input": SHORT, "response_format": "wav"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    samples, rate = wav(response.content)
    assert rate == int(response.headers["x-sample-rate"]) == 22050
    seconds = len(samples) / rate
    # Three words and a name: about a second of speech, certainly between 0.5 and 4 s.
    assert 0.5 < seconds < 4.0, seconds
    assert np.abs(samples.astype(np.int32)).max() > 1000, "the audio is (nearly) silent"


def test_long_text_streams_every_sentence(client: TestClient) -> None:
    with client.stream("POST", "/v1/audio/speech", json={"voice": "joe", "input": LONG}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "audio/mpeg", "MP3 is the default, as OpenAI's"
        assert "content-length" not in r.headers
        parts = list(r.iter_raw())
    data = b"".join(parts)

    assert len(parts) >= 3, "expected one body part per sentence"
    samples, rate = wav(data)
    seconds = len(samples) / rate
    # ~75 words: at a speaking rate of 2-4 words per second, 18-38 s; allow a wide margin.
    assert 12.0 < seconds < 60.0, seconds
    # Each sentence carries real speech, not only padding.
    third = len(samples) // 3
    for part in (samples[:third], samples[third : 2 * third], samples[2 * third :]):
        assert np.abs(part.astype(np.int32)).max() > 1000


def test_speed_shortens_the_audio(client: TestClient) -> None:
    normal = client.post("/v1/audio/speech", json={"input": SHORT, "response_format": "pcm"})
    fast = client.post(
        "/v1/audio/speech", json={"input": SHORT, "response_format": "pcm", "speed": 2.0}
    )

    assert normal.status_code == fast.status_code == 200
    assert len(fast.content) < 0.75 * len(normal.content)


def test_mp3_and_flac_decode(client: TestClient) -> None:
    for fmt in ("mp3", "flac"):
        response = client.post("/v1/audio/speech", json={"input": SHORT, "response_format": fmt})
        assert response.status_code == 200, response.text
        samples, rate = wav(response.content)  # libsndfile reads all of them
        assert rate == 22050 and 0.5 < len(samples) / rate < 4.0


def test_a_voice_torchserve_does_not_serve_is_404(client: TestClient) -> None:
    response = client.post("/v1/audio/speech", json={"voice": "nobody", "input": SHORT})

    assert response.status_code == 404
    assert response.json()["voices"] == ["joe"]


def test_ready_when_torchserve_answers(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
