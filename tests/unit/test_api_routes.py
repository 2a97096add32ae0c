"""The REST API in the embedded mode (SQLite, in-process queue and workers) with a stand-in
synthesizer: what a client sees, from project creation to downloads."""

from __future__ import annotations

import io
import re
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import delete

from api import crud
from api.db import make_engine, make_session_factory, migrate
from api.main import create_app
from api.models import OutboxMessage
from audio import codecs as audio
from contract import limits
from contract.messages import SynthesisParams
from contract.settings import Settings
from synthesis.base import Audio, EncodedAudio, PermanentSynthesisError
from text_processing.structure import split_document

RATE = 22050
BOOK = """# Chapter One

It was a bright cold day in April. The clocks were striking thirteen.

Winston slipped quickly through the glass doors.

# Chapter Two

The hallway smelt of boiled cabbage.
"""


class FakeVoice:
    """100 samples per character; refuses text containing 'POISON'."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        self.calls.append(text)
        if "POISON" in text:
            raise PermanentSynthesisError("TorchServe refused the text (HTTP 400): bad input")
        n = 100 * len(text)
        return Audio((6000 * np.sin(np.arange(n) / 9)).astype(np.int16), RATE)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        sound = self.synthesize(voice, text, params)
        data = audio.encode(sound.samples, sound.sample_rate, fmt)
        return EncodedAudio(data, fmt, sound.sample_rate, len(sound.samples))

    def voices(self) -> list[str]:
        return ["joe"]


@pytest.fixture
def voice() -> FakeVoice:
    return FakeVoice()


def make_client(tmp_path: Path, voice: FakeVoice, **settings: Any) -> TestClient:
    options: dict[str, Any] = {"data_dir": tmp_path, "outbox_poll_s": 0.05, **settings}
    return TestClient(create_app(Settings(**options), synthesizer=voice))


@pytest.fixture
def client(tmp_path: Path, voice: FakeVoice) -> Iterator[TestClient]:
    with make_client(tmp_path, voice) as c:
        yield c


def wait_finished(client: TestClient, conversion_id: int, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/v1/conversions/{conversion_id}").json()
        if body["state"] == "finished":
            return body
        assert time.monotonic() < deadline, f"conversion not finished: {body}"
        time.sleep(0.05)


def new_project(client: TestClient, text: str = BOOK, fmt: str = "markdown") -> dict[str, Any]:
    project: dict[str, Any] = client.post("/v1/projects", json={"name": "Book"}).json()
    r = client.post(f"/v1/projects/{project['id']}/documents", json={"text": text, "format": fmt})
    assert r.status_code == 201, r.text
    return project


def convert(client: TestClient, project_id: int) -> dict[str, Any]:
    r = client.post(f"/v1/projects/{project_id}/conversions")
    assert r.status_code == 202, r.text
    return wait_finished(client, r.json()["id"])


def test_project_is_created_listed_and_shown(client: TestClient) -> None:
    r = client.post("/v1/projects", json={"name": "  My book  ", "speed": 1.2})
    assert r.status_code == 201
    project = r.json()
    assert project["name"] == "My book" and project["voice"] == "joe"

    listed = client.get("/v1/projects").json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == project["id"]
    shown = client.get(f"/v1/projects/{project['id']}").json()
    assert shown["counts"]["total"] == 0 and shown["chapters"] == []


def test_unknown_voice_and_missing_things_are_clear_json_errors(client: TestClient) -> None:
    r = client.post("/v1/projects", json={"name": "x", "voice": "nobody"})
    assert r.status_code == 422
    assert r.json()["detail"] == "unknown voice 'nobody'; available voices: joe"

    for path in ("/v1/projects/999", "/v1/conversions/999", "/v1/segments/999", "/v1/chapters/9"):
        r = client.get(path)
        assert r.status_code == 404
        assert r.json()["detail"].endswith("does not exist")

    r = client.post("/v1/projects", json={"name": ""})
    assert r.status_code == 422
    assert isinstance(r.json()["detail"], str) and "name" in r.json()["detail"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_speed_that_is_not_a_finite_number_is_called_so(client: TestClient, number: str) -> None:
    headers = {"Content-Type": "application/json"}
    created = client.post(
        "/v1/projects", content=f'{{"name": "x", "speed": {number}}}', headers=headers
    )
    pid = client.post("/v1/projects", json={"name": "y"}).json()["id"]
    changed = client.patch(f"/v1/projects/{pid}", content=f'{{"speed": {number}}}', headers=headers)
    spoken = client.post(
        "/v1/audio/speech",
        content=f'{{"input": "Hi.", "voice": "joe", "speed": {number}}}',
        headers=headers,
    )

    for r in (created, changed, spoken):
        assert r.status_code == 422
        assert r.json()["detail"] == "invalid request: speed: Input should be a finite number"


def test_upload_splits_the_document_into_the_tree(client: TestClient) -> None:
    project = client.post("/v1/projects", json={"name": "Book"}).json()
    files = {"file": ("book.md", BOOK.encode(), "text/markdown")}

    r = client.post(f"/v1/projects/{project['id']}/documents", files=files)

    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["filename"] == "book.md" and doc["format"] == "markdown"
    assert [c["title"] for c in doc["chapters"]] == ["Chapter One", "Chapter Two"]
    assert doc["segments"] == 6
    chapter = client.get(f"/v1/chapters/{doc['chapters'][0]['id']}").json()
    texts = [[s["text"] for s in b["segments"]] for b in chapter["blocks"]]
    assert texts == [
        ["Chapter One"],
        ["It was a bright cold day in April.", "The clocks were striking thirteen."],
        ["Winston slipped quickly through the glass doors."],
    ]
    segment = chapter["blocks"][1]["segments"][1]
    assert BOOK[segment["source_start"] : segment["source_end"]] == segment["text"]
    assert segment["status"] == "pending"


def test_upload_limits_and_bad_input(tmp_path: Path, voice: FakeVoice) -> None:
    with make_client(tmp_path, voice, max_upload_bytes=1000, max_segments=3) as client:
        pid = client.post("/v1/projects", json={"name": "x"}).json()["id"]
        url = f"/v1/projects/{pid}/documents"

        big = client.post(url, files={"file": ("a.txt", b"word " * 300, "text/plain")})
        assert big.status_code == 413 and "over the limit of 1000 bytes" in big.json()["detail"]
        many = client.post(url, json={"text": "One. Two. Three. Four. Five."})
        assert many.status_code == 413 and "more than 3 sentences" in many.json()["detail"]
        binary = client.post(url, files={"file": ("a.txt", b"\x00\x01\x02abc", "text/plain")})
        assert binary.status_code == 415 and "binary" in binary.json()["detail"]
        wrong = client.post(url, files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")})
        assert wrong.status_code == 422 and "PDF cannot be read" in wrong.json()["detail"]
        odd = client.post(url, files={"file": ("a.odt", b"x", "application/octet-stream")})
        assert odd.status_code == 415 and "'.odt' are not supported" in odd.json()["detail"]
        form = client.post(url, content=b"text", headers={"content-type": "text/plain"})
        assert form.status_code == 415 and "multipart/form-data" in form.json()["detail"]
        empty = client.post(url, json={"text": "   \n"})
        assert empty.status_code == 422 and "no text to speak" in empty.json()["detail"]
        bad_json = client.post(url, json={"txt": "x"})
        assert bad_json.status_code == 422 and "invalid JSON body" in bad_json.json()["detail"]


def test_conversion_runs_to_done_and_downloads_have_the_right_length(client: TestClient) -> None:
    project = new_project(client)

    progress = convert(client, project["id"])

    assert (progress["total"], progress["done"], progress["failed"]) == (6, 6, 0)
    assert progress["percent"] == 100.0 and progress["eta_s"] == 0.0
    shown = client.get(f"/v1/projects/{project['id']}").json()
    assert shown["counts"] == {"pending": 0, "queued": 0, "done": 6, "failed": 0, "total": 6}
    chapter = client.get(f"/v1/chapters/{shown['chapters'][0]['id']}").json()
    lengths = [[100 * len(s["text"]) for s in b["segments"]] for b in chapter["blocks"]]

    wav = client.get(f"/v1/chapters/{chapter['id']}/audio")

    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav"
    samples, rate = audio.decode(wav.content)
    assert rate == RATE
    assert len(samples) == audio.joined_length(
        lengths,
        RATE,
        sentence_pause_ms=limits.SENTENCE_PAUSE_MS,
        paragraph_pause_ms=limits.PARAGRAPH_PAUSE_MS,
    )
    first = client.get(f"/v1/segments/{chapter['blocks'][0]['segments'][0]['id']}/audio")
    one, _ = audio.decode(first.content)
    assert np.array_equal(samples[: len(one)], one)


def test_project_download_in_every_format(client: TestClient) -> None:
    project = new_project(client)
    convert(client, project["id"])
    wav = client.get(f"/v1/projects/{project['id']}/audio")
    whole, _ = audio.decode(wav.content)

    for fmt, media in (("flac", "audio/flac"), ("mp3", "audio/mpeg"), ("ogg", "audio/ogg")):
        r = client.get(f"/v1/projects/{project['id']}/audio", params={"format": fmt})
        assert r.status_code == 200 and r.headers["content-type"] == media
        info = sf.info(io.BytesIO(r.content))
        assert abs(info.frames - len(whole)) < RATE // 10, fmt  # mp3 pads a little
    flac, _ = audio.decode(
        client.get(f"/v1/projects/{project['id']}/audio", params={"format": "flac"}).content
    )
    assert np.array_equal(flac, whole)  # lossless
    chapters = client.get(f"/v1/projects/{project['id']}").json()["chapters"]
    parts = [audio.decode(client.get(f"/v1/chapters/{c['id']}/audio").content)[0] for c in chapters]
    assert len(whole) == sum(map(len, parts)) + audio.pause_samples(1500, RATE)


def test_downloads_wait_for_every_segment(tmp_path: Path, voice: FakeVoice) -> None:
    with make_client(tmp_path, voice) as client:
        project = new_project(client, "Fine sentence. POISON sentence.", fmt="text")
        progress = convert(client, project["id"])
        assert (progress["done"], progress["failed"]) == (1, 1)

        r = client.get(f"/v1/projects/{project['id']}/audio")
        assert r.status_code == 409
        # In the page's words: the project's name, "sentences", what to do; no database ids.
        assert r.json()["detail"] == (
            "the project “Book” is not ready yet: 1 of 2 sentences have audio (1 failed); "
            "retry or fix the failed sentences"
        )
        chapter = client.get(f"/v1/projects/{project['id']}").json()["chapters"][0]
        segments = client.get(f"/v1/chapters/{chapter['id']}").json()["blocks"][0]["segments"]
        bad = segments[1]
        assert bad["status"] == "failed" and "refused the text" in bad["last_error"]
        assert client.get(f"/v1/segments/{bad['id']}/audio").status_code == 409

        # Fix the text and synthesize again: the download becomes available.
        r = client.patch(
            f"/v1/segments/{bad['id']}/resynthesize", json={"text": "  Healthy   sentence. "}
        )
        assert r.status_code == 202, r.text
        assert r.json()["segment"]["text"] == "Healthy sentence."
        assert r.json()["segment"]["status"] == "queued"
        wait_finished(client, r.json()["conversion"]["id"])
        assert client.get(f"/v1/projects/{project['id']}/audio").status_code == 200
        assert voice.calls[-1] == "Healthy sentence."


def test_second_conversion_only_converts_what_is_not_done(
    client: TestClient, voice: FakeVoice
) -> None:
    project = new_project(client)
    convert(client, project["id"])
    calls = len(voice.calls)

    again = convert(client, project["id"])

    assert again["total"] == 0 and again["state"] == "finished"
    assert len(voice.calls) == calls
    seg = client.get("/v1/segments/1").json()
    r = client.post(f"/v1/segments/{seg['id']}/resynthesize")
    assert r.status_code == 202
    wait_finished(client, r.json()["conversion"]["id"])
    assert voice.calls[-1] == seg["text"]
    assert client.get("/v1/segments/1").json()["attempts"] == 2


def test_api_keys_protect_v1_but_not_probes(tmp_path: Path, voice: FakeVoice) -> None:
    with make_client(tmp_path, voice, api_keys=["k1"]) as client:
        r = client.get("/v1/projects")
        assert r.status_code == 401 and "missing API key" in r.json()["detail"]
        ok = client.get("/v1/projects", headers={"Authorization": "Bearer k1"})
        assert ok.status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").json() == {"status": "ready"}


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    for path in (
        "/v1/projects",
        "/v1/projects/{project_id}",
        "/v1/projects/{project_id}/documents",
        "/v1/projects/{project_id}/conversions",
        "/v1/projects/{project_id}/events",
        "/v1/projects/{project_id}/audio",
        "/v1/conversions/{conversion_id}",
        "/v1/segments/{segment_id}/audio",
        "/v1/segments/{segment_id}/resynthesize",
        "/v1/chapters/{chapter_id}/audio",
    ):
        assert path in paths, path
    upload = paths["/v1/projects/{project_id}/documents"]["post"]["requestBody"]["content"]
    assert set(upload) == {"multipart/form-data", "application/json"}
    assert "ConversionOut" in str(paths["/v1/conversions/{conversion_id}"]["get"]["responses"])


def test_embedded_restart_requeues_tasks_lost_with_the_process(
    tmp_path: Path, voice: FakeVoice
) -> None:
    # The state a previous embedded process leaves when it ends mid-conversion: segments queued,
    # their tasks published (outbox empty) into an in-memory queue that died with it.
    url = Settings(data_dir=tmp_path).effective_database_url()
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory.begin() as session:
        project = crud.create_project(session, name="p", voice="joe")
        crud.add_document(
            session,
            project=project,
            text=BOOK,
            fmt="markdown",
            filename=None,
            chapters=split_document(BOOK, fmt="markdown"),
        )
        conversion_id = crud.start_conversion(session, project=project).id
        session.execute(delete(OutboxMessage))
    engine.dispose()

    with make_client(tmp_path, voice) as client:
        assert wait_finished(client, conversion_id)["done"] == 6


def test_every_v1_route_answers_401_without_a_key(tmp_path: Path, voice: FakeVoice) -> None:
    with make_client(tmp_path, voice, api_keys=["k1"]) as client:
        paths = client.get("/openapi.json").json()["paths"]
        routes = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1") for m in ops]
        assert len(routes) >= 15, routes
        for method, template in routes:
            path = re.sub(r"\{[^}]+\}", "1", template)
            answer = client.request(method, path)
            assert answer.status_code == 401, (method, template, answer.status_code)
            assert answer.headers["www-authenticate"] == "Bearer"


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG whose header claims ``width`` × ``height`` (its data is one row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    pixels = zlib.compress(b"\x00" + b"\x00" * width)[:64]
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def image_file(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), "teal").save(out, fmt)
    return out.getvalue()


def noise_png(megabytes: float) -> bytes:
    """A PNG of random pixels, about ``megabytes`` large (noise does not compress)."""
    side = int((megabytes * 2**20 / 3) ** 0.5)
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    assert len(out.getvalue()) > megabytes * 2**20 * 0.9
    return out.getvalue()


@pytest.mark.parametrize(
    ("body", "kind", "code", "message"),
    [
        (image_file("PNG"), "image/png", 204, None),
        (image_file("JPEG"), "image/jpeg", 204, None),
        (noise_png(3), "image/png", 204, None),  # under MAX_COVER_BYTES, over the JSON limit
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "image/png", 415, "not a readable PNG image"),
        (b"\xff\xd8\xff" + b"garbage" * 20, "image/jpeg", 415, "not a readable JPEG image"),
        (image_file("JPEG"), "image/png", 415, "not a readable PNG image"),
        (image_file("PNG")[:60], "image/png", 415, "not a readable PNG image"),  # truncated
        (png_claiming(100_000, 100_000), "image/png", 413, "over 25,000,000 pixels"),
        (png_claiming(5001, 5000), "image/png", 413, "over 25,000,000 pixels"),
    ],
)
def test_a_cover_must_decode_and_stay_under_the_pixel_limit(
    client: TestClient, body: bytes, kind: str, code: int, message: str | None
) -> None:
    pid = client.post("/v1/projects", json={"name": "Book"}).json()["id"]

    r = client.put(f"/v1/projects/{pid}/cover", content=body, headers={"Content-Type": kind})

    assert r.status_code == code, r.text
    book = client.get(f"/v1/projects/{pid}/book").json()
    assert book["has_cover"] is (code == 204), "a refused cover is not stored"
    if message:
        assert message in r.json()["detail"]
