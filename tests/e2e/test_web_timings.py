"""The chapter player follows the voice's timings: the sentence being heard is highlighted, and
clicking a sentence seeks the chapter audio to where that sentence starts."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from webapp import Server, make_project

pytestmark = pytest.mark.e2e

TEXT = (
    "# Night\n\nThe lamps came on one by one. A tram rattled past the square.\n\n"
    "Somewhere a window closed, and the street was quiet again."
)


def test_the_sentence_being_heard_is_highlighted_and_a_click_seeks(
    server: Server, open_tab: Any
) -> None:
    project = make_project(server, "Timed night", TEXT, fmt="markdown")
    chapter = project["chapters"][0]
    with server.api() as api:
        timings = api.get(f"/v1/chapters/{chapter['id']}/timings").json()
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    section = page.locator(f'section[data-chapter-id="{chapter["id"]}"]')
    if section.locator("details").get_attribute("open") is None:
        section.locator("summary").click()
    section.get_by_role("button", name="Play chapter: Night").click()
    audio = f'section[data-chapter-id="{chapter["id"]}"] .chapter-body > .player audio'
    page.wait_for_function(
        "sel => { const a = document.querySelector(sel); return a && a.duration > 0; }", arg=audio
    )

    # Clicking the last sentence's text jumps to its start and marks it as the one playing.
    last_id = timings["segments"][-1]
    last = section.locator(f'.seg[data-segment-id="{last_id}"]')
    last.locator(".seg-text").click()
    expect(last).to_have_attribute("aria-current", "true")
    start = timings["sentences"][-1]["start_ms"] / 1000
    at = page.evaluate("sel => document.querySelector(sel).currentTime", audio)
    assert start - 0.05 <= at <= start + 1.0
    assert section.locator(".seg[aria-current]").count() == 1
    outline = last.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline == "solid", "the highlight is visible, not only announced"
    tab.shot("60-sentence-highlight")

    # Seeking back to the start highlights the first sentence instead.
    page.evaluate("sel => { const a = document.querySelector(sel); a.currentTime = 0.05; }", audio)
    first = section.locator(f'.seg[data-segment-id="{timings["segments"][0]}"]')
    expect(first).to_have_attribute("aria-current", "true")
    expect(last).not_to_have_attribute("aria-current", "true")
