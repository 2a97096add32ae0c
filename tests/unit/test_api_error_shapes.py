"""Every error answer is in the shape of its path, wherever it is made (a route, an exception
handler, or a middleware refusing the request before any route runs): OpenAI's
``{"error": {"message", "type", "param", "code"}}`` next to ``detail`` under ``/v1/audio/``, and
the documented ``{"detail": ...}`` alone everywhere else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from api.main import create_app
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio

OPENAI_TYPES = {
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
}


class Voice:
    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        return Audio(np.zeros(100 * len(text), dtype=np.int16), 22050)

    def voices(self) -> list[str]:
        return ["joe"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, client_rate_per_minute=1)
    app = create_app(settings, synthesizer=Voice())  # type: ignore[arg-type]

    def boom() -> None:
        raise RuntimeError("a bug")

    for path in ("/v1/audio/boom", "/v1/boom"):
        app.add_api_route(path, boom, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def assert_shape(response: Response, code: int, *, openai: bool) -> None:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    if openai:
        assert body["error"] == {
            "message": body["detail"],
            "type": OPENAI_TYPES[code],
            "param": None,
            "code": None,
        }
    else:
        assert set(body) == {"detail"}, body


def chunks() -> Iterator[bytes]:  # no Content-Length: only counting while streaming can stop it
    for _ in range(3):
        yield b"x" * (limits.MAX_JSON_BODY_BYTES // 2)


# (the OpenAI path, another path) answering the same status for the same reason
CASES = {
    "unknown route (404)": (404, "GET", "/v1/audio/nothing", "/v1/nothing"),
    "method not allowed (405)": (405, "DELETE", "/v1/audio/speech", "/v1/projects"),
    "method of no route (405)": (405, "PUT", "/v1/audio/voices", "/v1/projects"),
    "unexpected failure (500)": (500, "GET", "/v1/audio/boom", "/v1/boom"),
}


@pytest.mark.parametrize("openai", [True, False], ids=["openai", "voxmill"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_errors_of_routes_and_handlers(client: TestClient, case: str, openai: bool) -> None:
    code, method, openai_path, other_path = CASES[case]

    response = client.request(method, openai_path if openai else other_path)

    assert_shape(response, code, openai=openai)


@pytest.mark.parametrize("streamed", [True, False], ids=["streamed", "content-length"])
@pytest.mark.parametrize("openai", [True, False], ids=["openai", "voxmill"])
def test_a_body_over_the_limit(client: TestClient, openai: bool, streamed: bool) -> None:
    path = "/v1/audio/speech" if openai else "/v1/projects/1/lexicon"
    body = chunks() if streamed else b"x" * (2 * limits.MAX_JSON_BODY_BYTES)

    response = client.post(path, content=body, headers={"Content-Type": "application/json"})

    assert_shape(response, 413, openai=openai)
    assert "over this route's limit" in response.json()["detail"]


@pytest.mark.parametrize("openai", [True, False], ids=["openai", "voxmill"])
def test_too_many_requests(client: TestClient, openai: bool) -> None:
    path = "/v1/audio/speech" if openai else "/v1/projects/1/conversions"
    body = {"input": "Hello.", "voice": "joe"} if openai else {}
    first = client.post(path, json=body)
    assert first.status_code != 429

    response = client.post(path, json=body)

    assert_shape(response, 429, openai=openai)
    assert int(response.headers["retry-after"]) >= 1
