"""The document splitter: what a listener hears, chapter by chapter and sentence by sentence."""

from __future__ import annotations

import logging
import random
import re
import time

import pytest

from contract import limits
from text_processing.formats import UploadError, read_upload
from text_processing.limits import DocumentLimits
from text_processing.structure import ChapterSpec, DocumentError, SegmentSpec
from text_processing.structure import split_document as _split

MB = 1024 * 1024


def split_document(
    doc: str, *, fmt: str, speak_headings: bool = True, **limits: int
) -> list[ChapterSpec]:
    return _split(
        doc,
        fmt=fmt,  # type: ignore[arg-type]
        limits=DocumentLimits(**limits),  # type: ignore[arg-type]
        speak_headings=speak_headings,
    )


def decode_upload(
    data: bytes, *, filename: str | None, content_type: str | None, max_bytes: int
) -> tuple[str, str]:
    got = read_upload(
        data,
        filename=filename,
        content_type=content_type,
        limits=DocumentLimits(max_bytes=max_bytes),
    )
    return got.text, got.fmt


def sentences(chapters: list[ChapterSpec]) -> list[str]:
    return [s.text for c in chapters for b in c.blocks for s in b.segments]


def blocks(chapters: list[ChapterSpec]) -> list[list[str]]:
    return [[s.text for s in b.segments] for c in chapters for b in c.blocks]


def all_segments(chapters: list[ChapterSpec]) -> list[SegmentSpec]:
    return [s for c in chapters for b in c.blocks for s in b.segments]


def assert_spans_valid(doc: str, chapters: list[ChapterSpec]) -> None:
    """Every span is non-empty, trimmed, in reading order and does not overlap the previous."""
    prev_end = 0
    for seg in all_segments(chapters):
        source = doc[seg.start : seg.end]
        assert source, seg
        assert source == source.strip(), seg
        assert seg.start >= prev_end, seg
        assert seg.text and seg.text == seg.text.strip()
        prev_end = seg.end


# ---------------------------------------------------------------------------------------------
# Sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Smith arrived. He sat down.", ["Dr. Smith arrived.", "He sat down."]),
        ("It costs 3.50 dollars. Cheap!", ["It costs 3.50 dollars.", "Cheap!"]),
        (
            "Bring fruit, e.g. apples and pears. Thanks.",
            ["Bring fruit, e.g. apples and pears.", "Thanks."],
        ),
        (
            "She moved to the U.S. in 2010. It rained.",
            ["She moved to the U.S. in 2010.", "It rained."],
        ),
        ('He said, "Stop." Then left.', ['He said, "Stop."', "Then left."]),
        ("She said “Bye.” Then nothing.", ["She said “Bye.”", "Then nothing."]),
        (
            "Mr. and Mrs. Jones came at 5 p.m. today. Fine.",
            ["Mr. and Mrs. Jones came at 5 p.m. today.", "Fine."],
        ),
        ("Is it? Yes! Good.", ["Is it?", "Yes!", "Good."]),
        ("See section 2.1 for details. Done.", ["See section 2.1 for details.", "Done."]),
        ("A sentence without a final stop", ["A sentence without a final stop"]),
        ("Yes. Yes. Yes.", ["Yes.", "Yes.", "Yes."]),
    ],
)
def test_sentences_split_where_a_reader_would(text: str, expected: list[str]) -> None:
    chapters = split_document(text, fmt="text")
    assert sentences(chapters) == expected
    assert_spans_valid(text, chapters)


def test_segment_spans_point_into_the_original_text() -> None:
    doc = "First line here.\n\nDr. Smith paid 3.50. He left   quickly.\nThe end."
    chapters = split_document(doc, fmt="text")
    segs = all_segments(chapters)
    assert [doc[s.start : s.end] for s in segs] == [
        "First line here.",
        "Dr. Smith paid 3.50.",
        "He left   quickly.",
        "The end.",
    ]
    # What is spoken is the source with its whitespace collapsed.
    for s in segs:
        assert s.text == " ".join(doc[s.start : s.end].split())


