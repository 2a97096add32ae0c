"""API keys on /v1: Bearer header only, every configured key accepted, ops endpoints open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from api.routes import ops, speech, voices
from api.security import key_matches, require_api_key
from audio.codecs import encode
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio, EncodedAudio

KEYS = ["first-key-0123456789", "second-key-9876543210"]


class ToneSynth:
    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        return Audio(samples=np.full(160, 1000, dtype=np.int16), sample_rate=16000)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        audio = self.synthesize(voice, text, params)
        data = encode(audio.samples, audio.sample_rate, fmt)
        return EncodedAudio(data, fmt, audio.sample_rate, len(audio.samples))

    def voices(self) -> list[str]:
        return ["joe"]


def client(api_keys: list[str]) -> TestClient:
    """An app assembled the way ``api.main.create_app`` does it: /v1 routers behind the key."""
    app = FastAPI()
    app.state.settings = Settings(api_keys=api_keys)
    app.state.synthesizer = ToneSynth()
    app.state.readiness = []
    app.include_router(speech.router, dependencies=[Depends(require_api_key)])
    app.include_router(voices.router, dependencies=[Depends(require_api_key)])
    app.include_router(ops.router)
    return TestClient(app)


@pytest.fixture
def guarded() -> TestClient:
    return client(KEYS)


def test_missing_key_is_401_with_a_bearer_challenge(guarded: TestClient) -> None:
    response = guarded.get("/v1/voices")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_wrong_key_is_401(guarded: TestClient) -> None:
    response = guarded.get("/v1/voices", headers={"Authorization": "Bearer not-a-key"})

    assert response.status_code == 401
    assert response.json() == {"detail": "invalid API key"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_prefix_of_a_key_is_refused(guarded: TestClient) -> None:
    response = guarded.get("/v1/voices", headers={"Authorization": f"Bearer {KEYS[0][:-1]}"})

    assert response.status_code == 401


@pytest.mark.parametrize("key", KEYS)
def test_every_configured_key_is_accepted(guarded: TestClient, key: str) -> None:
    response = guarded.get("/v1/voices", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200
    assert [v["id"] for v in response.json()] == ["joe"]


def test_speech_needs_the_key_too(guarded: TestClient) -> None:
    body = {"input": "Hello.", "response_format": "pcm"}

    assert guarded.post("/v1/audio/speech", json=body).status_code == 401
    ok = guarded.post("/v1/audio/speech", json=body, headers={"Authorization": f"bearer {KEYS[1]}"})
    assert ok.status_code == 200
    assert len(ok.content) == 320


@pytest.mark.parametrize("param", ["api_key", "key", "access_token", "token", "authorization"])
def test_a_key_in_the_query_string_is_never_accepted(guarded: TestClient, param: str) -> None:
    response = guarded.get("/v1/voices", params={param: KEYS[0]})

    assert response.status_code == 401


@pytest.mark.parametrize(
    "header", [f"Basic {KEYS[0]}", KEYS[0], "Bearer", "Bearer ", f"Token {KEYS[0]}"]
)
def test_other_schemes_and_malformed_headers_are_401(guarded: TestClient, header: str) -> None:
    response = guarded.get("/v1/voices", headers={"Authorization": header})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_without_configured_keys_the_api_is_open() -> None:
    assert client([]).get("/v1/voices").status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_ops_endpoints_need_no_key(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 200


def test_router_guards_itself_when_included_bare() -> None:
    app = FastAPI()
    app.state.settings = Settings(api_keys=KEYS)
    app.state.synthesizer = ToneSynth()
    app.include_router(speech.router)

    assert TestClient(app).post("/v1/audio/speech", json={"input": "Hi."}).status_code == 401


def test_key_matches_compares_whole_keys() -> None:
    assert key_matches(KEYS[1], KEYS)
    assert not key_matches("", KEYS)
    assert not key_matches(KEYS[0] + "x", KEYS)
    assert not key_matches("ключ", KEYS)  # non-ASCII input must not raise
    assert not key_matches(KEYS[0], [])


def test_the_real_app_guards_speech_and_leaves_ops_open(tmp_path: Path) -> None:
    from api.main import create_app

    settings = Settings(api_keys=KEYS, data_dir=tmp_path, model_store=tmp_path)
    with TestClient(create_app(settings, synthesizer=ToneSynth())) as app:
        assert app.post("/v1/audio/speech", json={"input": "Hi."}).status_code == 401
        assert app.get("/v1/voices", params={"api_key": KEYS[0]}).status_code == 401
        ok = app.post(
            "/v1/audio/speech",
            json={"input": "Hi.", "response_format": "pcm"},
            headers={"Authorization": f"Bearer {KEYS[0]}"},
        )
        assert ok.status_code == 200 and len(ok.content) == 320
        assert app.get("/healthz").status_code == 200
        assert app.get("/readyz").status_code == 200
        metrics = app.get("/metrics").text
        assert 'route="/v1/audio/speech",status="401"' in metrics


def _admin_app(settings: Settings) -> TestClient:
    from api.security import require_admin

    app = FastAPI()
    app.state.settings = settings

    @app.post("/v1/voices", dependencies=[Depends(require_admin)])
    def upload() -> dict[str, str]:
        return {"ok": "yes"}

    return TestClient(app)


def test_only_admin_keys_manage_voices_and_plain_keys_still_work() -> None:
    settings = Settings(api_keys=[KEYS[0], f"{KEYS[1]}:admin"])
    app = _admin_app(settings)

    assert app.post("/v1/voices", headers={"Authorization": f"Bearer {KEYS[1]}"}).status_code == 200
    refused = app.post("/v1/voices", headers={"Authorization": f"Bearer {KEYS[0]}"})
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert app.post("/v1/voices").status_code == 401
    assert app.post("/v1/voices", headers={"Authorization": "Bearer nope"}).status_code == 401
    # The role suffix is not part of the key: "KEY:admin" itself is no key.
    wrong = app.post("/v1/voices", headers={"Authorization": f"Bearer {KEYS[1]}:admin"})
    assert wrong.status_code == 401


def test_without_keys_only_a_local_developer_manages_voices() -> None:
    assert _admin_app(Settings(environment="local")).post("/v1/voices").status_code == 200
    refused = _admin_app(Settings(environment="test")).post("/v1/voices")
    assert refused.status_code == 403 and "KEY:admin" in refused.json()["detail"]
