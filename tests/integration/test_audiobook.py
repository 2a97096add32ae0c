"""Audiobook outputs on a real server (embedded mode, the joe voice): an M4B whose chapter list
(read by FFmpeg's libavformat, as ffprobe prints it) has every chapter with its title and start,
title/author/cover tags; a ZIP of tagged, numbered chapter files at ACX loudness; and chapter
downloads mastered to each preset, measured with pyloudnorm."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyloudnorm
import pytest
from e2e.webapp import (
    CHAPTER_PAUSE_S,
    Server,
    chapter_seconds,
    make_project,
    start_server,
    stop_server,
)
from PIL import Image

from audio import codecs
from audio.mastering import PRESETS, true_peak

pytestmark = pytest.mark.integration

BOOK = """# Departure

The train left at dawn. Nobody waved.

# The Long Road

Fields went by for hours. A dog barked once, far away.

# Arrival

The station was empty, and the clock had stopped.
"""
TITLES = ["Departure", "The Long Road", "Arrival"]


def _png(width: int = 8, height: int = 8) -> bytes:
    """A real PNG (covers must decode): a small red square, written by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


COVER = _png()


@pytest.fixture(scope="module")
def server(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("audiobook"), None)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def book(server: Server) -> dict[str, Any]:
    project = make_project(server, "The Journey", BOOK, fmt="markdown")
    with server.api() as api:
        api.put(
            f"/v1/projects/{project['id']}/book", json={"author": "A. Writer"}
        ).raise_for_status()
        api.put(
            f"/v1/projects/{project['id']}/cover",
            content=COVER,
            headers={"Content-Type": "image/png"},
        ).raise_for_status()
    return project


def export(server: Server, project_id: int, body: dict[str, object]) -> tuple[bytes, list[Any]]:
    """Start an export, follow its progress to the end, download it."""
    seen: list[Any] = []
    with server.api() as api:
        job = api.post(f"/v1/projects/{project_id}/exports", json=body)
        assert job.status_code == 202, job.text
        state = job.json()
        deadline = time.monotonic() + 120
        while state["state"] == "running":
            assert time.monotonic() < deadline, state
            seen.append(state["chapters_done"])
            time.sleep(0.2)
            state = api.get(f"/v1/exports/{state['id']}").json()
        assert state["state"] == "done", state
        assert state["chapters_done"] == state["chapters_total"] == len(TITLES)
        data = api.get(state["download_url"]).raise_for_status().content
    return data, seen


def test_m4b_lists_every_chapter_with_its_title_and_start(
    server: Server, book: dict[str, Any], tmp_path: Path
) -> None:
    data, progress = export(server, book["id"], {"kind": "m4b"})
    path = tmp_path / "book.m4b"
    path.write_bytes(data)
    with server.api() as api:
        lengths = [chapter_seconds(api, c["id"]) for c in book["chapters"]]

    with av.open(str(path)) as container:
        chapters = container.chapters()
        tags = container.metadata
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        decoded = (
            sum(f.samples for f in container.decode(stream)) / stream.codec_context.sample_rate
        )
    assert [c["metadata"]["title"] for c in chapters] == TITLES
    expected_start = 0.0
    for chapter, length in zip(chapters, lengths, strict=True):
        start = float(chapter["start"] * chapter["time_base"])
        assert abs(start - expected_start) < 0.01, (chapter, expected_start)
        expected_start += length + CHAPTER_PAUSE_S
    total = sum(lengths) + CHAPTER_PAUSE_S * (len(lengths) - 1)
    assert abs(decoded - total) < 0.1
    assert tags["title"] == "The Journey" and tags["artist"] == "A. Writer"

    from mutagen.mp4 import MP4

    cover = MP4(str(path)).tags["covr"][0]  # type: ignore[index]
    assert bytes(cover) == COVER
    assert progress == sorted(progress), "progress only moves forward"


