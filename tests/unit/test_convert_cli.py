"""``voxmill convert`` over real HTTP against a stand-in API (the endpoint shapes of api/), and
once end to end through the real embedded app and voice."""

from __future__ import annotations

import asyncio
import io
import json
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from cli import convert
from cli.convert import cli
from cli.main import main as voxmill_main
from cli.progress import ConversionProgress
from cli.servers import serving

AUDIO = b"RIFF fake audio bytes"


@dataclass
class FakeApi:
    """The REST shapes ``voxmill convert`` uses; conversions advance one sentence per poll."""

    total: int = 3
    failed: int = 0
    finishes: bool = True
    key: str | None = None
    calls: list[str] = field(default_factory=list)
    project: dict[str, Any] = field(default_factory=dict)
    upload: dict[str, Any] = field(default_factory=dict)
    audio_format: str | None = None
    polls: int = 0
    refuse_upload: bool = False
    """Answer the document upload 422, as the API does for a document it cannot read."""
    deleted: list[int] = field(default_factory=list)
    events: bool = False
    """Serve ``GET /v1/projects/7/events``: a snapshot, then one ``segment`` event per sentence."""

    def status(self, stored: int | None = None) -> dict[str, Any]:
        finished = min(self.polls if stored is None else stored, self.total)
        finished = finished if self.finishes else 0
        failed = max(0, finished - (self.total - self.failed))
        percent = round(100 * finished / self.total, 1)
        return {
            "id": 5,
            "project_id": 7,
            "state": "finished" if finished == self.total else "running",
            "total": self.total,
            "done": finished - failed,
            "failed": failed,
            "queued": self.total - finished,
            "percent": percent,
            "eta_s": None if not finished else 1.5 * (self.total - finished),
        }

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Response:
            self.calls.append(f"{request.method} {request.url.path}")
            presented = request.headers.get("authorization")
            if (
                self.key
                and request.url.path.startswith("/v1")
                and presented != f"Bearer {self.key}"
            ):
                return JSONResponse({"detail": "invalid API key"}, status_code=401)
            return await call_next(request)

        @app.get("/healthz")
        def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.post("/v1/projects", status_code=201)
        def create_project(body: dict[str, Any]) -> dict[str, Any]:
            if body.get("voice") == "nobody":
                raise HTTPException(422, "unknown voice 'nobody'; available voices: joe")
            self.project = body
            return {"id": 7, **body}

        @app.post("/v1/projects/7/documents", status_code=201)
        async def add_document(request: Request) -> dict[str, Any]:
            async with request.form() as form:
                upload = form["file"]
                assert not isinstance(upload, str)
                self.upload = {"filename": upload.filename, "data": await upload.read()}
            if self.refuse_upload:
                raise HTTPException(422, "the document nests 20 levels deep; at most 16 are read")
            return {"id": 1, "project_id": 7, "segments": self.total}

        @app.delete("/v1/projects/7", status_code=204)
        def delete_project() -> Response:
            self.deleted.append(7)
            return Response(status_code=204)

        @app.post("/v1/projects/7/conversions", status_code=202)
        def start() -> dict[str, Any]:
            return self.status()

        @app.get("/v1/conversions/5")
        def poll() -> dict[str, Any]:
            self.polls += 1
            # With live events the first read (after subscribing) sees nothing stored yet.
            return self.status(0 if self.events else None)

        @app.get("/v1/projects/7/events", response_model=None)
        def events() -> Response:
            if not self.events:
                raise HTTPException(404, "Not Found")

            async def stream() -> AsyncIterator[dict[str, str]]:
                yield {"event": "snapshot", "data": json.dumps({"id": 7})}
                for stored in range(1, self.total + 1):
                    await asyncio.sleep(0.01)
                    segment = {"segment_id": stored, "status": "done"}
                    segment["conversion"] = self.status(stored)
                    yield {"event": "segment", "data": json.dumps(segment)}
                await asyncio.sleep(3600)  # the stream stays open, as the real one does

            return EventSourceResponse(stream())

        @app.get("/v1/projects/7")
        def project() -> dict[str, Any]:
            return {
                "id": 7,
                "chapters": [
                    {"id": 8, "counts": {"failed": 0}},
                    {"id": 9, "counts": {"failed": self.failed}},
                ],
            }

        @app.get("/v1/chapters/9")
        def chapter() -> dict[str, Any]:
            segments = [
                {"id": 11, "status": "done", "last_error": None},
                {"id": 12, "status": "failed", "last_error": "TorchServe refused the text"},
            ]
            return {"id": 9, "blocks": [{"id": 1, "segments": segments}]}

        @app.get("/v1/projects/7/audio")
        def audio(format: str = "wav") -> Response:
            self.audio_format = format
            return Response(AUDIO, media_type="application/octet-stream")

        return app


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def url(api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(convert, "POLL_S", 0.01)
    monkeypatch.delenv("VOXMILL_API_URL", raising=False)
    monkeypatch.delenv("VOXMILL_API_KEY", raising=False)
    with serving(api.app()) as base:
        yield base


@pytest.fixture
def book(tmp_path: Path) -> Path:
    path = tmp_path / "book.md"
    path.write_text("# One\n\nHello there. How are you?\n\nFine.\n")
    return path


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_converts_through_the_api(
    api: FakeApi, url: str, book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "book.wav"

    assert cli([str(book), "--voice", "joe", "-o", str(out), "--api-url", url]) == 0

    assert out.read_bytes() == AUDIO
    assert api.project == {"name": "book.md", "voice": "joe"}
    assert api.upload == {"filename": "book.md", "data": book.read_bytes()}
    assert api.audio_format == "wav"
    assert api.polls == 3
    err = capsys.readouterr().err
    assert "\r" not in err, "no progress bar when stderr is not a terminal"
    assert err.startswith(f"wrote {out}: 3 sentences, {len(AUDIO)} bytes")
    assert set(tmp_path.iterdir()) == {book, out}, "no partial download left behind"


def test_the_end_of_the_conversion_is_seen_on_live_events_without_polling(
    api: FakeApi, url: str, book: Path, tmp_path: Path
) -> None:
    api.events = True  # and polls never see progress: polling would run into the timeout
    out = tmp_path / "book.wav"

    assert cli([str(book), "-o", str(out), "--api-url", url, "--timeout", "60"]) == 0

    assert out.read_bytes() == AUDIO
    assert api.polls == 1, "one status read once subscribed, then only events"


def test_format_from_the_output_name_or_the_flag(
    api: FakeApi, url: str, book: Path, tmp_path: Path
) -> None:
    assert cli([str(book), "-o", str(tmp_path / "a.mp3"), "--api-url", url]) == 0
    assert api.audio_format == "mp3"
    assert "voice" not in api.project, "no --voice: the server's default voice"

    assert cli([str(book), "-o", str(tmp_path / "b"), "--format", "flac", "--api-url", url]) == 0
    assert api.audio_format == "flac"


def test_output_defaults_to_the_document_name(api: FakeApi, url: str, book: Path) -> None:
    assert cli([str(book), "--api-url", url, "--name", "My book"]) == 0

    assert book.with_suffix(".wav").read_bytes() == AUDIO
    assert api.project == {"name": "My book"}


def test_failed_sentences_fail_the_command_with_the_first_error(
    api: FakeApi, url: str, book: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.total, api.failed = 5, 2
    out = tmp_path / "book.wav"

    assert cli([str(book), "-o", str(out), "--api-url", url]) == 1

    assert error_line(capsys) == (
        "voxmill convert: error: 2 of 5 sentences failed to synthesize (project 7); "
        "first error: sentence 12: TorchServe refused the text"
    )
    assert not out.exists()
    assert api.audio_format is None


def test_the_api_url_can_come_from_the_environment(
    api: FakeApi, url: str, book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOXMILL_API_URL", url)

    assert cli([str(book), "-o", str(tmp_path / "x.ogg")]) == 0
    assert api.audio_format == "ogg"


def test_the_api_key_goes_in_the_authorization_header(
    api: FakeApi,
    url: str,
    book: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.key = "s3cret-key"
    out = tmp_path / "book.wav"

    assert cli([str(book), "-o", str(out), "--api-url", url]) == 1
    assert "refused the key (HTTP 401): set VOXMILL_API_KEY or --api-key" in error_line(capsys)

    monkeypatch.setenv("VOXMILL_API_KEY", "s3cret-key")
    assert cli([str(book), "-o", str(out), "--api-url", url]) == 0
    monkeypatch.delenv("VOXMILL_API_KEY")
    assert cli([str(book), "-o", str(out), "--api-url", url, "--api-key", "s3cret-key"]) == 0


def test_an_api_error_is_reported_with_its_detail(
    url: str, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli([str(book), "--voice", "nobody", "--api-url", url]) == 1

    assert error_line(capsys) == (
        "voxmill convert: error: creating the project: HTTP 422: "
        "unknown voice 'nobody'; available voices: joe"
    )


def test_a_refused_upload_deletes_the_project_made_for_it(
    api: FakeApi, url: str, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.refuse_upload = True

    assert cli([str(book), "--api-url", url]) == 1

    assert error_line(capsys) == (
        "voxmill convert: error: uploading book.md: HTTP 422: "
        "the document nests 20 levels deep; at most 16 are read"
    )
    assert api.deleted == [7], "no empty project is left on the server"
    assert "POST /v1/projects/7/conversions" not in api.calls


def test_a_conversion_that_does_not_finish_in_time(
    api: FakeApi, url: str, book: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.finishes = False

    assert cli([str(book), "--api-url", url, "--timeout", "0.2"]) == 1

    assert "did not finish within 0.2 s" in error_line(capsys)


def test_no_api_at_the_url(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with serving(FastAPI()) as base:
        pass  # a port that just stopped listening

    assert cli([str(book), "--api-url", base]) == 1
    assert error_line(capsys).startswith(
        f"voxmill convert: error: no Voxmill API answers at {base}"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"   \n\n  ", "holds only blank space"),
        (b"PK\x03\x04\x00\x00binary\x00", "content is a ZIP archive, a binary file"),
        (b"caf\xe9 au lait", "not valid UTF-8"),
    ],
)
def test_unusable_documents_fail_before_any_request(
    api: FakeApi,
    url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    message: str,
) -> None:
    document = tmp_path / "doc.txt"
    if content is not None:
        document.write_bytes(content)

    assert cli([str(document), "--api-url", url]) == 1

    line = error_line(capsys)
    assert line.startswith(f"voxmill convert: error: {document}")
    assert message in line
    assert api.calls == []


def test_unsupported_document_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "book.odt"
    document.write_bytes(b"PK\x03\x04 an OpenDocument file")

    assert cli([str(document), "--api-url", "http://127.0.0.1:9"]) == 1
    assert "'.odt' are not supported" in error_line(capsys)
    damaged = tmp_path / "book.pdf"
    damaged.write_bytes(b"%PDF-1.7 text")
    assert cli([str(damaged), "--api-url", "http://127.0.0.1:9"]) == 1
    assert "the PDF cannot be read" in error_line(capsys)


def test_unknown_output_suffix(book: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([str(book), "-o", "book.aac", "--api-url", "http://127.0.0.1:9"]) == 1
    assert "cannot tell the audio format from 'book.aac'" in error_line(capsys)


def test_voxmill_convert_delegates_here(api: FakeApi, url: str, book: Path) -> None:
    assert voxmill_main(["convert", str(book), "--api-url", url]) == 0
    assert book.with_suffix(".wav").read_bytes() == AUDIO


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    stream = Terminal()
    bar = ConversionProgress(stream, "book.md")

    bar.update({"total": 200, "done": 48, "failed": 2, "percent": 25.0, "eta_s": 95})
    bar.update({"total": 200, "done": 198, "failed": 2, "percent": 100.0, "eta_s": 0})
    bar.close()

    frames = [f.rstrip() for f in stream.getvalue().split("\r")[1:]]
    assert frames[0] == (
        "book.md [######                  ]  25.0% 50/200 sentences, 2 failed, 1:35 left"
    )
    assert frames[-1].startswith("book.md [########################] 100.0% 200/200 sentences")
    assert "left" not in frames[-1]
    assert stream.getvalue().endswith("\n")


def test_no_progress_bar_off_a_terminal() -> None:
    stream = io.StringIO()
    bar = ConversionProgress(stream, "book.md")
    bar.update({"total": 2, "done": 1, "failed": 0, "percent": 50.0})
    bar.close()

    assert stream.getvalue() == ""


@pytest.mark.integration
def test_embedded_conversion_with_the_real_voice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contract.settings import get_settings

    joe_mar = Path(__file__).resolve().parents[2] / "model-store" / "joe.mar"
    if not joe_mar.is_file():  # `make unit` does not build it; `make test` does
        pytest.skip("model-store/joe.mar is not built: run 'make mar'")

    for name in ("VOXMILL_API_URL", "VOXMILL_API_KEY", "VOXMILL_MODE", "VOXMILL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VOXMILL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("VOXMILL_MODEL_STORE", str(joe_mar.parent))
    get_settings.cache_clear()
    document = tmp_path / "story.md"
    document.write_text("# A story\n\nThe cat sat on the mat. It was warm.\n\nThen it slept.\n")
    out = tmp_path / "story.wav"
    try:
        assert cli([str(document), "-o", str(out)]) == 0
    finally:
        get_settings.cache_clear()

    with wave.open(str(out)) as audio:
        seconds = audio.getnframes() / audio.getframerate()
    # Three short sentences with pauses: a few seconds of speech.
    assert 2.0 < seconds < 15.0, seconds