def test_long_sentence_is_cut_at_clauses_then_spaces_never_mid_word() -> None:
    clause = "the rain kept falling on the quiet little town near the sea"
    doc = ", ".join([clause] * 12) + "; and then " + " ".join(["word"] * 150) + "."
    chapters = split_document(doc, fmt="text", max_segment_chars=120)
    segs = all_segments(chapters)
    assert len(segs) > 5
    assert all(len(s.text) <= 120 for s in segs)
    assert segs[0].text.endswith(",")  # a clause boundary was preferred
    words = set(doc.replace(",", " ").replace(";", " ").replace(".", " ").split())
    for s in segs:
        for w in re.sub(r"[,;.]", " ", s.text).split():
            assert w in words  # no word was cut in two
    assert " ".join(sentences(chapters)) == " ".join(doc.split())
    assert_spans_valid(doc, chapters)


def test_dash_is_a_clause_boundary() -> None:
    doc = " ".join(["alpha"] * 15) + " — " + " ".join(["beta"] * 15) + "."
    segs = sentences(split_document(doc, fmt="text", max_segment_chars=100))
    assert segs[0].endswith("—")
    assert all(len(s) <= 100 for s in segs)


def test_a_word_longer_than_the_limit_is_kept_whole_when_it_fits_elsewhere() -> None:
    doc = "Visit " + "x" * 30 + " now and " + "y" * 30 + " later."
    segs = sentences(split_document(doc, fmt="text", max_segment_chars=40))
    assert "x" * 30 in " ".join(segs).split()
    assert all(len(s) <= 40 for s in segs)


# ---------------------------------------------------------------------------------------------
# Markdown structure


def test_markdown_headings_start_chapters() -> None:
    doc = (
        "Some preface text.\n\n"
        "# Part *One*\n\nFirst paragraph. It has two sentences.\n\nSecond paragraph.\n\n"
        "## Chapter 2\n\n### A subheading\n\nMore text.\n"
    )
    chapters = split_document(doc, fmt="markdown")
    assert [c.title for c in chapters] == ["Some preface text.", "Part One", "Chapter 2"]
    assert blocks(chapters) == [
        ["Some preface text."],
        ["Part One"],
        ["First paragraph.", "It has two sentences."],
        ["Second paragraph."],
        ["Chapter 2"],
        ["A subheading"],
        ["More text."],
    ]
    assert_spans_valid(doc, chapters)


def test_headings_need_not_be_spoken() -> None:
    doc = "# Title\n\n## One\n\nText one.\n\n## Two\n\nText two.\n"
    chapters = split_document(doc, fmt="markdown", speak_headings=False)
    assert [c.title for c in chapters] == ["One", "Two"]  # "Title" had nothing to speak
    assert blocks(chapters) == [["Text one."], ["Text two."]]


def test_setext_headings_start_chapters() -> None:
    doc = (
        "Intro.\n\nThe Beginning\n=============\n\nOnce upon a time.\n\n"
        "The Middle\n----------\n\nThen.\n"
    )
    chapters = split_document(doc, fmt="markdown")
    assert [c.title for c in chapters] == ["Intro.", "The Beginning", "The Middle"]
    assert sentences(chapters) == [
        "Intro.",
        "The Beginning",
        "Once upon a time.",
        "The Middle",
        "Then.",
    ]


def test_document_without_headings_is_one_chapter_titled_by_its_first_line() -> None:
    doc = "A quiet morning\nin the hills.\n\nNothing happened."
    chapters = split_document(doc, fmt="markdown")
    assert [c.title for c in chapters] == ["A quiet morning"]
    assert blocks(chapters) == [["A quiet morning in the hills."], ["Nothing happened."]]


def test_chapter_titles_from_unspeakable_or_long_first_lines() -> None:
    doc = "![logo](logo.png)\nWelcome to the docs.\nRead on.\n\n# Next\n"
    chapters = split_document(doc, fmt="markdown")
    assert [c.title for c in chapters] == ["Welcome to the docs.", "Next"]
    assert sentences(chapters)[:2] == ["Welcome to the docs.", "Read on."]
    title = split_document("word " * 60, fmt="text")[0].title
    assert len(title) <= 100
    assert title.endswith("word…")


