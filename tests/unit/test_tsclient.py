"""TorchServeSynthesizer against httpx.MockTransport: request shape, status mapping, tokens."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from audio.codecs import encode, media_type
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import (
    NothingToSpeakError,
    PermanentSynthesisError,
    TransientSynthesisError,
    UnknownVoiceError,
    VoiceServerAuthError,
    VoiceServerUnavailable,
)
from synthesis.torchserve import TorchServeSynthesizer

RATE = 22050
SAMPLES = (np.arange(2205) % 200 - 100).astype(np.int16) * 50


def voice_response(request: httpx.Request) -> httpx.Response:
    """What the Voxmill handler answers: the asked format, described by two headers."""
    fmt = json.loads(request.content)["format"]
    headers = {
        "content-type": media_type(fmt, RATE),
        "X-Sample-Rate": str(RATE),
        "X-Audio-Samples": str(len(SAMPLES)),
    }
    return httpx.Response(200, content=encode(SAMPLES, RATE, fmt), headers=headers)


wav_response = voice_response


def make(
    handler: Callable[[httpx.Request], httpx.Response], **settings: object
) -> tuple[TorchServeSynthesizer, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    config: dict[str, object] = {"torchserve_url": "http://ts:8080", "torchserve_token": "tok"}
    config.update(settings)
    client = httpx.Client(transport=httpx.MockTransport(record))
    return TorchServeSynthesizer(Settings.model_validate(config), http=client), requests


def test_posts_text_and_params_with_the_token() -> None:
    synth, requests = make(wav_response)

    audio = synth.synthesize("joe", "Hello.", SynthesisParams(speed=1.5, noise_scale=0.0))

    (request,) = requests
    assert request.method == "POST"
    assert str(request.url) == "http://ts:8080/predictions/joe"
    assert request.headers["Authorization"] == "Bearer tok"
    assert json.loads(request.content) == {
        "text": "Hello.",
        "speed": 1.5,
        "noise_scale": 0.0,
        "format": "pcm",
    }
    assert audio.sample_rate == RATE
    assert audio.samples.dtype == np.int16
    np.testing.assert_array_equal(audio.samples, SAMPLES)
    assert audio.duration_ms == 100


def test_default_params_and_no_token() -> None:
    synth, requests = make(wav_response, torchserve_token="")
    synth.synthesize("joe", "Hi.")
    assert "Authorization" not in requests[0].headers
    assert json.loads(requests[0].content) == {"text": "Hi.", "speed": 1.0, "format": "pcm"}


def test_encoded_audio_is_handed_on_untouched_with_its_length_from_the_headers() -> None:
    synth, requests = make(voice_response)

    encoded = synth.synthesize_encoded("joe", "Hello.")

    assert json.loads(requests[0].content)["format"] == "flac"
    assert encoded.data == encode(SAMPLES, RATE, "flac")
    assert (encoded.format, encoded.sample_rate, encoded.num_samples) == ("flac", RATE, 2205)
    assert encoded.duration_ms == 100


def test_voice_routes_pick_the_server() -> None:
    synth, requests = make(
        wav_response, voice_routes={"ana": "http://ts-gpu:8080/"}, default_voice="joe"
    )
    synth.synthesize("ana", "Hola.")
    synth.synthesize("joe", "Hi.")
    assert [str(r.url) for r in requests] == [
        "http://ts-gpu:8080/predictions/ana",
        "http://ts:8080/predictions/joe",
    ]
    assert synth.voices() == ["ana", "joe"]


def test_no_url_configured_is_permanent() -> None:
    synth, _ = make(wav_response, torchserve_url="")
    with pytest.raises(PermanentSynthesisError, match="VOXMILL_TORCHSERVE_URL"):
        synth.synthesize("joe", "Hi.")


@pytest.mark.parametrize("status", [503, 429, 500, 502, 504, 507])
def test_busy_or_failing_server_is_transient(status: int) -> None:
    synth, _ = make(lambda r: httpx.Response(status, json={"message": "no worker"}))
    with pytest.raises(TransientSynthesisError, match=rf"\(HTTP {status}\): no worker"):
        synth.synthesize("joe", "Hi.")


@pytest.mark.parametrize(
    "error",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("connection reset by peer"),
    ],
)
def test_timeouts_and_connection_errors_are_transient(error: Exception) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    synth, _ = make(fail)
    with pytest.raises(TransientSynthesisError):
        synth.synthesize("joe", "Hi.")


def test_unknown_voice() -> None:
    body = {"code": 404, "type": "ModelNotFoundException", "message": "Model not found: zed"}
    synth, _ = make(lambda r: httpx.Response(404, json=body))
    with pytest.raises(UnknownVoiceError, match="Model not found: zed"):
        synth.synthesize("zed", "Hi.")


def test_bad_item_is_permanent_with_the_handlers_text() -> None:
    synth, _ = make(lambda r: httpx.Response(400, json={"error": "text is longer than 2000"}))
    with pytest.raises(PermanentSynthesisError, match="text is longer than 2000") as info:
        synth.synthesize("joe", "x" * 3000)
    assert not isinstance(info.value, UnknownVoiceError)


def test_text_with_nothing_to_speak_is_its_own_refusal() -> None:
    synth, _ = make(lambda r: httpx.Response(400, json={"error": limits.NOTHING_TO_SPEAK}))
    with pytest.raises(NothingToSpeakError, match="nothing to speak"):
        synth.synthesize("joe", "...")
    other, _ = make(lambda r: httpx.Response(400, json={"error": "text is longer than 2000"}))
    with pytest.raises(PermanentSynthesisError) as info:
        other.synthesize("joe", "x" * 3000)
    assert not isinstance(info.value, NothingToSpeakError)


def test_json_error_with_status_200_is_permanent() -> None:
    synth, _ = make(lambda r: httpx.Response(200, json={"error": "nothing to say"}))
    with pytest.raises(PermanentSynthesisError, match="nothing to say"):
        synth.synthesize("joe", "...")


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Sample-Rate": "22050"}, {"X-Sample-Rate": "fast", "X-Audio-Samples": "3"}],
)
def test_audio_without_its_description_is_permanent(headers: dict[str, str]) -> None:
    synth, _ = make(lambda r: httpx.Response(200, content=b"fLaC...", headers=headers))
    with pytest.raises(PermanentSynthesisError, match="rebuild the voice archive"):
        synth.synthesize_encoded("joe", "Hi.")


def test_odd_pcm_is_permanent() -> None:
    headers = {"X-Sample-Rate": "22050", "X-Audio-Samples": "1"}
    synth, _ = make(lambda r: httpx.Response(200, content=b"\x00\x01\x02", headers=headers))
    with pytest.raises(PermanentSynthesisError, match="odd"):
        synth.synthesize("joe", "Hi.")


def key_file(path: Path, key: str) -> Path:
    path.write_text(json.dumps({"inference": {"key": key}, "management": {"key": "m"}}))
    return path


def token_checker(valid: str, status: int = 401) -> Callable[[httpx.Request], httpx.Response]:
    def check(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {valid}":
            if status == 400:  # what TorchServe 0.12 really answers
                return httpx.Response(
                    400,
                    json={
                        "code": 400,
                        "type": "InvalidKeyException",
                        "message": "Token Authorization failed. Token either incorrect, expired, "
                        "or not provided correctly",
                    },
                )
            return httpx.Response(401, json={"message": "unauthorized"})
        return wav_response(request)

    return check


@pytest.mark.parametrize("status", [401, 400])
def test_rotated_key_file_is_reread_once(tmp_path: Path, status: int) -> None:
    keys = key_file(tmp_path / "key_file.json", "old")
    synth, requests = make(
        token_checker("new", status), torchserve_token="", torchserve_key_file=keys
    )
    key_file(keys, "new")  # TorchServe regenerated its key after the client started

    audio = synth.synthesize("joe", "Hi.")

    assert len(audio.samples) == len(SAMPLES)
    assert [r.headers["Authorization"] for r in requests] == ["Bearer old", "Bearer new"]
    synth.synthesize("joe", "Again.")
    assert requests[-1].headers["Authorization"] == "Bearer new"  # kept for later calls


@pytest.mark.parametrize("status", [401, 400])
def test_refused_token_is_the_servers_problem_after_one_retry(tmp_path: Path, status: int) -> None:
    synth, requests = make(token_checker("right", status), torchserve_token="wrong")
    with pytest.raises(VoiceServerAuthError, match="TorchServe refused the token"):
        synth.synthesize("joe", "Hi.")
    assert len(requests) == 2


def test_ping_checks_every_configured_server() -> None:
    def ping(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer tok"
        if request.url.host == "down":
            return httpx.Response(503, json={"status": "Unhealthy"})
        return httpx.Response(200, json={"status": "Healthy"})

    healthy, _ = make(ping, voice_routes={"ana": "http://ts-gpu:8080"})
    assert healthy.ping()
    sick, _ = make(ping, voice_routes={"ana": "http://down:8080"})
    assert not sick.ping()
    unconfigured, _ = make(ping, torchserve_url="")
    assert not unconfigured.ping()


def test_ping_unreachable_is_false() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    synth, _ = make(refuse)
    assert not synth.ping()


@pytest.mark.parametrize("status", [401, 400])
def test_a_ping_refused_for_the_key_is_no_outage(status: int) -> None:
    # The server answers, but not to this key: the worker's breaker must say so loudly.
    synth, _ = make(token_checker("right", status), torchserve_token="wrong")
    with pytest.raises(VoiceServerAuthError, match="http://ts:8080 refused the inference key"):
        synth.ping()


def test_a_new_key_in_the_key_file_is_taken_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = key_file(tmp_path / "key_file.json", "k-0ld-3f9a")
    synth, requests = make(
        token_checker("k-n3w-7c21"), torchserve_token="", torchserve_key_file=keys
    )
    assert not synth.reload_token()  # the same key: nothing to say
    assert "re-read" not in caplog.text

    key_file(keys, "k-n3w-7c21")  # TorchServe restarted with a new key
    assert synth.reload_token()
    assert f"re-read the TorchServe inference key from {keys}: it changed" in caplog.text
    assert "k-0ld" not in caplog.text and "k-n3w" not in caplog.text  # never the key itself
    synth.synthesize("joe", "Hi.")
    assert [r.headers["Authorization"] for r in requests] == ["Bearer k-n3w-7c21"]


@pytest.mark.parametrize("content", [None, "", '{"inference": {"ke', "[]"])
def test_a_key_file_being_rewritten_keeps_the_key_in_use(
    tmp_path: Path, content: str | None
) -> None:
    # TorchServe deletes its key file when it starts, then writes it: a re-read in between
    # (missing, empty or half-written) keeps the key in use and raises nothing.
    keys = key_file(tmp_path / "key_file.json", "old")
    synth, requests = make(token_checker("new", 400), torchserve_token="", torchserve_key_file=keys)
    keys.unlink()
    if content is not None:
        keys.write_text(content)

    assert not synth.reload_token()
    # A refused call re-reads it too: the refusal stays a refused key, never a read error.
    with pytest.raises(VoiceServerAuthError, match="TorchServe refused the token"):
        synth.synthesize("joe", "Hi.")
    assert [r.headers["Authorization"] for r in requests] == ["Bearer old", "Bearer old"]

    key_file(keys, "new")
    assert synth.reload_token()
    assert len(synth.synthesize("joe", "Hi.").samples) == len(SAMPLES)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_server_that_is_down_or_restarting_is_unavailable(status: int) -> None:
    synth, _ = make(lambda r: httpx.Response(status, json={"message": "restarting"}))
    with pytest.raises(VoiceServerUnavailable, match=rf"HTTP {status}"):
        synth.synthesize("joe", "Hi.")


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (httpx.ConnectError("connection refused"), True),
        (httpx.ConnectTimeout("connect timed out"), True),
        (httpx.ReadError("connection reset by peer"), True),
        (httpx.ReadTimeout("read timed out"), False),  # maybe this text: counted as an attempt
    ],
)
def test_connection_failures_are_outages_and_read_timeouts_attempts(
    error: Exception, outage: bool
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    synth, _ = make(fail)
    with pytest.raises(TransientSynthesisError) as info:
        synth.synthesize("joe", "Hi.")
    assert isinstance(info.value, VoiceServerUnavailable) is outage


@pytest.mark.parametrize("status", [500, 507, 429])
def test_a_failing_handler_is_transient_but_no_outage(status: int) -> None:
    synth, _ = make(lambda r: httpx.Response(status, json={"message": "boom"}))
    with pytest.raises(TransientSynthesisError) as info:
        synth.synthesize("joe", "Hi.")
    assert not isinstance(info.value, VoiceServerUnavailable)
