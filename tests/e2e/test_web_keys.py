"""With API keys on: the page asks for a key, explains a wrong one, works with the right one, and
never puts the key in a URL (audio, downloads and live events included)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from webapp import API_KEY, Server

pytestmark = pytest.mark.e2e


def test_api_key_is_asked_for_checked_and_kept_out_of_urls(
    keyed_server: Server, open_tab: Any
) -> None:
    tab = open_tab(keyed_server)
    page = tab.page
    tab.open()

    dialog = page.get_by_role("dialog", name="API key needed")
    expect(dialog).to_be_visible()
    expect(page.get_by_role("heading", name="Projects")).to_have_count(0)
    tab.shot("30-key-asked")

    # Escape does not get around it.
    page.keyboard.press("Escape")
    expect(dialog).to_be_visible()

    dialog.get_by_label("API key").fill("not-the-key")
    dialog.get_by_role("button", name="Use this key").click()
    error = dialog.get_by_role("alert")
    expect(error).to_have_text(
        "The server refused this key (invalid API key). Check the key and try again."
    )
    tab.shot("31-key-refused")

    dialog.get_by_label("API key").fill(API_KEY)
    dialog.get_by_role("button", name="Use this key").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("heading", name="Projects", level=1)).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('voxmill.apiKey')") == API_KEY
    assert page.evaluate("() => localStorage.getItem('voxmill.apiKey')") is None

    # Everything works with the key: create, convert (live events), listen, download, speak.
    form = page.get_by_role("form", name="New project")
    form.get_by_label("Name").fill("Keyed")
    form.get_by_label("Text", exact=True).fill("Keys stay in headers. Never in addresses.")
    form.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Keyed")
    page.get_by_role("button", name="Convert").click()
    bar = page.get_by_role("progressbar", name="Conversion progress")
    expect(bar).to_have_attribute("data-percent", "100", timeout=60_000)
    expect(page.locator(".live")).to_have_text("● Live")

    page.get_by_role("button", name="Play sentence 1").click()
    page.wait_for_function(
        "() => { const a = document.querySelector('.player-bar audio');"
        " return a && a.duration > 0; }"
    )
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("^Download chapter")).click()
    assert download.value.suggested_filename.endswith(".wav")
    tab.shot("32-keyed-project")

    page.get_by_role("link", name="← Projects").click()
    box = page.get_by_role("form", name="Try a voice")
    box.get_by_role("button", name="Speak").click()
    expect(box.locator("audio")).to_have_attribute("src", re.compile("^blob:"))

    # The key went in the Authorization header of every API request, and in no URL.
    api_requests = [r for r in tab.requests if "/v1/" in r.url]
    kinds = {r.url.split("/v1/")[1].split("?")[0].split("/")[0] for r in api_requests}
    assert {"projects", "segments", "chapters", "audio", "voices"} <= kinds
    assert any(r.url.endswith("/events") for r in api_requests)
    assert [r.url for r in tab.requests if API_KEY in r.url] == []
    keyed = f"Bearer {API_KEY}"
    first = next(i for i, r in enumerate(api_requests) if r.headers.get("authorization") == keyed)
    assert all(r.headers.get("authorization") == keyed for r in api_requests[first:])

    # A key that stops working sends the user back to the prompt, with the reason.
    page.evaluate("() => sessionStorage.setItem('voxmill.apiKey', 'revoked-key')")
    page.reload()
    expect(dialog).to_be_visible()
    expect(error).to_contain_text("The server refused this key")
    assert page.evaluate("() => sessionStorage.getItem('voxmill.apiKey')") is None