@pytest.mark.parametrize(
    ("data", "name", "title"),
    [
        (b'<speak>Hello <break time="5s"/> there. How are you?</speak>', "a.ssml", "Hello there."),
        (b'Hi <sub alias="World Wide Web">WWW</sub> users.\n', "b.txt", "Hi World Wide Web users."),
        (b'# Big <break time="1s"/> News\n\nText.\n', "c.md", "Big News"),
        (
            b"It was a dark and stormy night. The rain fell in torrents, except at occasional "
            b"intervals, when it was checked by a violent gust of wind.\n\nMore.\n",
            "d.txt",
            "It was a dark and stormy night.",
        ),
        (
            b"In the beginning of the long and winding story that nobody ever finished telling, "
            b"there was a cat who lived by the sea.\n",
            "e.txt",
            "In the beginning of the long and winding story that nobody…",
        ),
    ],
)
def test_a_chapter_title_is_plain_words_and_short(data: bytes, name: str, title: str) -> None:
    # Titles name chapters in the UI and files in a ZIP export: no markup, no whole paragraph.
    doc = read_upload(data, filename=name, content_type=None, limits=DocumentLimits())
    chapters = split_document(doc.text, fmt=doc.fmt)
    assert chapters[0].title == title


def test_list_items_are_blocks_and_code_is_not_spoken() -> None:
    doc = (
        "Steps:\n\n"
        "- Open the *box*.\n"
        "- Take out the manual,\n  then read it.\n"
        "  1. Nested item.\n\n"
        "```python\nprint('do not speak me')\n```\n\n"
        "    indented code is code too\n\n"
        "~~~\nnor me\n~~~\n\n"
        "Done.\n"
    )
    chapters = split_document(doc, fmt="markdown")
    assert blocks(chapters) == [
        ["Steps:"],
        ["Open the box."],
        ["Take out the manual, then read it."],
        ["Nested item."],
        ["Done."],
    ]
    assert "print" not in " ".join(sentences(chapters))
    assert_spans_valid(doc, chapters)


def test_an_unclosed_fence_hides_the_rest_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    doc = "Before.\n\n```\nsome code\n\nAfter.\n"
    with caplog.at_level(logging.WARNING, logger="text_processing.structure.blocks"):
        chapters = split_document(doc, fmt="markdown")
    assert sentences(chapters) == ["Before."]
    assert "never closed" in caplog.text and "line 3" in caplog.text


@pytest.mark.parametrize(
    ("markdown", "spoken"),
    [
        ("Some **bold** and *italic* and ***both***.", "Some bold and italic and both."),
        (
            "Some __bold__ and _italic_ words, snake_case_name kept.",
            "Some bold and italic words, snake_case_name kept.",
        ),
        ("Read [the guide](https://example.com/a_(b)) now.", "Read the guide now."),
        ("Read [the guide][ref] now.", "Read the guide now."),
        ("Look ![a cat](cat.png) here.", "Look here."),
        ("Run `make *all*` first.", "Run make *all* first."),
        ("Hello <b>world</b><br>again.", "Hello world again."),
        ("Fish &amp; chips &lt;3.", "Fish & chips <3."),
        ("Not \\*emphasis\\*.", "Not *emphasis*."),
        ("~~Old~~ new.", "Old new."),
        ("A note.[^1]", "A note."),
        ("> Quoted *wisdom*.", "Quoted wisdom."),
        ("Mail <someone@example.com> today.", "Mail someone@example.com today."),
        ("x<!-- hidden -->y", "xy"),
    ],
)
def test_inline_markdown_is_not_spoken(markdown: str, spoken: str) -> None:
    chapters = split_document(markdown, fmt="markdown")
    assert " ".join(sentences(chapters)) == spoken
    assert_spans_valid(markdown, chapters)


def test_spans_cover_the_stripped_markup_at_their_edges() -> None:
    doc = "Intro.\n\n**Bold start.** See [the link](http://x.org). End `code`."
    segs = all_segments(split_document(doc, fmt="markdown"))
    assert [doc[s.start : s.end] for s in segs] == [
        "Intro.",
        "**Bold start.**",
        "See [the link](http://x.org).",
        "End `code`.",
    ]
    assert [s.text for s in segs] == ["Intro.", "Bold start.", "See the link.", "End code."]


