"""A real TorchServe on loopback serving the built joe.mar, with token authorization on."""

from __future__ import annotations

import io
import re
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from audio import codecs as audio

pytestmark = pytest.mark.integration

CONFIG = Path("model-store/config.properties")


def predict(ts: object, body: dict[str, object], token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{ts.inference_url}/predictions/joe"  # type: ignore[attr-defined]
    return httpx.post(url, json=body, headers=headers, timeout=60)


def test_with_the_token_returns_a_wav(torchserve: object) -> None:
    answer = predict(torchserve, {"text": "Hello from a real TorchServe."}, torchserve.key())  # type: ignore[attr-defined]
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "audio/wav"
    assert answer.headers["x-sample-rate"] == "22050"
    with wave.open(io.BytesIO(answer.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (22050, 1, 2)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert 0.8 < len(samples) / 22050 < 4.0
    assert np.abs(samples).max() > 10000


def test_flac_arrives_with_its_length_in_headers_through_torchserve(torchserve: object) -> None:
    text = {"text": "Stored as it was encoded.", "format": "flac"}
    answer = predict(torchserve, text, torchserve.key())  # type: ignore[attr-defined]
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "audio/flac"
    samples, rate = audio.decode(answer.content)
    assert rate == int(answer.headers["x-sample-rate"]) == 22050
    assert int(answer.headers["x-audio-samples"]) == len(samples)


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_without_a_valid_token_is_refused(torchserve: object, token: str | None) -> None:
    answer = predict(torchserve, {"text": "Let me in."}, token)
    assert answer.status_code in (400, 401)
    assert "Token Authorization failed" in answer.text
    assert not answer.content.startswith(b"RIFF")


def test_management_api_needs_its_own_key(torchserve: object) -> None:
    url = f"{torchserve.management_url}/models"  # type: ignore[attr-defined]
    inference_key = {"Authorization": f"Bearer {torchserve.key()}"}  # type: ignore[attr-defined]
    assert httpx.get(url, headers=inference_key, timeout=10).status_code in (400, 401)
    management_key = {"Authorization": f"Bearer {torchserve.key('management')}"}  # type: ignore[attr-defined]
    listed = httpx.get(url, headers=management_key, timeout=10).json()
    assert [m["modelName"] for m in listed["models"]] == ["joe"]


def test_registration_is_limited_to_the_model_store(torchserve: object) -> None:
    # The management API is on for uploaded voices, but registers only archives of the store.
    headers = {"Authorization": f"Bearer {torchserve.key('management')}"}  # type: ignore[attr-defined]
    url = f"{torchserve.management_url}/models"  # type: ignore[attr-defined]
    for outside in ("https://example.com/evil.mar", "file:///etc/evil.mar"):
        answer = httpx.post(url, params={"url": outside}, headers=headers, timeout=30)
        assert answer.status_code == 404
        assert "does not match any allowed url" in answer.text.lower()
    answer = httpx.post(url, params={"url": "../evil.mar"}, headers=headers, timeout=30)
    assert answer.status_code == 404 and "relative path is not allowed" in answer.text.lower()


def test_a_bad_item_gets_a_json_error(torchserve: object) -> None:
    answer = predict(torchserve, {"text": ""}, torchserve.key())  # type: ignore[attr-defined]
    assert answer.status_code == 400
    assert answer.json()["error"] == "'text' is empty: give the text to speak"


def test_concurrent_requests_all_succeed(torchserve: object) -> None:
    texts = [f"Request number {i} of a small burst." for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda t: predict(torchserve, {"text": t}, torchserve.key()), texts)
        )  # type: ignore[attr-defined]
    assert [a.status_code for a in answers] == [200] * 6


def test_shipped_config_is_locked_down() -> None:
    props = dict(
        line.split("=", 1)
        for line in CONFIG.read_text().splitlines()
        if line and not line.startswith("#")
    )
    for key in ("inference_address", "management_address", "metrics_address"):
        assert props[key].startswith("http://127.0.0.1:")
    assert props["grpc_inference_address"] == props["grpc_management_address"] == "127.0.0.1"
    assert props["disable_token_authorization"] == "false"
    # On for voice registration (loopback, its own key), limited to the model store.
    assert props["enable_model_api"] == "true"
    pattern = re.compile(props["allowed_urls"].replace("\\\\", "\\"))
    assert pattern.match("file:///srv/voxmill/model-store/joe.mar")
    assert not pattern.match("https://example.com/model-store/joe.mar")
    assert not pattern.match("file:///etc/passwd")
    assert int(props["max_response_size"]) > 6_553_500


def test_timings_of_a_long_segment_travel_in_a_header_through_torchserve(
    torchserve: object,
) -> None:
    from synthesis.base import timings_from_header

    sentence = "The keeper climbed the stairs of the lighthouse and lit the lamp again. "
    text = (sentence * 27).strip()  # close to the 2,000-character limit of one request
    assert 1900 < len(text) <= 2000
    answer = predict(torchserve, {"text": text, "format": "flac"}, torchserve.key())  # type: ignore[attr-defined]
    assert answer.status_code == 200
    timings = timings_from_header(answer.headers.get("x-timings"))
    assert timings is not None
    samples = int(answer.headers["x-audio-samples"])
    assert len(timings.words) == len(text.split())
    assert len(timings.sentences) == 27
    assert timings.words[-1].end_ms <= 1000 * samples / 22050
    starts = [w.start_ms for w in timings.words]
    assert starts == sorted(starts)
