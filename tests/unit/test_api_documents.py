"""Documents, spoken forms, re-synthesis and the pronunciation lexicon through the REST API
(embedded mode, a stand-in voice that records what it was given)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_api_routes import FakeVoice, convert, make_client, new_project, wait_finished

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from docfixtures import CHAPTERS, docx_with_entity_bytes, epub_bytes, epub_with_entities_bytes

from text_processing.isolation import DocumentPool, ParsedDocument


def segments(client: TestClient, project_id: int) -> list[dict[str, Any]]:
    out = []
    for chapter in client.get(f"/v1/projects/{project_id}").json()["chapters"]:
        detail = client.get(f"/v1/chapters/{chapter['id']}").json()
        out += [s for b in detail["blocks"] for s in b["segments"]]
    return out


def test_an_epub_upload_gives_its_chapters_with_spoken_forms(tmp_path: Path) -> None:
    voice = FakeVoice()
    with make_client(tmp_path, voice) as client:
        pid = client.post("/v1/projects", json={"name": "Book"}).json()["id"]
        r = client.post(
            f"/v1/projects/{pid}/documents",
            files={"file": ("book.epub", epub_bytes(), "application/epub+zip")},
        )
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "epub"
        assert [c["title"] for c in r.json()["chapters"]] == [t for t, _ in CHAPTERS]
        last = segments(client, pid)[-2]
        assert last["text"] == "They came home on 03/04/2025."
        assert last["spoken_text"] == "They came home on March fourth, twenty twenty five."
        done = wait_finished(client, convert(client, pid)["id"])
        assert done["failed"] == 0
        assert "They came home on March fourth, twenty twenty five." in voice.calls


def test_documents_that_declare_xml_entities_are_refused_with_a_4xx(tmp_path: Path) -> None:
    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    with make_client(tmp_path, FakeVoice()) as client:
        pid = client.post("/v1/projects", json={"name": "Hostile"}).json()["id"]
        for name, data, kind in (
            ("xxe.docx", docx_with_entity_bytes(), docx_type),
            ("laughs.epub", epub_with_entities_bytes(), "application/epub+zip"),
        ):
            r = client.post(f"/v1/projects/{pid}/documents", files={"file": (name, data, kind)})
            assert r.status_code == 422, r.text
            assert "declares its own XML entities" in r.text
        assert client.get(f"/v1/projects/{pid}").json()["chapters"] == []


def test_unspeakable_segments_become_pauses_and_the_conversion_succeeds(tmp_path: Path) -> None:
    voice = FakeVoice()
    with make_client(tmp_path, voice) as client:
        project = new_project(client, "First line.\n\n.\n\n…\n\nLast line.", fmt="text")
        said = segments(client, project["id"])
        assert [s["spoken_text"] for s in said] == ["First line.", "", "", "Last line."]
        done = wait_finished(client, convert(client, project["id"])["id"])
        assert (done["done"], done["failed"]) == (4, 0)
        assert voice.calls.count('<break time="500ms"/>') == 2


def test_resynthesis_with_an_own_spoken_form(tmp_path: Path) -> None:
    voice = FakeVoice()
    with make_client(tmp_path, voice) as client:
        project = new_project(client, "Meet Dr. Nguyen at 9:30.", fmt="text")
        (segment,) = segments(client, project["id"])
        assert segment["spoken_text"] == "Meet Doctor Nguyen at nine thirty."
        wait_finished(client, convert(client, project["id"])["id"])
        url = f"/v1/segments/{segment['id']}/resynthesize"
        r = client.post(url, json={"spoken_text": "Meet Doctor Win at half past nine."})
        assert r.status_code == 202, r.text
        assert r.json()["segment"]["spoken_override"] is True
        assert r.json()["segment"]["text"] == "Meet Dr. Nguyen at 9:30."
        wait_finished(client, r.json()["conversion"]["id"])
        assert voice.calls[-1] == "Meet Doctor Win at half past nine."
        bad = client.post(url, json={"spoken_text": 'Wait <break time="soon"/>'})
        assert bad.status_code == 422 and "break" in bad.json()["detail"]
        # Correcting the text computes its spoken form again and drops the override.
        r = client.post(url, json={"text": "Meet Dr. Nguyen at 10:15."})
        assert r.json()["segment"]["spoken_text"] == "Meet Doctor Nguyen at ten fifteen."
        assert r.json()["segment"]["spoken_override"] is False


def test_ssml_in_a_pasted_document_and_invalid_ssml_says_where(tmp_path: Path) -> None:
    with make_client(tmp_path, FakeVoice()) as client:
        project = new_project(
            client, 'Say <say-as interpret-as="characters">abc</say-as> now.', fmt="text"
        )
        assert segments(client, project["id"])[0]["spoken_text"] == "Say a b c now."
        pid = client.post("/v1/projects", json={"name": "x"}).json()["id"]
        bad = client.post(
            f"/v1/projects/{pid}/documents",
            json={"text": "Fine.\n\nThen <break time='x'/> here.", "format": "text"},
        )
        assert bad.status_code == 422
        assert "line 3" in bad.json()["detail"] and "break" in bad.json()["detail"]


def test_the_lexicon_resource_applies_to_conversions(tmp_path: Path) -> None:
    voice = FakeVoice()
    with make_client(tmp_path, voice) as client:
        project = new_project(client, "NASA called Nguyen. Nguyen answered.", fmt="text")
        pid = project["id"]
        url = f"/v1/projects/{pid}/lexicon"
        added = client.post(url, json={"grapheme": "Nguyen", "phoneme": "ŋwiən"})
        assert added.status_code == 201, added.text
        alias = client.post(url, json={"grapheme": "NASA", "alias": "the space agency"})
        assert alias.status_code == 201
        both = client.post(url, json={"grapheme": "x", "alias": "a", "phoneme": "b"})
        assert both.status_code == 422 and "not both" in both.json()["detail"]
        neither = client.post(url, json={"grapheme": "X"})
        assert neither.status_code == 422
        assert neither.json()["detail"] == "'X': give an alias (words) or a phoneme (IPA)"
        listed = client.get(url).json()
        assert [e["grapheme"] for e in listed["items"]] == ["Nguyen", "NASA"]
        spoken = [s["spoken_text"] for s in segments(client, pid)]
        assert spoken[0] == (
            'the space agency called <phoneme alphabet="ipa" ph="ŋwiən">Nguyen</phoneme>.'
        )
        wait_finished(client, convert(client, pid)["id"])
        assert any('ph="ŋwiən"' in call for call in voice.calls)

        pls = client.get(f"/v1/projects/{pid}/lexicon.pls")
        assert pls.status_code == 200 and pls.headers["content-type"].startswith(
            "application/pls+xml"
        )
        assert b"<grapheme>Nguyen</grapheme>" in pls.content
        client.delete(f"{url}/{added.json()['id']}")
        assert "Nguyen answered." in [s["spoken_text"] for s in segments(client, pid)]
        imported = client.post(
            f"{url}/import", content=pls.content, headers={"content-type": "application/pls+xml"}
        )
        assert imported.status_code == 200 and imported.json()["total"] == 2
        bad = client.post(
            f"{url}/import", content=b"<lexicon>", headers={"content-type": "application/pls+xml"}
        )
        assert bad.status_code == 422 and "line" in bad.json()["detail"]
        missing = client.delete(f"{url}/999999")
        assert missing.status_code == 404


def test_nested_lists_past_the_limit_are_refused_not_dropped(tmp_path: Path) -> None:
    with make_client(tmp_path, FakeVoice(), max_nesting_depth=8) as client:
        pid = client.post("/v1/projects", json={"name": "x"}).json()["id"]
        doc = "".join("    " * d + "- level\n" for d in range(10)) + "\n# Later\n\nThe end.\n"
        r = client.post(f"/v1/projects/{pid}/documents", json={"text": doc, "format": "markdown"})
        assert r.status_code == 413 and "line 9" in r.json()["detail"]
        quotes = "".join(">" * d + " quote\n" for d in range(1, 21)) + "\nThe end.\n"
        r = client.post(
            f"/v1/projects/{pid}/documents", json={"text": quotes, "format": "markdown"}
        )
        assert r.status_code == 413 and "nested more than 8" in r.json()["detail"]


def test_a_document_past_its_deadline_is_refused_and_the_reader_replaced(tmp_path: Path) -> None:
    paragraph = "The river ran past the old mill, slowly, on 03/04/2025 at 9:30. " * 20
    prose = "\n\n".join([paragraph] * 2000)
    with make_client(tmp_path, FakeVoice(), parse_timeout_s=1.0, max_upload_bytes=4 << 20) as c:
        pid = c.post("/v1/projects", json={"name": "x"}).json()["id"]
        url = f"/v1/projects/{pid}/documents"
        slow = c.post(url, files={"file": ("big.txt", prose.encode(), "text/plain")})
        assert slow.status_code == 422 and "longer than 1 s" in slow.json()["detail"]
        fine = c.post(url, json={"text": "Still here.", "format": "text"})
        assert fine.status_code == 201, fine.text


def test_an_upload_reaches_its_reader_as_a_file_removed_after_the_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The document goes to the reader process as a file, never as bytes held by the API (five
    # megabytes held and pickled per upload made the API's memory grow upload after upload), and
    # the file is gone once the request is answered, refused or not.
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    given: list[bytes] = []
    parse_file = DocumentPool.parse_file

    async def read_as_file(
        self: DocumentPool, path: str | os.PathLike[str], **kwargs: Any
    ) -> ParsedDocument:
        given.append(Path(path).read_bytes())
        return await parse_file(self, path, **kwargs)

    async def read_as_bytes(self: DocumentPool, data: bytes, **kwargs: Any) -> ParsedDocument:
        raise AssertionError("the upload went to the reader as bytes")

    monkeypatch.setattr(DocumentPool, "parse_file", read_as_file)
    monkeypatch.setattr(DocumentPool, "parse", read_as_bytes)
    with make_client(tmp_path / "data", FakeVoice(), max_segments=3) as client:
        url = f"/v1/projects/{client.post('/v1/projects', json={'name': 'x'}).json()['id']}"
        url += "/documents"
        kept = client.post(url, files={"file": ("a.txt", b"One. Two.", "text/plain")})
        assert kept.status_code == 201, kept.text
        assert kept.json()["segments"] == 2
        refused = client.post(url, files={"file": ("b.txt", b"Go. " * 4, "text/plain")})
        assert refused.status_code == 413 and "3" in refused.json()["detail"]
        pasted = client.post(url, json={"text": "Three.", "format": "text"})
        assert pasted.status_code == 201, pasted.text
        assert given == [b"One. Two.", b"Go. " * 4, b"Three."]
        assert list(spool.iterdir()) == []
