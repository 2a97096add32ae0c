"""Usable by everyone: every control has a name, the keyboard reaches everything, the pages fit
a 375 px phone, and "Try a voice" speaks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from webapp import Server, make_project

pytestmark = pytest.mark.e2e

MOBILE = {"width": 375, "height": 740}

# Visible controls without an accessible name (label, aria-label(ledby), own text or title).
UNNAMED_CONTROLS = """() => {
  const named = (el) => {
    if (el.getAttribute('aria-label')?.trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\\s+/).some((id) => document.getElementById(id)?.textContent.trim())) {
      return true;
    }
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    if (['BUTTON', 'A', 'SUMMARY'].includes(el.tagName) && el.textContent.trim()) return true;
    return Boolean(el.title?.trim());
  };
  const visible = (el) => el.getClientRects().length > 0;
  return [...document.querySelectorAll(
    'button, a[href], input, select, textarea, progress, audio, summary, form')]
    .filter((el) => visible(el) && !(el.tagName === 'FORM' && !el.hasAttribute('aria-labelledby'))
                    && !named(el))
    .map((el) => el.outerHTML.slice(0, 160));
}"""

OVERFLOW = "document.documentElement.scrollWidth"

LONG_TEXT = """# A chapter with an unusually long title that must wrap on a phone screen

Supercalifragilisticexpialidocious-and-even-longer-unbroken-words-must-wrap-too. Short one.

Another paragraph here.

# Second

The end.
"""


def _tab_to(page: Any, target: Any, limit: int = 80) -> None:
    """Press Tab until ``target`` has the focus (fails if the keyboard never reaches it)."""
    handle = target.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if handle.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def test_controls_are_labelled_and_reachable_by_keyboard(server: Server, open_tab: Any) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    expect(page.locator(".project-list li, .card p.muted:not([hidden])").first).to_be_visible()
    assert page.evaluate(UNNAMED_CONTROLS) == []

    # Create, convert and listen without the mouse.
    form = page.get_by_role("form", name="New project")
    _tab_to(page, form.get_by_label("Name"))
    page.keyboard.type("Keyboard only")
    _tab_to(page, form.get_by_label("Text", exact=True))
    page.keyboard.type("Typed with keys. It works.")
    _tab_to(page, form.get_by_role("button", name="Create project"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Keyboard only")
    expect(page.locator("li.seg")).to_have_count(2)
    # The new page's heading has the focus, so the next Tab starts at the top of the content.
    page.wait_for_function("() => document.activeElement?.tagName === 'H1'")
    assert page.evaluate(UNNAMED_CONTROLS) == []

    _tab_to(page, page.get_by_role("button", name="Convert"))
    page.keyboard.press("Enter")
    expect(page.locator('li.seg[data-status="done"]')).to_have_count(2, timeout=60_000)
    play = page.get_by_role("button", name="Play sentence 2")
    _tab_to(page, play)
    page.keyboard.press("Enter")
    # The page's one player plays it, and the row is marked as the one being heard.
    page.wait_for_function(
        "() => { const a = document.querySelector('.player-bar audio');"
        " return a && a.duration > 0; }"
    )
    expect(page.locator("li.seg").nth(1)).to_have_attribute("aria-current", "true")
    assert page.evaluate(UNNAMED_CONTROLS) == []

    # The editor opens, takes the text, and Escape closes it again.
    edit = page.get_by_role("button", name="Edit sentence 1")
    _tab_to(page, edit)
    page.keyboard.press("Enter")
    editor = page.get_by_label("Corrected text for sentence 1")
    expect(editor).to_be_focused()
    page.keyboard.press("Escape")
    expect(editor).to_have_count(0)
    expect(edit).to_be_focused()


def test_pages_fit_a_phone(server: Server, open_tab: Any) -> None:
    project = make_project(server, "Phone-sized " + "x" * 60, LONG_TEXT, fmt="markdown")
    with server.api() as api:
        first = api.get(f"/v1/chapters/{project['chapters'][0]['id']}").json()
        failing = first["blocks"][1]["segments"][1]["id"]
        # A spoken form far over the voice's limit per request: the voice refuses it.
        numbers = " ".join(["999999999999999"] * 100)
        api.post(f"/v1/segments/{failing}/resynthesize", json={"text": numbers}).raise_for_status()

    tab = open_tab(server, viewport=MOBILE)
    page = tab.page
    tab.open()
    expect(page.locator(f'li[data-project-id="{project["id"]}"]')).to_be_visible()
    assert page.evaluate(OVERFLOW) <= MOBILE["width"]
    tab.shot("20-mobile-projects")

    tab.open(f"#/projects/{project['id']}")
    row = page.locator(f'li[data-segment-id="{failing}"]')
    expect(row).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(row.locator(".seg-error")).to_be_visible()
    assert page.evaluate(OVERFLOW) <= MOBILE["width"]
    tab.shot("21-mobile-project")

    row.get_by_role("button", name="Edit sentence 3").click()
    page.get_by_role("button", name="Play sentence 2").first.click()
    page.wait_for_function("() => document.querySelector('.player-bar audio')?.src")
    assert page.evaluate(OVERFLOW) <= MOBILE["width"]
    for button in page.get_by_role("button").all():
        if button.is_visible():
            box = button.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= MOBILE["width"]
    tab.shot("22-mobile-editing")


def test_try_a_voice(server: Server, open_tab: Any) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    box = page.get_by_role("form", name="Try a voice")
    box.get_by_label("Text to speak").fill("Testing one two three.")
    box.get_by_role("button", name="Speak").click()
    audio = box.locator("audio")
    expect(audio).to_have_attribute("src", re.compile(r"^blob:"))
    duration = page.wait_for_function(
        "() => { const a = document.querySelector('form[aria-labelledby=\"try-title\"] audio');"
        " return a && a.duration > 0 && a.duration; }"
    ).json_value()
    assert 0.5 < duration < 5
    tab.shot("23-try-a-voice")
