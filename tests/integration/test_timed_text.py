"""Timings end to end on a real server (embedded mode, the joe voice): a converted document's
segments keep the times their voice measured, and chapters and projects serve them as JSON,
SubRip and WebVTT on the time line of their audio downloads (pauses included)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import srt
import webvtt
from e2e.webapp import (
    CHAPTER_PAUSE_S,
    PARAGRAPH_PAUSE_S,
    SENTENCE_PAUSE_S,
    Server,
    chapter_seconds,
    make_project,
    project_seconds,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.integration

BOOK = """# The first chapter

It was a bright cold day in April. The clocks were striking thirteen.

He walked on, quickly.

# The second chapter

Nothing happened for a while. Then the rain came.
"""


@pytest.fixture(scope="module")
def server(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("timed-text"), None)
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def book(server: Server) -> dict[str, object]:
    return make_project(server, "Timed", BOOK, fmt="markdown")


def _segments(server: Server, chapter_id: int) -> list[list[dict[str, object]]]:
    with server.api() as api:
        chapter = api.get(f"/v1/chapters/{chapter_id}").raise_for_status().json()
    return [b["segments"] for b in chapter["blocks"] if b["segments"]]


def test_each_segment_keeps_its_word_times(server: Server, book: dict[str, object]) -> None:
    chapter = book["chapters"][0]  # type: ignore[index]
    segments = [s for p in _segments(server, chapter["id"]) for s in p]
    first = next(s for s in segments if str(s["text"]).startswith("It was"))
    with server.api() as api:
        timed = api.get(f"/v1/segments/{first['id']}/timings").raise_for_status().json()
    words = timed["words"]
    assert [w["text"] for w in words] == ["It", "was", "a", "bright", "cold", "day", "in", "April"]
    edges = [t for w in words for t in (w["start_ms"], w["end_ms"])]
    assert edges == sorted(edges)
    assert edges[-1] <= first["duration_ms"]
    assert timed["sentences"][0]["text"] == "It was a bright cold day in April."


def test_chapter_subtitles_follow_the_chapter_download(
    server: Server, book: dict[str, object]
) -> None:
    chapter = book["chapters"][0]  # type: ignore[index]
    paragraphs = _segments(server, chapter["id"])
    with server.api() as api:
        answer = api.get(f"/v1/chapters/{chapter['id']}/timings", params={"format": "srt"})
        seconds = chapter_seconds(api, chapter["id"])
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/x-subrip")
    cues = list(srt.parse(answer.text))
    segments = [s for p in paragraphs for s in p]
    assert [c.content for c in cues] == [s["text"] for s in segments]
    # Each cue starts where its segment starts in the chapter file: the segments before it and
    # the pauses between them (a sentence pause inside a paragraph, a longer one between).
    expected_start = 0.0
    for n, segment in enumerate(segments):
        cue = cues[n]
        start = cue.start.total_seconds()
        assert expected_start - 0.002 <= start < expected_start + 0.3, segment["text"]
        assert cue.end.total_seconds() <= expected_start + segment["duration_ms"] / 1000 + 0.002
        expected_start += segment["duration_ms"] / 1000
        if n + 1 < len(segments):
            same_paragraph = any(segment in p and segments[n + 1] in p for p in paragraphs)
            expected_start += SENTENCE_PAUSE_S if same_paragraph else PARAGRAPH_PAUSE_S
    assert cues[-1].end.total_seconds() <= seconds + 0.002


def test_project_webvtt_includes_the_pause_between_chapters(
    server: Server, book: dict[str, object]
) -> None:
    chapters = book["chapters"]  # type: ignore[index]
    with server.api() as api:
        answer = api.get(f"/v1/projects/{book['id']}/timings", params={"format": "vtt"})
        first_chapter = chapter_seconds(api, chapters[0]["id"])
        total = project_seconds(api, int(book["id"]))  # type: ignore[arg-type]
        as_json = api.get(f"/v1/projects/{book['id']}/timings").json()
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/vtt")
    captions = webvtt.from_buffer(io.StringIO(answer.text))
    texts = [c.text for c in captions]
    opening = _segments(server, chapters[1]["id"])[0][0]  # the second chapter's heading
    second = texts.index(opening["text"])
    start = captions[second].start_time.in_milliseconds() / 1000
    chapter_two = first_chapter + CHAPTER_PAUSE_S
    assert chapter_two - 0.002 <= start < chapter_two + 0.3
    assert as_json["sentences"][-1]["end_ms"] <= total * 1000 + 2
    words = [w["text"] for w in as_json["words"]]
    assert words[-3:] == ["the", "rain", "came"]
    starts = [w["start_ms"] for w in as_json["words"]]
    assert starts == sorted(starts)


def test_timings_of_an_unconverted_project_are_a_409(server: Server) -> None:
    project = make_project(server, "Waiting", "Not spoken yet.", convert=False)
    with server.api() as api:
        answer = api.get(f"/v1/projects/{project['id']}/timings", params={"format": "srt"})
        segment = api.get(f"/v1/chapters/{project['chapters'][0]['id']}").json()
        first = segment["blocks"][0]["segments"][0]["id"]
        one = api.get(f"/v1/segments/{first}/timings")
    assert answer.status_code == 409 and "not ready" in answer.json()["detail"]
    assert one.status_code == 409