def test_tables_front_matter_and_html_comments() -> None:
    doc = (
        "---\ntitle: Notes\nauthor: me\n---\n"
        "# Notes\n\n"
        "| Name | Age |\n|------|-----|\n| Ann | 31 |\n\n"
        "<!--\na comment\n-->\n\n"
        "[ref]: https://example.com\n\n"
        "After.\n"
    )
    chapters = split_document(doc, fmt="markdown")
    assert [c.title for c in chapters] == ["Notes"]
    assert blocks(chapters) == [["Notes"], ["Name, Age"], ["Ann, 31"], ["After."]]
    assert_spans_valid(doc, chapters)


# ---------------------------------------------------------------------------------------------
# Plain text


def test_plain_text_is_one_chapter_with_blank_line_blocks() -> None:
    doc = (
        "The Title\n\nFirst paragraph, wrapped\nacross two lines. Second sentence.\n\n\n"
        "# Not a heading.\n"
    )
    chapters = split_document(doc, fmt="text")
    assert [c.title for c in chapters] == ["The Title"]
    assert blocks(chapters) == [
        ["The Title"],
        ["First paragraph, wrapped across two lines.", "Second sentence."],
        ["# Not a heading."],
    ]


def test_plain_text_chapter_lines_start_chapters() -> None:
    doc = (
        "My Book\n\nBy Me.\n\n"
        "CHAPTER ONE\n\nIt began.\n\n"
        "Chapter 2: The Middle\n\nIt went on.\n\n"
        "CHAPTER III.\nThe End\n\nIt ended.\n\n"
        "Chapter 4\nThe rain fell all day. Nobody came.\n"
    )
    chapters = split_document(doc, fmt="text")
    assert [c.title for c in chapters] == [
        "My Book",
        "CHAPTER ONE",
        "Chapter 2: The Middle",
        "CHAPTER III: The End",
        "Chapter 4",
    ]
    assert blocks(chapters)[-2:] == [["Chapter 4"], ["The rain fell all day.", "Nobody came."]]


def test_plain_text_mentions_of_chapters_in_prose_are_not_headings() -> None:
    doc = "Intro.\n\nChapter 3 describes the method in detail.\n"
    assert [c.title for c in split_document(doc, fmt="text")] == ["Intro."]


def test_plain_text_without_blank_lines_takes_each_line_as_a_paragraph() -> None:
    doc = "One sentence here.\nAnother line here.\nA third one."
    assert blocks(split_document(doc, fmt="text")) == [
        ["One sentence here."],
        ["Another line here."],
        ["A third one."],
    ]
    wrapped = "This paragraph was wrapped\nat a fixed width so that\nno line ends a sentence."
    assert blocks(split_document(wrapped, fmt="text")) == [
        ["This paragraph was wrapped at a fixed width so that no line ends a sentence."]
    ]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_crlf_and_bom_input_keeps_offsets(fmt: str) -> None:
    doc = "\ufeffTitle line\r\n\r\nFirst sentence. Second\r\nsentence.\r\n"
    chapters = split_document(doc, fmt=fmt)  # type: ignore[arg-type]
    assert chapters[0].title == "Title line"
    segs = all_segments(chapters)
    assert [s.text for s in segs] == ["Title line", "First sentence.", "Second sentence."]
    assert [doc[s.start : s.end] for s in segs] == [
        "Title line",
        "First sentence.",
        "Second\r\nsentence.",
    ]


# ---------------------------------------------------------------------------------------------
# Errors and limits


@pytest.mark.parametrize(
    ("doc", "fmt"),
    [
        ("", "text"),
        ("   \n\n\t\n", "text"),
        ("```\ncode only\n```\n", "markdown"),
        ("<!-- nothing -->\n\n---\n\n![img](x.png)\n", "markdown"),
    ],
)
def test_nothing_to_speak(doc: str, fmt: str) -> None:
    with pytest.raises(DocumentError, match=r"^the document has no text to speak$"):
        split_document(doc, fmt=fmt)  # type: ignore[arg-type]


def test_too_many_segments_names_the_limit() -> None:
    doc = " ".join(f"Sentence number {i} is here." for i in range(30))
    with pytest.raises(DocumentError, match="more than 20 sentences"):
        split_document(doc, fmt="text", max_segments=20)
    assert len(sentences(split_document(doc, fmt="text", max_segments=30))) == 30


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="markdown"):
        split_document("x", fmt="html")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_segment_chars"):
        split_document("x", fmt="text", max_segment_chars=5)


