"""Document formats: what a listener hears from an EPUB, a Word file, a web page and a PDF, and
the clear refusal for files that cannot be read. Fixtures are built on the fly (tests/docfixtures)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from docfixtures import (
    CHAPTERS,
    _rewrite,
    docx_bytes,
    docx_with_entity_bytes,
    encrypted_pdf_bytes,
    epub_bytes,
    epub_with_entities_bytes,
    pdf_bytes,
    zip_bomb_bytes,
)

from text_processing.formats import UploadError, read_upload
from text_processing.isolation import parse_document, parse_document_file
from text_processing.limits import DocumentLimits
from text_processing.structure import LimitError

LIMITS = DocumentLimits()


def heard(data: bytes, filename: str) -> list[tuple[str, list[str]]]:
    parsed = parse_document(data, filename=filename, content_type=None, limits=LIMITS)
    return [(c.title, [s.text for b in c.blocks for s in b.segments]) for c in parsed.chapters]


@pytest.mark.parametrize("version", [2, 3])
def test_epub_chapters_come_from_the_toc_in_spine_order_without_cover_or_copyright(
    version: int,
) -> None:
    chapters = heard(epub_bytes(version=version), "book.epub")
    assert [title for title, _ in chapters] == [title for title, _ in CHAPTERS]
    for (title, sentences), (_, expected) in zip(chapters, CHAPTERS, strict=True):
        assert sentences == [title, *expected]  # the chapter title once, then its text
    everything = " ".join(s for _, said in chapters for s in said)
    assert "Cover text" not in everything and "Copyright" not in everything


def test_epub_segments_carry_their_spoken_form() -> None:
    parsed = parse_document(epub_bytes(), filename="b.epub", content_type=None, limits=LIMITS)
    last = parsed.chapters[-1].blocks[1].segments[0]
    assert last.spoken == "They came home on March fourth, twenty twenty five."
    assert parsed.kind == "epub"


def test_docx_headings_lists_and_tables() -> None:
    chapters = heard(docx_bytes(), "notes.docx")
    assert [title for title, _ in chapters] == ["Field Notes", "Birds", "Trees"]
    assert chapters[1][1] == ["Birds", "We saw three kinds.", "Robin", "Wren"]
    assert chapters[2][1] == [
        "Trees",
        "Oaks",
        "Oaks grow slowly.",  # the footnote mark is not read here ...
        "Tree, Height",
        "Oak, 20 m",
        "Notes",
        "Some live for a thousand years.",  # ... its note is, at the end
    ]


def test_html_reads_the_main_content_only() -> None:
    page = (
        b"<html><head><title>T</title><script>var x = 1;</script></head><body>"
        b"<nav><a href='/'>Home</a> | <a href='/about'>About</a></nav>"
        b"<header>Site header</header><main><h1>Harbour news</h1><p>The boat left "
        b"<b>early</b>.</p><ul><li>One gull</li><li>Two gulls</li></ul></main>"
        b"<aside>Related links</aside><footer>Footer text</footer></body></html>"
    )
    chapters = heard(page, "news.html")
    assert chapters == [
        ("Harbour news", ["Harbour news", "The boat left early.", "One gull", "Two gulls"])
    ]


def test_pdf_drops_running_headers_page_numbers_and_hyphenation() -> None:
    pages = []
    starts = ["It began", "It went on", "It ended"]
    for n, tail in enumerate(["ated word.", "ated phrase.", "ated line."], 1):
        pages.append(
            [
                "The Quiet Harbour",
                f"{starts[n - 1]} in the story and it keeps going with a long line of",
                "text until the sentence is finished here. A second sentence follows the",
                "first one and ends with a hyphen-",
                tail,
                str(n),
            ]
        )
    chapters = heard(pdf_bytes(pages), "story.pdf")
    said = [s for _, sentences in chapters for s in sentences]
    assert not any(s == "The Quiet Harbour" for s in said)
    assert not any(s.strip().isdigit() for s in said)
    assert "first one and ends with a hyphenated word." in " ".join(said)
    assert sum(s.startswith(("It began", "It went on", "It ended")) for s in said) == 3


@pytest.mark.parametrize(
    ("data", "name", "status", "message"),
    [
        (pdf_bytes([[], []]), "scan.pdf", 422, r"no text layer .*2 page\(s\).*OCR"),
        (encrypted_pdf_bytes(), "secret.pdf", 422, r"encrypted with a password"),
        (b"%PDF-1.4\n garbage", "broken.pdf", 422, r"the PDF cannot be read"),
        (
            b"PK\x03\x04 not really a zip",
            "book.epub",
            415,
            r"named as EPUB but its content is a ZIP|damaged",
        ),
        (zip_bomb_bytes("epub"), "bomb.epub", 413, r"unpacks to 200\.0 MB.*zip bomb"),
        (zip_bomb_bytes("docx"), "bomb.docx", 413, r"unpacks to 200\.0 MB.*zip bomb"),
        (
            b"Just some text.",
            "report.pdf",
            415,
            r"'report\.pdf' is named as PDF but its content is text",
        ),
        (epub_bytes(), "notes.txt", 415, r"named as text but its content is an EPUB"),
        (b"\xd0\xcf\x11\xe0rest", "old.docx", 415, r"old or password-protected Office file"),
    ],
)
def test_unreadable_files_get_a_4xx_naming_the_problem(
    data: bytes, name: str, status: int, message: str
) -> None:
    with pytest.raises(UploadError, match=message) as info:
        read_upload(data, filename=name, content_type=None, limits=LIMITS)
    assert info.value.status == status


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (docx_with_entity_bytes(), "xxe.docx", r"word/document\.xml declares its own XML entit"),
        (
            _rewrite(
                docx_bytes(), "word/document.xml", b"?>\n", b'?>\n<!DOCTYPE w SYSTEM "e.dtd">\n'
            ),
            "dtd.docx",
            r"word/document\.xml has a DOCTYPE declaration \(line 2\)",
        ),
        (epub_with_entities_bytes(), "laughs.epub", r"part01\.xhtml declares its own XML entit"),
        (
            b'<!DOCTYPE html [<!ENTITY h "hi">]><html><body><p>&h; there</p></body></html>',
            "page.html",
            r"DOCTYPE declares its own entities \(line 1\)",
        ),
    ],
)
def test_xml_that_declares_entities_is_refused_not_read_with_holes(
    data: bytes, name: str, message: str
) -> None:
    # A parser that does not expand entities drops their text; one that does can be attacked.
    with pytest.raises(UploadError, match=message) as info:
        parse_document(data, filename=name, content_type=None, limits=LIMITS)
    assert info.value.status == 422
    assert "not expand" in str(info.value)


def test_an_epub_with_the_public_xhtml_doctype_is_read() -> None:
    doctype = (
        b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        b'"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'
    )
    data = _rewrite(epub_bytes(), "EPUB/part01.xhtml", b"<!DOCTYPE html>", doctype)
    assert heard(data, "book.epub")[-1][1][-1] == "The end."


def test_content_decides_when_the_name_says_nothing() -> None:
    got = read_upload(
        epub_bytes(), filename=None, content_type="application/octet-stream", limits=LIMITS
    )
    assert got.kind == "epub" and got.fmt == "markdown"


@pytest.mark.parametrize(
    ("doc", "fmt", "line"),
    [
        ("".join("    " * d + "- level\n" for d in range(12)) + "\nThe end.\n", "md", 11),
        ("".join(">" * d + " quote\n" for d in range(1, 22)) + "\nThe end.\n", "md", None),
    ],
)
def test_nesting_past_the_limit_is_refused_naming_the_line_not_dropped(
    doc: str, fmt: str, line: int | None
) -> None:
    limits = DocumentLimits(max_depth=8)
    with pytest.raises(LimitError, match=r"line \d+: lists or block quotes are nested more than 8"):
        parse_document(doc.encode(), filename=f"deep.{fmt}", content_type=None, limits=limits)


def test_nesting_within_the_limit_loses_nothing() -> None:
    doc = "".join("    " * d + f"- level {d}\n" for d in range(6)) + "\nThe end.\n"
    parsed = parse_document(doc.encode(), filename="ok.md", content_type=None, limits=LIMITS)
    said = [s.text for c in parsed.chapters for b in c.blocks for s in b.segments]
    assert said[-1] == "The end." and len(said) == 7


def test_html_lists_past_the_limit_are_refused() -> None:
    html = "<ul><li>x" * 30 + "</li></ul>" * 30
    with pytest.raises(LimitError, match="nested more than 8"):
        parse_document(
            html.encode(),
            filename="deep.html",
            content_type=None,
            limits=DocumentLimits(max_depth=8),
        )


def test_ssml_document_keeps_its_markup_for_the_spoken_form() -> None:
    doc = (
        '<speak><p><s>Hello <sub alias="World Wide Web">WWW</sub>.</s>'
        '<s>Wait<break time="1s"/> now.</s></p><p>Second paragraph.</p></speak>'
    )
    parsed = parse_document(doc.encode(), filename="a.ssml", content_type=None, limits=LIMITS)
    segments = [s for c in parsed.chapters for b in c.blocks for s in b.segments]
    assert [s.spoken for s in segments] == [
        "Hello World Wide Web.",
        'Wait<break time="1000ms"/> now.',
        "Second paragraph.",
    ]


# ---------------------------------------------------------------------------------------------
# Markdown without a format hint (pasted text, a file without an extension): issue 11

from text_processing.formats import looks_like_markdown  # noqa: E402

MARKDOWN_SAMPLES = [
    "# Chapter one\n\nIt began.",
    "Chapter one\n===========\n\nIt began.",
    "It was **very** late. See [the map](https://example.com/map).",
    "Shopping:\n\n- bread\n- milk\n\nThen *home*.",
    "> A quote\n\nAnd `code` here.",
]
PLAIN_SAMPLES = [
    "Chapter one\n\nIt began at 3 * 4 = 12 o'clock.",
    "Dear Sam,\n\n- Anna\n",
    "Prices rose 5% (see note 2). Nobody knew why.",
    "She wrote #hashtags all day. Then she slept.",
]


@pytest.mark.parametrize("text", MARKDOWN_SAMPLES)
def test_markdown_is_recognised_without_a_hint(text: str) -> None:
    assert looks_like_markdown(text)
    parsed = parse_document(text.encode(), filename=None, content_type=None, limits=LIMITS)
    spoken = " ".join(s.text for c in parsed.chapters for b in c.blocks for s in b.segments)
    # What a listener hears carries no markup and no link address.
    assert "**" not in spoken and "https://" not in spoken and "# " not in spoken


@pytest.mark.parametrize("text", PLAIN_SAMPLES)
def test_plain_text_is_not_taken_for_markdown(text: str) -> None:
    assert not looks_like_markdown(text)


def test_a_hint_wins_over_the_content() -> None:
    parsed = parse_document(
        b"# Not a heading\n", filename="a.txt", content_type=None, limits=LIMITS
    )
    assert parsed.chapters[0].blocks[0].segments[0].text == "# Not a heading"


def test_a_document_read_from_its_file_is_the_document_read_from_its_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(epub_bytes())
    from_file = parse_document_file(path, filename="b.epub", content_type=None, limits=LIMITS)
    assert from_file == parse_document(
        epub_bytes(), filename="b.epub", content_type=None, limits=LIMITS
    )
    assert [c.title for c in from_file.chapters] == [title for title, _ in CHAPTERS]
