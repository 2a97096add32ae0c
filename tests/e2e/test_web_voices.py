"""The voices page in a real browser: upload a voice with progress, hear its sample, see a
refused voice's reason, compare two voices, and choose a chapter's voice."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from voicekit import hostile_zip, tiny_vits, zip_dir
from webapp import Server, start_server, stop_server

pytestmark = pytest.mark.e2e

ADMIN_KEY = "e2e-admin-key-0123456789"


@pytest.fixture(scope="module")
def voice_server(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app with an admin key and a model store of its own (uploads land there)."""
    root = tmp_path_factory.mktemp("e2e-voices")
    store = root / "store"
    store.mkdir()
    os.symlink(joe_mar, store / "joe.mar")
    running = start_server(root, f"{ADMIN_KEY}:admin", model_store=store)
    running.api_key = ADMIN_KEY
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def voice_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tiny_vits(tmp_path_factory.mktemp("vits") / "tiny")
    return zip_dir(folder, folder.parent / "tiny.zip")


def _tab(open_tab: Callable[..., Any], server: Server) -> Any:
    tab = open_tab(server)
    tab.page.context.add_init_script(f"sessionStorage.setItem('voxmill.apiKey', {ADMIN_KEY!r});")
    return tab


def test_upload_a_voice_with_progress_and_play_its_sample(
    open_tab: Callable[..., Any], voice_server: Server, voice_zip: Path
) -> None:
    tab = _tab(open_tab, voice_server)
    tab.open("#/voices")
    page = tab.page
    expect(page.locator("h1")).to_have_text("Voices")
    form = page.locator("form.voice-upload")
    form.locator("input[name=name]").fill("storyteller")
    form.locator("input[name=sample_text]").fill("hello there, this is a story")
    form.locator("input[name=archive]").set_input_files(str(voice_zip))
    form.locator("button[type=submit]").click()

    status = form.locator(".upload-status")
    expect(status).to_contain_text("is ready", timeout=240_000)
    item = page.locator("article.voice-item[data-voice=storyteller]")
    expect(item).to_contain_text("v1")
    expect(item).to_contain_text("16000 Hz")
    item.get_by_role("button", name="Play sample v1").click()
    audio = item.locator("audio")
    expect(audio).to_have_count(1)
    duration = page.wait_for_function(
        "el => el.readyState >= 1 && el.duration > 0 ? el.duration : null",
        arg=audio.element_handle(),
    ).json_value()
    assert duration > 0
    assert audio.get_attribute("src").startswith("blob:")  # fetched with the key, not in a URL
    tab.shot("voices-uploaded")


def test_an_invalid_voice_says_why(
    open_tab: Callable[..., Any], voice_server: Server, tmp_path: Path
) -> None:
    tab = _tab(open_tab, voice_server)
    tab.open("#/voices")
    form = tab.page.locator("form.voice-upload")
    form.locator("input[name=name]").fill("pickled")
    form.locator("input[name=archive]").set_input_files(
        str(hostile_zip(tmp_path / "pickled.zip", "pickle"))
    )
    form.locator("button[type=submit]").click()

    status = form.locator(".upload-status")
    expect(status).to_contain_text("not accepted", timeout=60_000)
    expect(status).to_contain_text("pickled weights")
    expect(status).to_have_class("status-line upload-status error")
    tab.shot("voices-refused")


def test_compare_two_voices_and_choose_a_chapter_voice(
    open_tab: Callable[..., Any], voice_server: Server
) -> None:
    with voice_server.api() as api:
        project = api.post("/v1/projects", json={"name": "Two voices", "voice": "joe"}).json()
        api.post(
            f"/v1/projects/{project['id']}/documents",
            json={"text": "# One\n\nHello.\n\n# Two\n\nHi.", "format": "markdown"},
        )
        detail = api.get(f"/v1/projects/{project['id']}").json()
    tab = _tab(open_tab, voice_server)
    tab.open("#/voices")
    page = tab.page
    compare = page.locator("section", has=page.locator("#compare-title"))
    compare.locator("select").nth(0).select_option("joe")
    compare.locator("select").nth(2).select_option("storyteller")
    compare.get_by_role("button", name="Compare").click()
    expect(compare.locator("audio")).to_have_count(2, timeout=240_000)

    tab.open(f"#/projects/{project['id']}/voices")
    second = page.locator(".voice-choice").nth(2)
    second.locator("select").nth(0).select_option("storyteller")
    second.locator("select").nth(1).select_option("1")
    second.get_by_role("button", name="Save").click()
    expect(page.locator("p.status-line")).to_contain_text("storyteller v1")
    with voice_server.api() as api:
        chapter = api.get(f"/v1/chapters/{detail['chapters'][1]['id']}").json()
    assert (chapter["voice"], chapter["voice_version"]) == ("storyteller", "1")
    tab.shot("voices-project")