# ---------------------------------------------------------------------------------------------
# Speed


def _prose(rng: random.Random, words: int) -> str:
    vocab = re.findall(
        r"\S+",
        "the a river town morning light quietly walked toward old bridge where children "
        "played and Dr. Smith paid 3.50 for bread e.g. rye in the U.S. market",
    )
    out: list[str] = []
    for i in range(words):
        w = rng.choice(vocab)
        out.append(w.capitalize() if i == 0 or out[-1].endswith(".") else w)
        if rng.random() < 0.07:
            out[-1] += rng.choice([".", ".", "?", ","])
    return " ".join(out) + "."


def test_a_2000_word_document_splits_well_under_a_second() -> None:
    rng = random.Random(1)
    doc = "\n\n".join(
        (f"## Chapter {i // 5 + 1}\n\n" if i % 5 == 0 else "") + _prose(rng, 100) for i in range(20)
    )
    assert len(doc.split()) >= 2000
    began = time.process_time()
    chapters = split_document(doc, fmt="markdown")
    assert time.process_time() - began < 0.5
    assert len(chapters) == 4
    assert len(sentences(chapters)) > 100
    assert_spans_valid(doc, chapters)


def test_a_large_document_loses_nothing() -> None:
    rng = random.Random(2)
    parts: list[str] = []
    size = 0
    while size < MB // 4:
        parts.append(_prose(rng, rng.randint(20, 300)))
        size += len(parts[-1]) + 2
    doc = "\n\n".join(parts)
    # How its time grows with the size is test_text_fuzz.py's to prove (by CPU time ratios).
    chapters = split_document(doc, fmt="text")
    assert " ".join(sentences(chapters)) == " ".join(doc.split())  # nothing lost


def test_one_huge_paragraph_does_not_stall() -> None:
    rng = random.Random(3)
    doc = _prose(rng, 40_000)  # about 250 KB without a blank line
    began = time.process_time()
    chapters = split_document(doc, fmt="text")
    assert time.process_time() - began < 5
    assert " ".join(sentences(chapters)) == " ".join(doc.split())


# ---------------------------------------------------------------------------------------------
# Upload decoding


@pytest.mark.parametrize(
    ("filename", "content_type", "fmt"),
    [
        ("book.txt", None, "text"),
        ("notes.md", "application/octet-stream", "markdown"),
        ("NOTES.MARKDOWN", None, "markdown"),
        ("C:\\Users\\me\\story.Md", None, "markdown"),
        (None, "text/markdown; charset=utf-8", "markdown"),
        (None, "text/x-markdown", "markdown"),
        (None, "text/plain", "text"),
        (None, None, "markdown"),  # no hint: the content decides, and "# Hi" is a heading
        ("README", "text/markdown", "markdown"),
        ("README", None, "markdown"),
    ],
)
def test_upload_format_from_extension_then_content_type(
    filename: str | None, content_type: str | None, fmt: str
) -> None:
    text, got = decode_upload(b"# Hi\n", filename=filename, content_type=content_type, max_bytes=MB)
    assert (text, got) == ("# Hi\n", fmt)


def test_upload_strips_bom_and_normalises_newlines() -> None:
    text, _ = decode_upload(
        "\ufeffOne\r\nTwo\rThree\nFour\fFive".encode(),
        filename="a.txt",
        content_type=None,
        max_bytes=MB,
    )
    assert text == "One\nTwo\nThree\nFour\nFive"


def test_upload_accepts_utf16_with_a_bom() -> None:
    data = "Héllo\r\nworld".encode("utf-16")
    assert decode_upload(data, filename="a.txt", content_type=None, max_bytes=MB) == (
        "Héllo\nworld",
        "text",
    )


