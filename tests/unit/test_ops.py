"""/healthz, /readyz and /metrics, on an app assembled from the ops router."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.routes import ops, speech
from api.routes.ops import install_metrics
from audio.codecs import encode
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio, EncodedAudio


class ToneSynth:
    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        return Audio(samples=np.full(8000, 1000, dtype=np.int16), sample_rate=16000)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        audio = self.synthesize(voice, text, params)
        data = encode(audio.samples, audio.sample_rate, fmt)
        return EncodedAudio(data, fmt, audio.sample_rate, len(audio.samples))

    def voices(self) -> list[str]:
        return ["joe"]


def make_app(readiness: list[Callable[[], object]] | None = None) -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings()
    app.state.synthesizer = ToneSynth()
    app.state.readiness = readiness or []
    install_metrics(app)
    app.include_router(speech.router)
    app.include_router(ops.router)
    return app


def samples(body: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in a Prometheus text body, keyed by its sorted labels."""
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def released() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # let an abandoned check's thread finish


def test_healthz_checks_no_dependency() -> None:
    def database_down() -> None:
        raise ConnectionError("database is down")

    response = TestClient(make_app([database_down])).get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_with_passing_checks() -> None:
    calls: list[str] = []

    def db_ping() -> None:
        calls.append("db")

    def torchserve_ping() -> bool:
        calls.append("ts")
        return True

    response = TestClient(make_app([db_ping, torchserve_ping])).get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert sorted(calls) == ["db", "ts"]


def test_readyz_lists_each_failure() -> None:
    def db_ping() -> None:
        pass

    def broker_ping() -> None:
        raise ConnectionRefusedError("127.0.0.1:5672 refused the connection")

    def torchserve_ping() -> bool:
        return False

    response = TestClient(make_app([db_ping, broker_ping, torchserve_ping])).get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    by_check = {f["check"].rsplit(".", 1)[-1]: f["error"] for f in body["failures"]}
    assert by_check == {
        "broker_ping": "ConnectionRefusedError: 127.0.0.1:5672 refused the connection",
        "torchserve_ping": "check returned False",
    }


def test_readyz_does_not_hang_on_a_hung_check(
    monkeypatch: pytest.MonkeyPatch, released: threading.Event
) -> None:
    monkeypatch.setattr(ops, "READINESS_TIMEOUT_S", 0.2)

    def hung_ping() -> None:
        released.wait(30)

    response = TestClient(make_app([hung_ping])).get("/readyz")

    assert response.status_code == 503
    (failure,) = response.json()["failures"]
    assert failure["check"].endswith("hung_ping")
    assert failure["error"] == "no answer within 0.2 s"


def test_metrics_count_requests_by_route_template() -> None:
    client = TestClient(make_app())
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/path")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = samples(response.text, "voxmill_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 2
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    latency = samples(response.text, "voxmill_http_request_duration_seconds_count")
    assert latency[(("method", "GET"), ("route", "/healthz"))] == 2


def test_metrics_measure_speech() -> None:
    client = TestClient(make_app())
    for _ in range(2):
        assert client.post("/v1/audio/speech", json={"input": "Hello there."}).status_code == 200

    body = client.get("/metrics").text

    assert samples(body, "voxmill_speech_audio_seconds_total") == {(("voice", "joe"),): 1.0}
    assert samples(body, "voxmill_speech_synthesis_seconds_count") == {(("voice", "joe"),): 2}
    route = (("method", "POST"), ("route", "/v1/audio/speech"), ("status", "200"))
    assert samples(body, "voxmill_http_requests_total")[route] == 2


def test_each_app_has_its_own_registry() -> None:
    first, second = TestClient(make_app()), TestClient(make_app())
    first.get("/healthz")

    counts = samples(second.get("/metrics").text, "voxmill_http_requests_total")

    assert (("method", "GET"), ("route", "/healthz"), ("status", "200")) not in counts


def test_metrics_work_without_install_metrics() -> None:
    app = FastAPI()
    app.state.settings = Settings()
    app.state.synthesizer = ToneSynth()
    app.include_router(speech.router)
    app.include_router(ops.router)
    client = TestClient(app)
    client.post("/v1/audio/speech", json={"input": "Hello."})

    body = client.get("/metrics").text

    assert samples(body, "voxmill_speech_audio_seconds_total") == {(("voice", "joe"),): 0.5}
