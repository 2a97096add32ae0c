"""The hostile requests of issue 16, against the API on Postgres: each gets a 4xx in the one
error shape, never a 500 (values past a ``bigint``, NUL characters, over-long file names,
undecodable JSON, wrong types, other methods, invisible characters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from contract.settings import Settings

pytestmark = pytest.mark.integration

BIG = "9223372036854775808"  # 2**63: one past the largest bigint


@pytest.fixture
def http(
    pipeline_settings: Settings, start_api: Callable[..., Any], stub_torchserve: Any
) -> Iterator[httpx.Client]:
    settings = pipeline_settings.model_copy(update={"torchserve_url": stub_torchserve.url})
    api = start_api(settings)
    with httpx.Client(base_url=api.url, timeout=30) as client:
        yield client


def refused(response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/projects?offset={BIG}",
        f"/v1/projects/{BIG}",
        f"/v1/projects/{BIG}/audio",
        f"/v1/conversions/{BIG}",
        f"/v1/segments/{BIG}",
        f"/v1/chapters/{BIG}",
        f"/v1/projects/{BIG}/lexicon",
        "/v1/projects/0",
        "/v1/segments/-1",
    ],
)
def test_ids_and_offsets_past_a_bigint_are_refused(http: httpx.Client, path: str) -> None:
    refused(http.get(path))


def test_nul_characters_and_long_file_names_are_refused(http: httpx.Client) -> None:
    assert "NUL" in refused(http.post("/v1/projects", json={"name": "a\x00b"}))
    project = http.post("/v1/projects", json={"name": "hostile"}).json()
    url = f"/v1/projects/{project['id']}/documents"
    for name in (b"a\x00b.txt", b"x" * 300 + b".txt"):
        # Written by hand: HTTP clients escape a NUL in a file name, a hostile one does not.
        body = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
            + name
            + b'"\r\nContent-Type: text/plain\r\n\r\nHello there.\r\n--b--\r\n'
        )
        response = http.post(
            url, content=body, headers={"content-type": "multipart/form-data; boundary=b"}
        )
        assert "file name" in refused(response)
    assert http.post(url, json={"text": "Hello there."}).status_code == 201
    segment = http.get(f"/v1/projects/{project['id']}").json()["chapters"][0]
    chapter = http.get(f"/v1/chapters/{segment['id']}").json()
    segment_id = chapter["blocks"][0]["segments"][0]["id"]
    refused(http.post(f"/v1/segments/{segment_id}/resynthesize", json={"text": "a\x00b"}))
    # The project is still usable: nothing half-written.
    assert http.get(f"/v1/projects/{project['id']}").status_code == 200


def test_undecodable_json_and_loose_types_are_422(http: httpx.Client) -> None:
    detail = refused(
        http.post(
            "/v1/projects", content=b"\xff\xfe{", headers={"content-type": "application/json"}
        )
    )
    assert "JSON" in detail
    project = http.post("/v1/projects", json={"name": "types"}).json()
    refused(http.post(f"/v1/projects/{project['id']}/conversions", json={"force": 0}))


def test_allow_lists_every_method_of_a_path(http: httpx.Client) -> None:
    response = http.options("/v1/projects")
    refused(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}
    project = http.post("/v1/projects", json={"name": "allow"}).json()
    response = http.delete(f"/v1/projects/{project['id']}/lexicon/import")
    refused(response, 405)
    assert response.headers["allow"] == "POST"


def test_invisible_characters_are_shown_escaped(http: httpx.Client) -> None:
    detail = refused(http.post("/v1/projects", json={"name": "zw", "voice": "joe\u200b"}))
    assert "joe\\u200b" in detail
    assert "\u200b" not in detail


def test_a_body_over_the_json_limit_is_refused_while_streaming(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(2048):
            yield b"x" * 1024
        yield b'"}'

    response = http.post(
        "/v1/projects", content=chunks(), headers={"content-type": "application/json"}
    )
    refused(response, 413)