@pytest.mark.parametrize(
    ("data", "filename", "content_type", "message"),
    [
        (b"", "a.txt", None, r"the file is empty"),
        (b"x" * 101, "a.txt", None, r"too large: .*over the limit of 100 bytes"),
        (b"PK\x03\x04\x00\x00binary", "a.txt", None, r"'a\.txt' is named as text but its content"),
        (b"\x00\x00binary", "a.txt", None, r"looks binary \(it contains NUL bytes\)"),
        (b"\x01\x02\x03\x04\x05\x06ab", "a.txt", None, r"looks binary .*control characters"),
        (b"caf\xe9 au lait", "a.txt", None, r"not valid UTF-8 .*0xE9 at byte offset 3 \(line 1\)"),
        (b"ok\nok\n\xff", "a.md", None, r"byte offset 6 \(line 3\).*save the file as UTF-8"),
        (b"%PDF-1.7", "paper.pdf", None, r"the PDF cannot be read \(damaged"),
        (
            b"text",
            "a.docx",
            "text/plain",
            r"'a\.docx' is named as Word.* its content is text",
        ),
        (b"text", None, "application/pdf", r"named as PDF but its content is text"),
        (b"text", "a.odt", None, r"'\.odt' are not supported; upload a \.txt, \.md"),
        (b"text", None, "image/png", r"content type 'image/png' is not supported"),
    ],
)
def test_upload_refusals_say_what_to_do(
    data: bytes, filename: str | None, content_type: str | None, message: str
) -> None:
    with pytest.raises(UploadError, match=message) as info:
        decode_upload(data, filename=filename, content_type=content_type, max_bytes=100)
    assert isinstance(info.value, ValueError)


def test_too_large_message_gives_sizes_a_person_reads() -> None:
    with pytest.raises(UploadError) as info:
        decode_upload(b"x" * (6 * MB), filename="a.txt", content_type=None, max_bytes=5 * MB)
    assert "6.0 MB" in str(info.value) and "5.0 MB" in str(info.value)
    assert str(5 * MB) in str(info.value)


def test_upload_then_split_end_to_end() -> None:
    data = "\ufeff# Story\r\n\r\nIt was late. Dr. Who knocked.\r\n".encode()
    text, fmt = decode_upload(data, filename="story.md", content_type=None, max_bytes=MB)
    chapters = split_document(text, fmt=fmt)
    assert chapters[0].title == "Story"
    assert [text[s.start : s.end] for s in all_segments(chapters)] == [
        "Story",
        "It was late.",
        "Dr. Who knocked.",
    ]


# ---------------------------------------------------------------------------------------------
# Sentence length: one row per sentence up to the synthesis limit (issue 11)


def _long_sentence(chars: int) -> str:
    """One sentence of clauses, as long as fits in ``chars`` (at least ``chars - 70``)."""
    clause = "the rain kept falling on the quiet little town near the grey sea"
    sentence = "It was late, and " + clause + "."
    while len(sentence) + len(clause) + 2 <= chars:
        sentence = sentence[:-1] + ", " + clause + "."
    return sentence


@pytest.mark.parametrize("length", [480, 800, 1_500, limits.MAX_SEGMENT_CHARS])
def test_a_sentence_up_to_the_synthesis_limit_stays_one_segment(length: int) -> None:
    sentence = _long_sentence(length)
    assert len(sentence) > 400
    doc = f"Before it.\n\n{sentence} After it."
    segs = sentences(split_document(doc, fmt="text"))
    assert segs == ["Before it.", sentence, "After it."]


def test_a_sentence_over_the_synthesis_limit_is_cut_at_clauses_below_it() -> None:
    sentence = _long_sentence(2 * limits.MAX_SEGMENT_CHARS + 300)
    segs = sentences(split_document(sentence, fmt="text"))
    assert len(segs) == 3
    assert all(len(s) <= limits.MAX_SEGMENT_CHARS for s in segs)
    assert all(s.endswith((",", ".")) for s in segs)  # at clause boundaries, not mid-clause
    assert " ".join(segs) == sentence


def test_a_sentence_whose_spoken_form_outgrows_the_limit_is_cut_until_it_fits() -> None:
    # 1,500 written characters of numbers read out as far more than 2,000 spoken ones.
    numbers = ", ".join(f"{n:,}" for n in range(1_234_567, 1_234_567 + 150))
    sentence = f"The counts were {numbers}."
    assert len(sentence) < limits.MAX_SEGMENT_CHARS
    chapters = split_document(sentence, fmt="text")
    segs = all_segments(chapters)
    assert len(segs) > 1
    assert all(len(s.spoken) <= limits.MAX_SEGMENT_CHARS for s in segs)
    assert " ".join(s.text for s in segs) == sentence
    assert_spans_valid(sentence, chapters)
