"""The web UI as a proofing studio (issue 11), in Debian's Chromium against the real app: one
player with the sentence highlighted and keys, project control (pause, resume, cancel, delete,
rename, documents), messages that stay true, Markdown detected while pasting, proofing (review
flag, previous take), quick synthesis, and axe-core with no violations on each page at 1280 px
and 375 px (screenshots in tests/artifacts/e2e/)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from webapp import ROOT, Server, make_project, wait_for_conversion

pytestmark = pytest.mark.e2e

AXE = ROOT / ".tools" / "ui-tools" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 900}
# Settings.embedded_workers: tasks synthesized at once in the embedded mode.
EMBEDDED_WORKERS = 2
MOBILE = {"width": 375, "height": 740}

STORY = """# The harbour

The boat left early. Gulls followed it.

The sea was calm.

# The return

Night fell. They came home. The lamps were lit.
"""
# Long enough that a conversion is still running when the first sentence plays, and that a
# pause lands before the end.
MANY = "# Many\n\n" + " ".join(
    f"This is sentence number {n} of the long list." for n in range(1, 41)
)

PLAYING = """() => [...document.querySelectorAll('audio')].filter((a) => !a.paused).length"""
CURRENT = """() => document.querySelector('li.seg[aria-current="true"]')?.dataset.segmentId"""


def _rows(page: Any, chapter: str) -> Any:
    return page.get_by_role("region", name=chapter).locator("li.seg")


def _current(page: Any) -> str | None:
    value = page.evaluate(CURRENT)
    return str(value) if value else None


def _database(server: Server) -> Path:
    return server.log.parent / "voxmill.db"


def test_one_player_highlight_follows_and_keys_control_it(server: Server, open_tab: Any) -> None:
    project = make_project(server, "One player", STORY, fmt="markdown")
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    harbour = _rows(page, "The harbour")
    ret = _rows(page, "The return")
    expect(harbour).to_have_count(4)
    # Whenever any audio starts, count how many are sounding at once.
    page.evaluate(
        f"""() => {{ window.__most = 0;
               document.addEventListener('playing', () => {{
                 window.__most = Math.max(window.__most, ({PLAYING})()); }}, true); }}"""
    )

    # A sentence, then a chapter: the second start stops the first; one sound at a time.
    harbour.nth(1).get_by_role("button", name="Play sentence 2 of “The harbour”").click()
    page.wait_for_function(f"() => ({PLAYING})() === 1")
    expect(harbour.nth(1)).to_have_attribute("aria-current", "true")
    page.get_by_role("button", name="Play chapter: The return").click()
    expect(ret.first).to_have_attribute("aria-current", "true")
    expect(harbour.nth(1)).not_to_have_attribute("aria-current", "true")
    assert page.locator("audio").count() == 1 + page.locator(".review-panel audio").count()
    page.wait_for_function(f"() => ({PLAYING})() === 1")
    expect(page.locator(".now-playing")).to_contain_text("“The return”")
    tab.shot("30-player-chapter")

    # The highlight follows the audio: when a sentence ends, the next one is highlighted and
    # scrolled into view while it plays.
    second = ret.nth(1)
    expect(second).to_have_attribute("aria-current", "true", timeout=20_000)
    page.wait_for_function(f"() => ({PLAYING})() === 1")
    assert second.evaluate(
        "el => { const r = el.getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; }"
    )

    # Keys: K pauses and plays, L and J move by one sentence.
    page.locator("h1").click()
    page.keyboard.press("k")
    page.wait_for_function(f"() => ({PLAYING})() === 0")
    page.keyboard.press("k")
    page.wait_for_function(f"() => ({PLAYING})() === 1")
    before = _current(page)
    page.keyboard.press("l")
    page.wait_for_function(f"(old) => ({CURRENT})() !== old", arg=before)
    after = _current(page)
    page.keyboard.press("j")
    page.wait_for_function(f"(old) => ({CURRENT})() !== old", arg=after)
    assert _current(page) == before

    # Play from here: from the last sentence of the first chapter on, into the next chapter.
    harbour.nth(3).get_by_role("button", name="Play from sentence 4 of “The harbour” on").click()
    expect(harbour.nth(3)).to_have_attribute("aria-current", "true")
    expect(ret.first).to_have_attribute("aria-current", "true", timeout=20_000)
    assert page.evaluate("window.__most") == 1, "two sounds played at once"


def test_listening_starts_while_later_sentences_are_synthesized(
    server: Server, open_tab: Any
) -> None:
    project = make_project(server, "Listen early", MANY, fmt="markdown", convert=False)
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    expect(page.locator("li.seg")).to_have_count(41)
    page.evaluate(
        """() => { window.__queuedAtFirstPlay = null;
                   document.querySelector('.player-bar audio').addEventListener('playing', () => {
                     if (window.__queuedAtFirstPlay === null) window.__queuedAtFirstPlay =
                       document.querySelectorAll('li.seg[data-status="queued"]').length; }); }"""
    )
    page.get_by_role("button", name="Convert").click()
    expect(page.locator(".progress-text")).to_contain_text("Converting")
    page.get_by_role("button", name="Play the project from the start").click()
    page.wait_for_function("() => window.__queuedAtFirstPlay !== null", timeout=60_000)
    assert page.evaluate("window.__queuedAtFirstPlay") > 0, "playback waited for the whole book"
    expect(page.locator(".progress-text")).to_contain_text("Conversion finished", timeout=120_000)


def test_pause_stops_new_tasks_resume_finishes_and_delete_removes_everything(
    server: Server, open_tab: Any, wait_until: Any
) -> None:
    project = make_project(server, "Pause me", MANY, fmt="markdown", convert=False)
    pid = project["id"]
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{pid}")
    expect(page.locator("li.seg")).to_have_count(41)
    page.get_by_role("button", name="Convert").click()
    pause = page.get_by_role("button", name="Pause the conversion")
    expect(pause).to_be_focused()  # the focus stays on the conversion controls
    # The Convert button is gone while it runs, not disabled with a false tooltip.
    expect(page.get_by_role("button", name="Convert")).to_be_hidden()
    pause.click()
    expect(page.locator(".progress-text")).to_contain_text("Conversion paused")
    resume = page.get_by_role("button", name="Resume the conversion")
    expect(resume).to_be_focused()
    tab.shot("31-paused")

    with server.api() as api:
        at_pause = api.get(f"/v1/projects/{pid}").json()["counts"]
        assert at_pause["queued"] == 0 and at_pause["failed"] == 0, at_pause
        # Only the sentences a worker had already started may still arrive (and are kept): at
        # most one per embedded worker. Without the pause the other 30-odd would follow.
        history: list[int] = []

        def settled() -> bool:
            history.append(api.get(f"/v1/projects/{pid}").json()["counts"]["done"])
            return len(history) > 20 and len(set(history[-20:])) == 1

        wait_until(settled, what="the sentences in flight to settle")
        counts = api.get(f"/v1/projects/{pid}").json()["counts"]
        assert counts["done"] - at_pause["done"] <= EMBEDDED_WORKERS, (at_pause, counts)
        assert counts["pending"] > 0 and counts["failed"] == 0, counts
    expect(page.locator('li.seg[data-status="queued"]')).to_have_count(0)

    resume.click()
    expect(page.locator(".progress-text")).to_contain_text("Conversion finished", timeout=120_000)
    with server.api() as api:
        counts = api.get(f"/v1/projects/{pid}").json()["counts"]
        assert counts["done"] == counts["total"] == 41 and counts["failed"] == 0

    # Delete: the project, its documents and its audio rows go.
    page.get_by_text("Project settings").click()
    page.get_by_role("button", name="Delete project…").click()
    tab.shot("32-delete-confirm")
    page.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Projects")
    expect(page.locator(f'li[data-project-id="{pid}"]')).to_have_count(0)
    with server.api() as api:
        assert api.get(f"/v1/projects/{pid}").status_code == 404
    with sqlite3.connect(_database(server)) as db:
        for table in ("segments", "chapters", "documents", "conversions"):
            left = db.execute(f"SELECT count(*) FROM {table} WHERE project_id = ?", (pid,))
            assert left.fetchone()[0] == 0, table


def test_cancel_then_convert_again(server: Server, open_tab: Any) -> None:
    project = make_project(server, "Cancel me", MANY, fmt="markdown", convert=False)
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    page.get_by_role("button", name="Convert").click()
    page.get_by_role("button", name="Cancel the conversion").click()
    expect(page.locator(".progress-text")).to_contain_text("Conversion cancelled")
    expect(page.locator(".status-line").first).to_contain_text("Cancelled")
    convert = page.get_by_role("button", name=" the rest")
    expect(page.locator('li.seg[data-status="queued"]')).to_have_count(0, timeout=30_000)
    (convert if convert.count() else page.get_by_role("button", name="Convert")).click()
    expect(page.locator(".progress-text")).to_contain_text("Conversion finished", timeout=120_000)
    expect(page.locator('li.seg[data-status="done"]')).to_have_count(41)


def test_stale_messages_go_and_messages_speak_the_pages_words(
    server: Server, open_tab: Any
) -> None:
    project = make_project(server, "True messages", STORY, fmt="markdown", convert=False)
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    page.get_by_role("button", name="Download project").click()
    status = page.locator(".download-row + .status-line")
    expect(status).to_contain_text("not ready yet")
    text = status.inner_text()
    assert "“True messages”" in text and "sentences" in text and "press Convert" in text
    assert "segment" not in text and str(project["id"]) not in text
    chapter = page.get_by_role("region", name="The return")
    chapter.get_by_role("button", name="Download chapter: The return").click()
    chapter_status = chapter.locator(".chapter-body > .status-line")
    expect(chapter_status).to_contain_text("The chapter “The return” is not ready yet")
    tab.shot("33-not-ready")
    page.get_by_role("button", name="Convert").click()
    expect(page.locator(".progress-text")).to_contain_text("Conversion finished", timeout=90_000)
    # Both notices went away with their condition, without anything being clicked.
    expect(status).to_be_hidden()
    expect(chapter_status).to_be_hidden()

    # A correction over the limit: the page's words, not the raw validation text.
    row = _rows(page, "The harbour").nth(1)
    row.get_by_role("button", name="Edit sentence 2 of “The harbour”").click()
    row.get_by_label("Corrected text for sentence 2 of “The harbour”").evaluate(
        "(el) => { el.removeAttribute('maxlength'); el.value = 'word '.repeat(500); }"
    )
    row.get_by_role("button", name="Re-synthesize").click()
    problem = row.locator(".seg-editor .error")
    expect(problem).to_contain_text("The text is too long: at most 2,000 characters")
    assert "String should" not in problem.inner_text()


def test_stale_refresh_error_goes_when_the_server_answers_again(
    server: Server, open_tab: Any
) -> None:
    project = make_project(server, "Flaky network", "One sentence here.", convert=False)
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    expect(page.locator(".live")).to_have_text("● Live", timeout=30_000)
    detail = f"**/v1/projects/{project['id']}"
    page.route(detail, lambda route: route.abort("connectionreset"))
    page.get_by_role("button", name="Convert").click()  # its refresh fails
    expect(page.locator(".progress-card .status-line").first).to_contain_text(
        "Could not update the page", timeout=20_000
    )
    page.unroute(detail)
    expect(page.locator(".progress-card .status-line").first).to_be_hidden(timeout=30_000)


def test_markdown_is_detected_when_pasted_and_the_choice_is_changeable(
    server: Server, open_tab: Any
) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    form = page.get_by_role("form", name="New project")
    form.get_by_label("Name").fill("Pasted Markdown")
    form.get_by_label("Text", exact=True).fill(
        "# Chapter one\n\nIt was **very** late. See [the map](https://example.com/map).\n"
    )
    fmt = form.get_by_label("The text is")
    expect(fmt).to_have_value("markdown")
    expect(form.locator(".format-note")).to_contain_text("looks like Markdown")
    tab.shot("34-markdown-detected")
    # Changeable: plain text stays plain once chosen.
    fmt.select_option("text")
    form.get_by_label("Text", exact=True).press("End")
    form.get_by_label("Text", exact=True).type(" More.")
    expect(fmt).to_have_value("text")
    fmt.select_option("markdown")
    form.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pasted Markdown")
    rows = _rows(page, "Chapter one")
    expect(rows).to_have_count(4)  # the heading, two sentences and "More."
    spoken = " ".join(rows.locator(".seg-text").all_inner_texts())
    assert "**" not in spoken and "https://" not in spoken and "#" not in spoken


def test_a_refused_upload_leaves_no_project(server: Server, open_tab: Any, tmp_path: Path) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    fake = tmp_path / "report.pdf"
    fake.write_text("not a pdf at all")
    form = page.get_by_role("form", name="New project")
    form.get_by_label("Name").fill("Refused upload")
    form.get_by_label("Upload a file").check()
    form.get_by_label("File (text, Markdown, EPUB, Word, HTML or PDF)").set_input_files(fake)
    form.get_by_role("button", name="Create project").click()
    expect(form.get_by_role("alert")).to_contain_text("no project was created")
    with server.api() as api:
        names = [p["name"] for p in api.get("/v1/projects?limit=200").json()["items"]]
    assert "Refused upload" not in names


def test_proofing_flag_filter_and_previous_take(server: Server, open_tab: Any) -> None:
    project = make_project(server, "Proofing", STORY, fmt="markdown")
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    row = _rows(page, "The harbour").nth(2)
    expect(row.locator(".seg-text")).to_have_text("Gulls followed it.")
    name = "sentence 3 of “The harbour”"
    row.get_by_role("button", name=f"Review {name}").click()
    row.get_by_label("Needs review").check()
    expect(row.locator(".review-flag")).to_have_text("Needs review")
    page.get_by_label("Show only sentences that need review").check()
    expect(page.locator("li.seg:visible")).to_have_count(1)
    page.get_by_label("Show only sentences that need review").uncheck()

    # Spoken form on demand.
    row.get_by_role("button", name="Spoken form").click()
    expect(row.locator(".spoken-text")).to_be_visible()

    # A re-synthesis keeps the previous take: listen to it, pick it back.
    row.get_by_role("button", name=f"Edit {name}").click()
    row.get_by_label(f"Corrected text for {name}").fill("A flock of gulls followed the boat.")
    row.get_by_role("button", name="Re-synthesize").click()
    expect(row).to_have_attribute("data-status", "done", timeout=60_000)
    previous = row.get_by_role("button", name=f"Play the previous take of {name}")
    expect(previous).to_be_visible()
    previous.click()
    page.wait_for_function(
        "() => { const a = document.querySelector('.review-panel audio:not([hidden])');"
        " return a && a.duration > 0; }"
    )
    tab.shot("35-proofing")
    row.get_by_role("button", name=f"Keep the previous take of {name}").click()
    expect(row.locator(".seg-text")).to_have_text("Gulls followed it.")


def test_quick_synthesis_shows_progress_and_offers_a_download(
    server: Server, open_tab: Any
) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    box = page.get_by_role("form", name="Try a voice")
    box.get_by_label("Text to speak").fill("A short sample of this voice.")
    box.get_by_role("button", name="Speak").click()
    expect(box.locator(".status-line")).to_contain_text("Ready", timeout=60_000)
    with page.expect_download() as download:
        box.get_by_role("link", name="Download the sample (WAV)").click()
    assert download.value.suggested_filename == "voice-sample.wav"


def test_home_list_follows_changes_made_elsewhere(
    server: Server, open_tab: Any, wait_until: Any
) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    project = make_project(server, "Made elsewhere", "Hello there.", convert=False)
    item = page.locator(f'li[data-project-id="{project["id"]}"]')
    expect(item).to_be_visible(timeout=20_000)
    with server.api() as api:
        started = api.post(f"/v1/projects/{project['id']}/conversions").raise_for_status()
        wait_for_conversion(api, started.json()["id"])
        api.patch(f"/v1/projects/{project['id']}", json={"name": "Renamed elsewhere"})
    expect(item.locator(".pill")).to_have_text("Done", timeout=20_000)
    expect(item.get_by_role("link")).to_have_text("Renamed elsewhere", timeout=20_000)


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["1280", "375"])
def test_every_page_has_no_axe_violations_and_phone_targets_are_44px(
    server: Server, open_tab: Any, viewport: dict[str, int]
) -> None:
    assert AXE.is_file(), f"axe-core is not installed at {AXE}: run 'make ui-tools'"
    project = make_project(server, f"Accessible {viewport['width']}", STORY, fmt="markdown")
    tab = open_tab(server, viewport=viewport)
    page = tab.page
    width = viewport["width"]
    pages = {
        "home": "#/",
        "project": f"#/projects/{project['id']}",
        "voices": "#/voices",
        "project-voices": f"#/projects/{project['id']}/voices",
    }
    for label, route in pages.items():
        tab.open(route)
        if label == "project":
            expect(page.locator("li.seg")).to_have_count(8)
            page.get_by_text("Project settings").click()
            # Unique accessible names: no two visible buttons are called the same.
            names = page.evaluate(
                """() => [...document.querySelectorAll('button')]
                       .filter((b) => b.getClientRects().length)
                       .map((b) => b.getAttribute('aria-label') || b.textContent.trim())"""
            )
            repeated = {n for n in names if names.count(n) > 1}
            assert not repeated, f"buttons share a name: {repeated}"
        page.wait_for_load_state("networkidle")
        # Evaluated over the DevTools protocol: the app's Content-Security-Policy (scripts from
        # 'self' only) rightly refuses an injected <script>.
        page.evaluate(AXE.read_text())
        result = page.evaluate(
            """async () => {
                 const r = await axe.run(document, {resultTypes: ['violations']});
                 return r.violations.map((v) => ({id: v.id, impact: v.impact,
                   nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}));
               }"""
        )
        tab.shot(f"40-axe-{label}-{width}")
        assert result == [], f"{label} at {width} px: {result}"
        if width < 600:
            small = page.evaluate(
                """() => [...document.querySelectorAll('button, a.btn, select, summary')]
                       .filter((el) => el.getClientRects().length)
                       .filter((el) => el.getBoundingClientRect().height < 44)
                       .map((el) => el.outerHTML.slice(0, 100))"""
            )
            assert small == [], f"{label}: touch targets under 44 px: {small}"
