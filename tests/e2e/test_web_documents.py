"""An EPUB through the browser: its chapters in table-of-contents order, each one heard; a
sentence's spoken form shown on demand, and a word added to the project's lexicon from it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from playwright.sync_api import expect
from webapp import Server, chapter_seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from docfixtures import CHAPTERS, epub_bytes

pytestmark = pytest.mark.e2e


def test_an_epub_is_heard_chapter_by_chapter(server: Server, open_tab: Any, tmp_path: Path) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    book = tmp_path / "small-book.epub"
    book.write_bytes(epub_bytes())

    form = page.get_by_role("form", name="New project")
    form.get_by_label("Name").fill("A small book")
    form.get_by_label("Voice").select_option("joe")
    form.get_by_label("Upload a file").check()
    form.get_by_label("File (text, Markdown, EPUB, Word, HTML or PDF)").set_input_files(book)
    form.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("A small book", timeout=60_000)
    project_id = int(page.url.rsplit("/", 1)[1])

    # The chapters, in the book's order, without its cover or copyright page.
    titles = [title for title, _ in CHAPTERS]
    expect(page.locator("section.chapter h2.chapter-title")).to_have_text(titles)
    expect(page.get_by_text("Cover text not to be read")).to_have_count(0)
    tab.shot("20-epub-chapters")

    page.get_by_role("button", name="Convert").click()
    bar = page.get_by_role("progressbar", name="Conversion progress")
    expect(bar).to_have_attribute("data-percent", "100", timeout=180_000)

    with server.api() as api:
        chapters = api.get(f"/v1/projects/{project_id}").json()["chapters"]
        assert [c["title"] for c in chapters] == titles
        for chapter in chapters:
            section = page.locator(f'section[data-chapter-id="{chapter["id"]}"]')
            if section.locator("details").get_attribute("open") is None:
                section.locator("summary").click()
            # The chapter plays in the page's one player, from its first sentence.
            section.get_by_role("button", name=f"Play chapter: {chapter['title']}").click()
            expect(section.locator("li.seg").first).to_have_attribute("aria-current", "true")
            expect(page.locator(".now-playing")).to_contain_text(f"“{chapter['title']}”")
            section.get_by_label("Format").select_option("wav")
            with page.expect_download() as download:
                section.get_by_role("button", name=f"Download chapter: {chapter['title']}").click()
            saved = tmp_path / f"{chapter['position']}.wav"
            download.value.save_as(saved)
            assert sf.info(str(saved)).duration == pytest.approx(
                chapter_seconds(api, chapter["id"]), abs=0.02
            )
        tab.shot("21-epub-heard")

        # The last chapter's dated sentence: its spoken form, on demand.
        last = api.get(f"/v1/chapters/{chapters[-1]['id']}").json()
        dated = last["blocks"][1]["segments"][0]
        row = page.locator(f'li[data-segment-id="{dated["id"]}"]')
        number = 2
        title = chapters[-1]["title"]
        row.get_by_role("button", name=f"Spoken form of sentence {number} of “{title}”").click()
        expect(row.locator(".spoken-text")).to_have_text(
            "They came home on March fourth, twenty twenty five."
        )
        # Add a word of it to the project's pronunciation lexicon.
        row.get_by_label("Word", exact=True).fill("home")
        row.get_by_label("Read it").select_option("alias")
        row.get_by_role("textbox", name="Pronunciation").fill("hoam")
        row.get_by_role("button", name="Add to the project's pronunciation lexicon").click()
        expect(row.locator(".spoken-panel .status-line")).to_contain_text("Added")
        entries = api.get(f"/v1/projects/{project_id}/lexicon").json()["items"]
        assert [(e["grapheme"], e["alias"]) for e in entries] == [("home", "hoam")]
        assert api.get(f"/v1/segments/{dated['id']}").json()["spoken_text"] == (
            "They came hoam on March fourth, twenty twenty five."
        )
        tab.shot("22-lexicon")