def test_zip_has_one_tagged_acx_mp3_per_chapter(server: Server, book: dict[str, Any]) -> None:
    data, _ = export(server, book["id"], {"kind": "zip", "format": "mp3", "mastering": "acx"})

    from mutagen.id3 import ID3
    from mutagen.mp3 import MP3

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert names == ["1 Departure.mp3", "2 The Long Road.mp3", "3 Arrival.mp3"]
        for n, name in enumerate(names, start=1):
            mp3 = archive.read(name)
            tags = ID3(io.BytesIO(mp3))
            assert str(tags["TIT2"]) == TITLES[n - 1]
            assert str(tags["TRCK"]) == f"{n}/3"
            assert str(tags["TALB"]) == "The Journey" and str(tags["TPE1"]) == "A. Writer"
            assert tags.getall("APIC")[0].data == COVER
            info = MP3(io.BytesIO(mp3)).info
            assert info.sample_rate == 44100 and info.bitrate == 192_000
            samples, _ = codecs.decode(mp3)
            x = samples.astype(np.float64) / 32768
            rms = 20 * np.log10(np.sqrt(np.mean(x**2)))
            assert -23.0 <= rms <= -18.0, (name, rms)
            assert 20 * np.log10(np.abs(x).max()) <= -3.0


@pytest.mark.parametrize("name", ["podcast", "broadcast"])
def test_mastered_chapter_downloads_meet_their_preset(
    server: Server, book: dict[str, Any], name: str
) -> None:
    chapter = book["chapters"][1]
    with server.api() as api:
        answer = api.get(
            f"/v1/chapters/{chapter['id']}/audio", params={"format": "flac", "mastering": name}
        )
    assert answer.status_code == 200
    samples, rate = codecs.decode(answer.content)
    x = samples.astype(np.float64) / 32768
    target = PRESETS[name]
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(x) - target.target) <= 1.0
    assert 20 * np.log10(true_peak(x)) <= target.ceiling_db


def test_the_project_default_preset_applies_until_turned_off(
    server: Server, book: dict[str, Any]
) -> None:
    chapter = book["chapters"][0]
    with server.api() as api:
        api.put(
            f"/v1/projects/{book['id']}/book", json={"author": "A. Writer", "mastering": "podcast"}
        ).raise_for_status()
        default = api.get(f"/v1/chapters/{chapter['id']}/audio", params={"format": "wav"})
        off = api.get(
            f"/v1/chapters/{chapter['id']}/audio", params={"format": "wav", "mastering": "none"}
        )
        api.put(f"/v1/projects/{book['id']}/book", json={"author": "A. Writer"}).raise_for_status()
    loud, rate = codecs.decode(default.content)
    plain, _ = codecs.decode(off.content)
    meter = pyloudnorm.Meter(rate)
    assert abs(meter.integrated_loudness(loud / 32768) - (-16.0)) <= 1.0
    assert abs(meter.integrated_loudness(plain / 32768) - (-16.0)) > 1.0


def test_bad_book_requests_are_refused_with_the_reason(
    server: Server, book: dict[str, Any]
) -> None:
    waiting = make_project(server, "Unspoken", "Not yet.", convert=False)
    with server.api() as api:
        early = api.post(f"/v1/projects/{waiting['id']}/exports", json={"kind": "m4b"})
        wrong = api.put(
            f"/v1/projects/{book['id']}/cover",
            content=b"GIF89a",
            headers={"Content-Type": "image/gif"},
        )
        fake = api.put(
            f"/v1/projects/{book['id']}/cover",
            content=b"not a png",
            headers={"Content-Type": "image/png"},
        )
        preset_typo = api.post(
            f"/v1/projects/{book['id']}/exports", json={"kind": "m4b", "mastering": "loud"}
        )
        missing = api.get("/v1/exports/nope")
    assert early.status_code == 409 and "not ready" in early.json()["detail"]
    assert wrong.status_code == 415 and "image/jpeg or image/png" in wrong.json()["detail"]
    assert fake.status_code == 415
    assert preset_typo.status_code == 422
    assert missing.status_code == 404


def test_the_whole_project_download_is_mastered_chapter_by_chapter(
    server: Server, book: dict[str, Any]
) -> None:
    with server.api() as api:
        answer = api.get(
            f"/v1/projects/{book['id']}/audio", params={"format": "flac", "mastering": "broadcast"}
        )
        total = sum(chapter_seconds(api, c["id"]) for c in book["chapters"])
    assert answer.status_code == 200
    samples, rate = codecs.decode(answer.content)
    x = samples.astype(np.float64) / 32768
    assert abs(len(x) / rate - (total + CHAPTER_PAUSE_S * (len(TITLES) - 1))) < 0.01
    assert abs(pyloudnorm.Meter(rate).integrated_loudness(x) - PRESETS["broadcast"].target) <= 1.0
    assert 20 * np.log10(true_peak(x)) <= PRESETS["broadcast"].ceiling_db
