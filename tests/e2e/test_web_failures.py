"""What a user sees when something goes wrong: a failed sentence with its error and a retry,
server refusals as readable messages, and pages that do not exist."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from webapp import Server, make_project

pytestmark = pytest.mark.e2e

# Fifteen-digit numbers are read out in full: a hundred of them make a spoken form far over the
# voice's limit per request, which the voice refuses. (A sentence with nothing to say, such as
# "...", is no failure: it becomes a pause.)
TOO_LONG_TO_SAY = " ".join(["999999999999999"] * 100)
REFUSED = re.compile("the limit is 2000", re.IGNORECASE)
NOTHING_TO_SPEAK = re.compile("the text has nothing to speak", re.IGNORECASE)


def test_failed_sentence_shows_its_error_and_can_be_retried_and_fixed(
    server: Server, open_tab: Any, wait_until: Any
) -> None:
    project = make_project(server, "Failures", "It was a fine day. Then it rained.")
    tab = open_tab(server)
    page = tab.page
    tab.open(f"#/projects/{project['id']}")
    rows = page.locator("li.seg")
    expect(rows).to_have_count(2)
    first = rows.first

    # Text whose spoken form the voice refuses: the sentence fails.
    first.get_by_role("button", name="Edit sentence 1").click()
    first.get_by_label("Corrected text for sentence 1").fill(TOO_LONG_TO_SAY)
    first.get_by_role("button", name="Re-synthesize").click()
    expect(first).to_have_attribute("data-status", "failed", timeout=60_000)
    expect(first.locator(".badge")).to_have_text("Failed")
    expect(first.locator(".seg-error")).to_contain_text(REFUSED)
    expect(first.get_by_role("button", name="Play sentence 1")).to_be_hidden()
    expect(page.locator(".counts-text")).to_contain_text("1 failed", timeout=10_000)
    tab.shot("10-sentence-failed")

    # The whole project cannot be downloaded yet: the server's reason shows, not raw JSON.
    page.get_by_role("button", name="Download project").click()
    status = page.locator(".progress-card .status-line").last
    expect(status).to_contain_text("not ready")
    assert "{" not in status.inner_text()

    # Retry sends the same text again: it fails again, one attempt later.
    segment_id = int(first.get_attribute("data-segment-id") or 0)
    with server.api() as api:
        attempts = api.get(f"/v1/segments/{segment_id}").json()["attempts"]
        first.get_by_role("button", name="Retry sentence 1").click()

        def failed_again() -> bool:
            segment = api.get(f"/v1/segments/{segment_id}").json()
            return segment["attempts"] == attempts + 1 and segment["status"] == "failed"

        wait_until(failed_again, what="the retried sentence to fail again")
    expect(first).to_have_attribute("data-status", "failed", timeout=30_000)
    expect(first.locator(".seg-error")).to_contain_text(REFUSED)

    # Fixing the text makes it speakable again.
    first.get_by_role("button", name="Edit sentence 1").click()
    first.get_by_label("Corrected text for sentence 1").fill("It was a fine day after all.")
    first.get_by_role("button", name="Re-synthesize").click()
    expect(first.locator(".seg-text")).to_have_text("It was a fine day after all.")
    expect(first).to_have_attribute("data-status", "done", timeout=60_000)
    expect(first.locator(".seg-error")).to_be_hidden()
    expect(first.get_by_role("button", name="Retry sentence 1")).to_be_hidden()


def test_server_errors_show_as_readable_messages(
    server: Server, open_tab: Any, tmp_path: Path
) -> None:
    tab = open_tab(server)
    page = tab.page
    tab.open()
    form = page.get_by_role("form", name="New project")

    # Checked in the page before anything is sent.
    form.get_by_role("button", name="Create project").click()
    expect(form.get_by_role("alert")).to_have_text("Give the project a name.")
    form.get_by_label("Name").fill("Empty upload")
    form.get_by_role("button", name="Create project").click()
    expect(form.get_by_role("alert")).to_contain_text("Paste the text to convert")

    # Refused by the server: its `detail`, in words.
    empty = tmp_path / "empty.md"
    empty.write_text("")
    form.get_by_label("Upload a file").check()
    form.get_by_label("File (text, Markdown, EPUB, Word, HTML or PDF)").set_input_files(empty)
    form.get_by_role("button", name="Create project").click()
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text(re.compile("the file is empty", re.IGNORECASE))
    expect(alert).to_contain_text("no project was created")
    assert "detail" not in alert.inner_text()
    tab.shot("11-upload-refused")
    with server.api() as api:
        names = [p["name"] for p in api.get("/v1/projects").json()["items"]]
    assert "Empty upload" not in names  # a refused document leaves no empty project

    # A second try creates the project once, with its document.
    good = tmp_path / "good.md"
    good.write_text("# Start\n\nA short text.\n")
    form.get_by_label("File (text, Markdown, EPUB, Word, HTML or PDF)").set_input_files(good)
    form.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Empty upload")
    with server.api() as api:
        names = [p["name"] for p in api.get("/v1/projects").json()["items"]]
    assert names.count("Empty upload") == 1

    # More text for the same project, from its own page.
    page.locator("summary", has_text="Add a document").click()
    adding = page.locator(".add-doc form")
    adding.get_by_role("button", name="Add the document").click()
    expect(adding.get_by_role("alert")).to_contain_text("Paste the text to convert")
    adding.get_by_label("Text", exact=True).fill("# Later\n\nSome more text.")
    adding.get_by_label("The text is").select_option("markdown")
    adding.get_by_role("button", name="Add the document").click()
    expect(page.get_by_role("region", name="Later")).to_be_visible()
    expect(page.locator(".progress-card .status-line").first).to_contain_text(
        "Added 2 sentences in 1 chapter"
    )

    # A project that does not exist, and an address that means nothing.
    tab.open("#/projects/999999")
    # The page's words, without the database id of the address.
    expect(page.get_by_role("alert")).to_have_text(
        "This project does not exist any more: it may have been deleted."
    )
    tab.shot("12-project-missing")
    tab.open("#/nowhere")
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")

    # Try a voice with text the voice cannot speak.
    tab.open()
    box = page.get_by_role("form", name="Try a voice")
    box.get_by_label("Text to speak").fill("???")
    box.get_by_role("button", name="Speak").click()
    expect(box.get_by_role("status")).to_contain_text(NOTHING_TO_SPEAK)
