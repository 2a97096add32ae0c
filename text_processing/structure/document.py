"""A document's text → chapters → blocks → segments, with limits checked while splitting.

Every segment keeps ``start``/``end`` character offsets into the text it was split from, so
``text[start:end]`` is the sentence as written (Markdown markup included) while
``SegmentSpec.text`` is it without markup and ``SegmentSpec.spoken`` its spoken form.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator

import pysbd

from text_processing.limits import DocumentLimits
from text_processing.ssml import SsmlError, has_markup
from text_processing.ssml import parse as parse_ssml
from text_processing.structure import blocks as blocks_
from text_processing.structure.inline import SPACES, Mapped, clean
from text_processing.structure.model import (
    BlockSpec,
    ChapterSpec,
    DocFormat,
    DocumentError,
    LimitError,
    SegmentSpec,
    TooManySegmentsError,
)
from text_processing.structure.sentences import segmenter, sentence_spans, split_long

log = logging.getLogger(__name__)

TITLE_MAX_CHARS = 100
# A title made from untitled text: its first sentence, cut to this (it names files on export).
FIRST_SENTENCE_TITLE_MAX_CHARS = 60
# The shortest piece a long sentence is cut into while its spoken form is too long.
_MIN_PIECE_CHARS = 20
UNTITLED = "Untitled"
_OPEN_TAG = re.compile(r"<(say-as|sub|phoneme|prosody)\b[^<>]{0,2000}(?<!/)>")
_CLOSE_TAG = re.compile(r"</(say-as|sub|phoneme|prosody)\s*>")
_ANY_TAG = re.compile(r"<[^<>]{0,2000}>")

SpokenForm = Callable[[str], str]


def _plain(text: str) -> str:
    """The words of ``text`` without SSML markup: a ``<sub>`` gives its alias, a ``<break>``
    nothing, whitespace collapsed."""
    if has_markup(text):
        try:
            text = "".join(piece.text for piece in parse_ssml(text))
        except SsmlError:  # the segments report the error with its line; the title only reads
            text = _ANY_TAG.sub(" ", text)
    return SPACES.sub(" ", text).strip()


def _title(text: str, *, first_sentence: bool = False, seg: pysbd.Segmenter | None = None) -> str:
    """A chapter title: plain words (no markup), at most :data:`TITLE_MAX_CHARS`, cut at a word
    with "…". With ``first_sentence`` (a title made from the chapter's text, not a heading),
    only its first sentence, at most :data:`FIRST_SENTENCE_TITLE_MAX_CHARS`."""
    text = _plain(text)
    limit = TITLE_MAX_CHARS
    if first_sentence:
        first = next(sentence_spans(text, seg=seg), None)
        text = text[first[0] : first[1]] if first else text
        limit = FIRST_SENTENCE_TITLE_MAX_CHARS
    if len(text) <= limit:
        return text or UNTITLED
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > 0 else limit - 1].rstrip(" ,;:") + "…"


def _first_line(mt: Mapped, ranges: list[tuple[int, int]]) -> str:
    """The text of the block's first source line that has any (an image-only line has none)."""
    line_end = next(b for _, b in ranges if b > mt.index[0])
    n = next((i for i, pos in enumerate(mt.index) if pos >= line_end), len(mt.index))
    return mt.text[:n]


def _open_elements(text: str) -> int:
    return len(_OPEN_TAG.findall(text)) - len(_CLOSE_TAG.findall(text))


def _merged_spans(text: str, spans: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sentence spans, joined where a sentence boundary fell inside an SSML element (a ``<sub
    alias="U.S. Army">``), so every segment holds whole elements."""
    pending: tuple[int, int] | None = None
    for a, b in spans:
        span = (pending[0], b) if pending else (a, b)
        if "<" in text[span[0] : span[1]] and _open_elements(text[span[0] : span[1]]) > 0:
            pending = span
            continue
        pending = None
        yield span
    if pending:
        yield pending


def _segments(
    doc: str,
    block: blocks_.Block,
    mt: Mapped,
    joins: list[int],
    max_chars: int,
    seg: pysbd.Segmenter,
    spoken: SpokenForm,
) -> Iterator[tuple[int, int, int, int, str]]:
    """(clean start, clean end, source start, source end, spoken form) per segment of the
    block, lazily. A sentence stays one segment up to ``max_chars``; a longer one is cut at
    clauses, then between words, and so is a piece whose spoken form grows past ``max_chars``
    ("1,000,000" is read as "one million"), since the spoken form is what one synthesis request
    carries."""
    text, index = mt.text, mt.index
    kept = set(index)
    lo, hi = block.ranges[0][0], block.ranges[-1][1]
    if block.heading:
        sentences: Iterator[tuple[int, int]] = iter([(0, len(text))])
    else:
        breaks = blocks_.line_breaks(text, joins, block.items)
        sentences = _merged_spans(text, sentence_spans(text, breaks, seg))
    for sa, sb in sentences:
        if "<" in text[sa:sb]:
            pieces: Iterator[tuple[int, int, str]] = iter(
                [(sa, sb, _spoken(doc, index, sa, text[sa:sb], spoken))]
            )
        else:
            pieces = _fitting(doc, index, text, sa, sb, max_chars, spoken)
        for a, b, said in pieces:
            start, end = index[a], index[b - 1] + 1
            # Widen the span over markup that was stripped at its edges (``**``, ``](url)``).
            while start > lo and (start - 1) not in kept and not doc[start - 1].isspace():
                start -= 1
            while end < hi and end not in kept and not doc[end].isspace():
                end += 1
            lo = end
            yield a, b, start, end, said


def _spoken(doc: str, index: list[int], a: int, written: str, spoken: SpokenForm) -> str:
    try:
        return spoken(written)
    except SsmlError as e:
        raise DocumentError(
            f"line {_line_of(doc, index[a])}: invalid SSML in {written[:60]!r}: {e}"
        ) from e


def _fitting(
    doc: str,
    index: list[int],
    text: str,
    a: int,
    b: int,
    max_chars: int,
    spoken: SpokenForm,
    cut_chars: int | None = None,
) -> Iterator[tuple[int, int, str]]:
    """``text[a:b]`` cut so that each piece and its spoken form hold at most ``max_chars``.

    ``cut_chars`` is the written length pieces are cut to (``max_chars`` at first). A piece
    whose spoken form is still too long is cut again, finer in proportion, but is always judged
    against ``max_chars``: judging it against the finer length would cut every expanding piece
    (``e.g.`` read "for example") down to the minimum, each level speaking it again, which made
    a long run of them quadratic (tests/unit/test_text_fuzz.py)."""
    for pa, pb in split_long(text, a, b, cut_chars or max_chars):
        said = _spoken(doc, index, pa, text[pa:pb], spoken)
        if len(said) > max_chars and pb - pa > _MIN_PIECE_CHARS:
            # The spoken form grew (numbers read out): cut the written piece finer, in proportion.
            finer = max(_MIN_PIECE_CHARS, (pb - pa) * max_chars // len(said) - 1)
            yield from _fitting(doc, index, text, pa, pb, max_chars, spoken, finer)
        else:
            yield pa, pb, said


def _line_of(doc: str, offset: int) -> int:
    return doc.count("\n", 0, offset) + 1


def split_document(
    text: str,
    *,
    fmt: DocFormat,
    limits: DocumentLimits | None = None,
    spoken: SpokenForm | None = None,
    speak_headings: bool = True,
) -> list[ChapterSpec]:
    """Split a document into chapters, blocks (paragraphs) and segments (sentences).

    Markdown: ``#`` and ``##`` headings (ATX or setext) start chapters; deeper headings, paragraphs,
    list items and table rows are blocks; fenced and indented code is skipped; inline markup
    (emphasis, links, images, inline code, HTML) is stripped from what is spoken; the SSML subset
    written inline is kept for the spoken form. Plain text: blank lines separate blocks and lines
    such as ``Chapter 1`` or ``CHAPTER ONE`` start chapters; an unpunctuated line (a title, a list
    item) is a sentence of its own. Content before the first chapter heading forms a chapter
    titled from its first line.

    Args:
        text: The document (CRLF and a BOM are tolerated).
        fmt: ``"markdown"`` or ``"text"``.
        limits: Segment count, nesting depth and sentence length (checked while splitting).
        spoken: The spoken form of a sentence; default :func:`text_processing.frontend.spoken_form`.
        speak_headings: Whether headings are spoken as blocks of their own (they are chapter
            titles either way).

    Returns:
        The chapters in reading order; every chapter has at least one block and every block at
        least one segment. ``text[s.start:s.end]`` is each segment's source. A segment with
        nothing to say (a lone "…") has ``spoken == ""`` and becomes a pause.

    Raises:
        DocumentError: Nothing to speak, or invalid SSML (with its line).
        LimitError: Nesting too deep (with its line); TooManySegmentsError past the count.
        ValueError: ``fmt`` or ``max_segment_chars`` is invalid.
    """
    if fmt not in ("markdown", "text"):
        raise ValueError(f"unknown document format {fmt!r}; use 'markdown' or 'text'")
    limits = limits or DocumentLimits()
    if limits.max_segment_chars < 20:
        raise ValueError("max_segment_chars must be at least 20")
    if spoken is None:
        from text_processing.frontend import spoken_form

        spoken = spoken_form
    began = time.perf_counter()
    line_count = text.count("\n") + (not text.endswith("\n"))
    if line_count > limits.max_lines:
        raise LimitError(
            f"the document has {line_count} lines, over the limit of {limits.max_lines}; split "
            "it into smaller documents and upload them one by one"
        )
    markdown = fmt == "markdown"
    lines = blocks_.line_spans(text, 1 if text.startswith("\ufeff") else 0)
    found = (
        blocks_.markdown_blocks(text, lines, max_depth=limits.max_depth)
        if markdown
        else blocks_.plain_blocks(text, lines)
    )
    seg = segmenter()
    chapters: list[ChapterSpec] = []
    title: str | None = None
    current: list[BlockSpec] = []
    count = 0
    for block in found:
        if not block.ranges:  # a paragraph markdown-it found but no line holds (blank space)
            continue
        size = block.ranges[-1][1] - block.ranges[0][0]
        if size > limits.max_block_chars:
            raise LimitError(
                f"line {_line_of(text, block.ranges[0][0])}: a paragraph of {size} characters "
                f"without a break, over the limit of {limits.max_block_chars}; put blank lines "
                "between its paragraphs and upload it again"
            )
        mt, joins = clean(text, block.ranges, markdown=markdown, table=block.table)
        if not mt.text:
            continue
        if block.heading and block.heading <= 2:
            if current:
                chapters.append(ChapterSpec(title or UNTITLED, current))
            title, current = _title(block.title or mt.text), []
        elif title is None:
            title = _title(_first_line(mt, block.ranges), first_sentence=True, seg=seg)
        if block.heading and not speak_headings:
            continue
        segments: list[SegmentSpec] = []
        pieces = _segments(text, block, mt, joins, limits.max_segment_chars, seg, spoken)
        for a, b, start, end, said in pieces:
            count += 1
            if count > limits.max_segments:  # checked per sentence: nothing piles up first
                raise TooManySegmentsError(
                    f"the document has more than {limits.max_segments} sentences (the limit for "
                    f"one document is reached at line {_line_of(text, start)}); split it into "
                    "smaller documents and convert them separately"
                )
            segments.append(SegmentSpec(mt.text[a:b], start, end, said))
        current.append(BlockSpec(segments))
    if current:
        chapters.append(ChapterSpec(title or UNTITLED, current))
    if not chapters:
        raise DocumentError("the document has no text to speak")
    if not any(s.spoken for c in chapters for b in c.blocks for s in b.segments):
        raise DocumentError("the document has no text to speak (no letters or numbers)")
    log.debug(
        "split %d chars (%s) into %d chapters, %d segments in %.3f s",
        len(text),
        fmt,
        len(chapters),
        count,
        time.perf_counter() - began,
    )
    return chapters
