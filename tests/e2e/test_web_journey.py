"""The main journey in a browser: upload a Markdown file, convert it while the progress bar moves
live, listen to a sentence and a chapter, fix a sentence, download the chapter and the project."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from playwright.sync_api import expect
from webapp import Server, chapter_seconds, make_project, project_seconds, wait_for_conversion

pytestmark = pytest.mark.e2e

STORY = """# The harbour

The boat left early. Gulls followed it.

The sea was calm.

# The return

Night fell. They came home.
"""

# Records every value the progress bar and its text take, from the page itself.
WATCH_PROGRESS = """() => {
  window.__progress = [];
  window.__progressTexts = [];
  const bar = document.querySelector('progress[aria-label="Conversion progress"]');
  const text = document.querySelector('.progress-text');
  new MutationObserver(() => {
    window.__progress.push(Number(bar.dataset.percent));
    window.__progressTexts.push(text.textContent);
  }).observe(document.querySelector('main'), {subtree: true, attributes: true, childList: true,
                                             characterData: true});
}"""


def _audio_duration(page: Any, selector: str) -> float:
    """Wait until the <audio> at ``selector`` knows its duration; return it in seconds."""
    handle = page.wait_for_function(
        """sel => { const a = document.querySelector(sel);
                    return a && Number.isFinite(a.duration) && a.duration > 0 && a.duration; }""",
        arg=selector,
    )
    return float(handle.json_value())


def test_upload_convert_listen_fix_download(server: Server, open_tab: Any, tmp_path: Path) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    page.evaluate("window.__marker = 'same page'")

    # New project from an uploaded Markdown file.
    story = tmp_path / "story.md"
    story.write_text(STORY)
    form = page.get_by_role("form", name="New project")
    form.get_by_label("Name").fill("The harbour book")
    form.get_by_label("Voice").select_option("joe")
    form.get_by_label("Upload a file").check()
    form.get_by_label("File (text, Markdown, EPUB, Word, HTML or PDF)").set_input_files(story)
    tab.shot("01-new-project-form")
    form.get_by_role("button", name="Create project").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("The harbour book")
    project_id = int(page.url.rsplit("/", 1)[1])
    harbour = page.get_by_role("region", name="The harbour")
    ret = page.get_by_role("region", name="The return")
    expect(harbour.locator("li.seg")).to_have_count(4)  # the heading is spoken too
    expect(ret.locator("li.seg")).to_have_count(3)
    expect(harbour.locator("li.seg").first).to_contain_text("Not converted")
    tab.shot("02-project-before-convert")

    # Convert: the bar reaches 100 % through live events, without reloading the page.
    page.evaluate(WATCH_PROGRESS)
    page.get_by_role("button", name="Convert").click()
    expect(page.locator(".progress-text")).to_contain_text("Converting")
    tab.shot("03-project-converting")
    bar = page.get_by_role("progressbar", name="Conversion progress")
    expect(bar).to_have_attribute("data-percent", "100", timeout=120_000)
    expect(page.locator(".progress-text")).to_contain_text("Conversion finished: 7 of 7")
    expect(page.locator('li.seg[data-status="done"]')).to_have_count(7)
    # Read at once, with no waiting: the summary and chapter counts follow the same events as
    # the sentence rows, not a later refresh.
    assert page.locator(".counts-text").inner_text() == "All sentences: 7 done"
    assert page.locator(".chapter-counts").all_inner_texts() == ["4 of 4 done", "3 of 3 done"]
    seen = page.evaluate("window.__progress")
    assert any(0 < p < 100 for p in seen), f"no intermediate progress was shown: {seen}"
    texts = page.evaluate("window.__progressTexts")
    assert any(" left" in t for t in texts), f"no time-left estimate was shown: {set(texts)}"
    assert page.evaluate("window.__marker") == "same page"
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    tab.shot("04-project-converted")

    with server.api() as api:
        chapters = api.get(f"/v1/projects/{project_id}").json()["chapters"]
        harbour_id = chapters[0]["id"]
        first = api.get(f"/v1/chapters/{harbour_id}").json()
        gulls = first["blocks"][1]["segments"][1]
        assert gulls["text"] == "Gulls followed it."

        # Listen to one sentence, in the page's one player; its row is the one highlighted.
        row = harbour.locator(f'li[data-segment-id="{gulls["id"]}"]')
        row.get_by_role("button", name="Play sentence 3").click()
        played = _audio_duration(page, ".player-bar audio")
        assert played == pytest.approx(gulls["duration_ms"] / 1000, abs=0.05)
        expect(row).to_have_attribute("aria-current", "true")

        # Listen to the whole chapter: it starts at its first sentence, the sentence stops.
        harbour.get_by_role("button", name="Play chapter: The harbour").click()
        expect(harbour.locator("li.seg").first).to_have_attribute("aria-current", "true")
        expect(row).not_to_have_attribute("aria-current", "true")
        tab.shot("05-playing")

        # Fix a sentence: only that one is synthesized again.
        row.get_by_role("button", name="Edit sentence 3").click()
        editor = row.get_by_label("Corrected text for sentence 3")
        expect(editor).to_have_value("Gulls followed it.")
        editor.fill("A flock of white gulls followed the little boat out of the harbour.")
        tab.shot("06-editing")
        # The URLs of the old take, taken before the fix: the chapter still playing may reach this
        # sentence after the new take is done and rightly fetch it, before the test plays it.
        sentence_urls = [u for u in tab.urls() if f"/v1/segments/{gulls['id']}/audio" in u]
        row.get_by_role("button", name="Re-synthesize").click()
        # The new text shows once the server took it (queued); then the live event says done.
        expect(row.locator(".seg-text")).to_have_text(
            "A flock of white gulls followed the little boat out of the harbour."
        )
        expect(row).to_have_attribute("data-status", "done", timeout=60_000)
        after_fix = api.get(f"/v1/segments/{gulls['id']}").json()
        assert after_fix["attempts"] == gulls["attempts"] + 1
        assert after_fix["duration_ms"] > gulls["duration_ms"]
        others = [
            s
            for b in api.get(f"/v1/chapters/{harbour_id}").json()["blocks"]
            for s in b["segments"]
            if s["id"] != gulls["id"]
        ]
        assert all(s["attempts"] == 1 for s in others), "other sentences were re-synthesized"

        # Played again, the sentence is the new take (a new URL, the new length).
        row.get_by_role("button", name="Play sentence 3").click()
        expect(row).to_have_attribute("aria-current", "true")
        # The chapter that was playing stops; the player's audio becomes the new take.
        page.wait_for_function(
            "([sel, want]) => { const a = document.querySelector(sel);"
            " return a && a.duration > 0 && Math.abs(a.duration - want) < 0.05; }",
            arg=[".player-bar audio", after_fix["duration_ms"] / 1000],
        )
        assert abs(after_fix["duration_ms"] / 1000 - played) > 0.2
        new_urls = [u for u in tab.urls() if f"/v1/segments/{gulls['id']}/audio" in u]
        assert new_urls[-1] not in sentence_urls, "the sentence audio URL was not cache-busted"
        expected = chapter_seconds(api, harbour_id)
        tab.shot("07-fixed")

        # Download the chapter (FLAC) and the whole project (MP3).
        harbour.get_by_label("Format").select_option("flac")
        with page.expect_download() as download:
            harbour.get_by_role("button", name="Download chapter: The harbour").click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.suffix == ".flac"
        info = sf.info(str(saved))
        assert info.format == "FLAC"
        assert info.duration == pytest.approx(expected, abs=0.02)
        expect(harbour.locator(".chapter-body > .status-line")).to_contain_text("Downloaded")

        page.get_by_label("Format").first.select_option("mp3")
        with page.expect_download() as download:
            page.get_by_role("button", name="Download project").click()
        data = Path(download.value.path()).read_bytes()
        info = sf.info(io.BytesIO(data))
        assert info.format == "MP3"
        assert info.duration == pytest.approx(project_seconds(api, project_id), abs=0.2)

    # Back to the list: the project is there, done.
    page.get_by_role("link", name="← Projects").click()
    item = page.locator(f'li[data-project-id="{project_id}"]')
    expect(item.locator(".pill")).to_have_text("Done")
    expect(item.get_by_role("progressbar")).to_have_attribute("value", "100")
    assert page.evaluate("window.__marker") == "same page"
    tab.shot("08-projects")


def test_live_updates_catch_up_after_a_lost_connection(server: Server, open_tab: Any) -> None:
    project = make_project(server, "Reconnecting", "One line. Two lines.", convert=False)
    tab = open_tab(server)
    page = tab.page
    stream = {"allowed": False, "refused": 0}

    def events(route: Any) -> None:
        if stream["allowed"]:
            route.continue_()
        else:
            stream["refused"] += 1
            route.abort("connectionreset")

    page.route(re.compile(r"/v1/projects/\d+/events$"), events)
    tab.open(f"#/projects/{project['id']}")
    page.evaluate("window.__marker = 'same page'")
    expect(page.locator(".live")).to_contain_text("reconnecting")
    tab.shot("09-reconnecting")

    # While the page has no live connection, the whole conversion happens.
    with server.api() as api:
        started = api.post(f"/v1/projects/{project['id']}/conversions").raise_for_status()
        wait_for_conversion(api, started.json()["id"])
    stream["allowed"] = True

    # The reconnected stream's snapshot brings the page up to date.
    expect(page.locator(".live")).to_have_text("● Live", timeout=30_000)
    expect(page.locator('li.seg[data-status="done"]')).to_have_count(2)
    expect(page.locator(".progress-text")).to_have_text("2 of 2 sentences have audio")
    assert stream["refused"] >= 1
    assert page.evaluate("window.__marker") == "same page"
