"""Split an uploaded document into chapters → blocks (paragraphs) → segments (sentences).

Pure functions, no database: :func:`split_document` turns a document's text (decoded from the
upload by :func:`text_processing.formats.decode_upload`) into the tree the API stores, one
:class:`SegmentSpec` per sentence to synthesize.

Every segment keeps ``start``/``end`` character offsets into the text it was split from, so
``text[start:end]`` is the sentence as written (Markdown markup included) while ``SegmentSpec.text``
is what is spoken (markup removed, whitespace collapsed).

Markdown block structure comes from ``markdown-it-py`` (CommonMark, plus tables); inline markup is
stripped here with a character map so that offsets survive the stripping. Sentences come from
``pysbd``, run on small pieces because its cost grows faster than linearly with input length.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import pysbd
from markdown_it import MarkdownIt
from pysbd.lang.english import English

log = logging.getLogger(__name__)

DocFormat = Literal["markdown", "text"]

TITLE_MAX_CHARS = 100
UNTITLED = "Untitled"


class DocumentError(ValueError):
    """The document cannot be converted; the message says why and what to do."""


class TooManySegmentsError(DocumentError):
    """The document has more sentences than one document may have."""


@dataclass(frozen=True)
class SegmentSpec:
    """One sentence: the text to speak and where it sits in the source text."""

    text: str
    start: int
    end: int


@dataclass(frozen=True)
class BlockSpec:
    """One paragraph, list item, heading or table row."""

    segments: list[SegmentSpec]


@dataclass(frozen=True)
class ChapterSpec:
    """One chapter: a title and its blocks, in reading order."""

    title: str
    blocks: list[BlockSpec]


# --------------------------------------------------------------------------------------------
# Text with a map back to the source: clean[i] came from source[index[i]].


@dataclass
class _Mapped:
    text: str
    index: list[int]


# One part of a replacement: a (start, end) span of the matched string to keep, or a literal
# string attributed to a position of the matched string.
_Part = tuple[int, int] | tuple[str, int]


def _sub(
    pattern: re.Pattern[str],
    m_text: _Mapped,
    repl: Callable[[re.Match[str]], list[_Part]],
    endpos: int | None = None,
) -> _Mapped:
    """``re.sub`` that keeps the source map: ``repl`` says which spans of a match survive."""
    s, idx = m_text.text, m_text.index
    out: list[str] = []
    out_idx: list[int] = []
    pos = 0
    for m in pattern.finditer(s, 0, len(s) if endpos is None else endpos):
        out.append(s[pos : m.start()])
        out_idx.extend(idx[pos : m.start()])
        for a, b in repl(m):
            if isinstance(a, str):
                out.append(a)
                out_idx.extend([idx[b]] * len(a))
            else:
                out.append(s[a:b])
                out_idx.extend(idx[a:b])
        pos = m.end()
    if pos == 0:
        return m_text
    out.append(s[pos:])
    out_idx.extend(idx[pos:])
    return _Mapped("".join(out), out_idx)


def _keep(*groups: int) -> Callable[[re.Match[str]], list[_Part]]:
    return lambda m: [m.span(g) for g in groups if m.start(g) >= 0]


def _drop(m: re.Match[str]) -> list[_Part]:
    return []


def _space(m: re.Match[str]) -> list[_Part]:
    return [(" ", m.start())]


def _entity(m: re.Match[str]) -> list[_Part]:
    return [(html.unescape(m.group()), m.start())]


_URL = r"\((?:[^()\n]|\([^()\n]*\))*\)"
_PLACEHOLDER = "\ue000"
# Spans are bounded ({1,1000}) so that a block full of unmatched markers stays linear.
_CODE = re.compile(r"(`+)(?!`)(.{1,1000}?)(?<!`)\1(?!`)")
_EMPHASIS = re.compile(r"(?<![\\*])(\*{1,3})(?=[^\s*])(.{1,1000}?)(?<=[^\s*\\])\1(?!\*)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MD_PASSES: list[tuple[re.Pattern[str], Callable[[re.Match[str]], list[_Part]]]] = [
    (re.compile(r"<(script|style)\b.{0,20000}?</\1\s*>", re.S | re.I), _drop),
    (re.compile(r"!\[[^\]]{0,1000}\](?:" + _URL + r"|\[[^\]]*\])?"), _drop),  # images
    (re.compile(r"\[\^[^\]\s]+\]:?"), _drop),  # footnote references and definitions
    (re.compile(r"\[([^\]]{1,1000})\](?:" + _URL + r"|\[[^\]]*\])"), _keep(1)),  # links
    (re.compile(r"<((?:https?|ftp|mailto):[^<>\s]+|[^<>\s@]+@[^<>\s]+\.[^<>\s]+)>"), _keep(1)),
    (re.compile(r"<br\s*/?>|</?(?:p|div|li|tr|td|th|h[1-6])\b[^<>]*>", re.I), _space),
    (re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"), _drop),  # other HTML tags
    (_EMPHASIS, _keep(2)),
    (_EMPHASIS, _keep(2)),  # a second time for nesting like ***a** b*
    (re.compile(r"(?<![\w\\_])(_{1,3})(?=[^\s_])(.{1,1000}?)(?<=[^\s_\\])\1(?![\w_])"), _keep(2)),
    (re.compile(r"~~(?=\S)(.{1,1000}?)(?<=\S)~~"), _keep(1)),
    (re.compile(r"\\([!-/:-@\[-`{-~])"), _keep(1)),  # backslash escapes
    (re.compile(r"\\(?=\s|$)"), _drop),  # hard line breaks
    (re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"), _entity),
]
_TABLE_CELL = re.compile(r"\s*(?<!\\)\|\s*")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200d\u2060\ufeff\ue000-\uf8ff]")
# Only runs and non-space whitespace: rewriting every single space would cost more than the rest.
_SPACES = re.compile(r"\s{2,}|[^\S ]")


def _clean(doc: str, ranges: list[tuple[int, int]], *, markdown: bool, table: bool) -> _Mapped:
    """The speakable text of one block, with its map back into ``doc``."""
    parts: list[str] = []
    index: list[int] = []
    for start, end in ranges:
        if start >= end:
            continue
        if index:  # the line break between two source lines becomes one space
            parts.append(" ")
            index.append(index[-1] + 1)
        parts.append(doc[start:end])
        index.extend(range(start, end))
    mt = _sub(_INVISIBLE, _Mapped("".join(parts), index), _drop)
    if markdown:
        # Code spans first, hidden behind placeholders so no later pass reads markup inside
        # them; their characters come back from the source afterwards.
        def hide(m: re.Match[str]) -> list[_Part]:
            a, b = m.span(2)
            if m.group(2).startswith(" ") and m.group(2).endswith(" ") and b - a > 2:
                a, b = a + 1, b - 1
            return [(_PLACEHOLDER, i) for i in range(a, b)]

        mt = _sub(_CODE, mt, hide)
        # Search for comments only up to the last "-->": an unclosed "<!--" (literal text in
        # CommonMark) would otherwise make every search run to the end of the block.
        close = mt.text.rfind("-->")
        if close >= 0:
            mt = _sub(_COMMENT, mt, _drop, endpos=close + 3)
        if table:
            mt = _sub(_TABLE_CELL, mt, lambda m: [(", ", m.start() + m.group().index("|"))])
        for pattern, repl in _MD_PASSES:
            mt = _sub(pattern, mt, repl)
        if _PLACEHOLDER in mt.text:
            chars = [
                (doc[i] if not doc[i].isspace() else " ") if ch == _PLACEHOLDER else ch
                for ch, i in zip(mt.text, mt.index, strict=True)
            ]
            mt = _Mapped("".join(chars), mt.index)
    mt = _sub(_SPACES, mt, lambda m: [(" ", m.start())])
    text = mt.text
    lead = len(text) - len(text.lstrip())
    trail = len(text.rstrip())
    return _Mapped(text[lead:trail], mt.index[lead:trail])


# --------------------------------------------------------------------------------------------
# Sentences

_ABBREVIATIONS = frozenset(
    a.lower()
    for a in (
        *English.Abbreviation.ABBREVIATIONS,
        *English.Abbreviation.PREPOSITIVE_ABBREVIATIONS,
        *English.Abbreviation.NUMBER_ABBREVIATIONS,
    )
)
_SENTENCE_PUNCT = re.compile("[.!?。．！？]")
_TRAILING = ".!?。．！？\"'”’)] \t\n"
# A sentence end no reader would doubt: a word of two or more letters that is not a known
# abbreviation, one . ! or ?, optional closing quotes, spaces and a capital. Cutting there first
# keeps every pysbd call small (its cost grows faster than the input) and skips pysbd entirely
# for the many pieces that hold a single plain sentence. pysbd still decides everything else.
_SAFE_BREAK = re.compile(r"\b([A-Za-z]{2,})([.!?])[\"'”’)\]]*( +)(?=[\"“‘'(\[]?[A-Z])")
_PYSBD_MAX_CHARS = 2000
# pysbd costs about 0.6 ms per call however short the text, and more per character as the text
# grows: a few hundred characters per call is the cheapest per character.
_PYSBD_BATCH_CHARS = 600
_CLAUSE = re.compile(r"[,;:](?= )|[—–] ?| - ")


def _pysbd_spans(text: str, a: int, b: int, seg: pysbd.Segmenter) -> Iterator[tuple[int, int]]:
    piece = text[a:b]
    if not _needs_pysbd(piece):
        yield a, b
        return
    if b - a > _PYSBD_MAX_CHARS:  # no safe break in a long stretch: bound pysbd's cost
        for wa, wb in _split_long(text, a, b, _PYSBD_MAX_CHARS):
            yield from _pysbd_spans(text, wa, wb, seg)
        return
    # pysbd's own char_span search drops sentences it altered; align its output ourselves and
    # let any text it lost fall into the next sentence, so nothing written goes unspoken.
    ends: list[int] = []
    cursor = 0
    for sentence in seg.processor(piece).process():
        s = sentence.strip()
        found = piece.find(s, cursor) if s else -1
        if found >= 0:
            cursor = found + len(s)
            # A boundary inside a token ("Dr.," split after the stop) is pysbd going astray.
            if cursor == len(piece) or piece[cursor].isspace():
                ends.append(cursor)
    spans: list[tuple[int, int]] = []
    prev = 0
    for end in [*ends[:-1], len(piece)]:
        chunk = piece[prev:end]
        if not any(ch.isalnum() for ch in chunk) and spans:
            # A stray closing quote or bracket that pysbd left on its own belongs to the
            # sentence before it.
            spans[-1] = (spans[-1][0], end)
        elif chunk.strip():
            spans.append((prev, end))
        prev = end
    for sa, sb in spans:
        chunk = piece[sa:sb]
        yield a + sa + len(chunk) - len(chunk.lstrip()), a + sa + len(chunk.rstrip())


def _sentence_spans(text: str, seg: pysbd.Segmenter) -> Iterator[tuple[int, int]]:
    pending: tuple[int, int] | None = None  # neighbouring pieces that share one pysbd call
    for a, b in _safe_pieces(text):
        if not _needs_pysbd(text[a:b]):
            if pending:
                yield from _pysbd_spans(text, *pending, seg)
                pending = None
            yield a, b
        elif pending and b - pending[0] <= _PYSBD_BATCH_CHARS:
            pending = (pending[0], b)
        else:
            if pending:
                yield from _pysbd_spans(text, *pending, seg)
            pending = (a, b)
    if pending:
        yield from _pysbd_spans(text, *pending, seg)


def _safe_pieces(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for m in _SAFE_BREAK.finditer(text):
        if m.group(2) == "." and m.group(1).lower() in _ABBREVIATIONS:
            continue
        yield start, m.start(3)
        start = m.end(3)
    if start < len(text):
        yield start, len(text)


def _needs_pysbd(piece: str) -> bool:
    """Whether sentence punctuation appears anywhere but at the very end."""
    return bool(_SENTENCE_PUNCT.search(piece.rstrip(_TRAILING)))


def _split_long(text: str, a: int, b: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut ``text[a:b]`` into pieces of at most ``limit`` chars: at clauses, else at spaces."""
    while b - a > limit:
        hi = a + limit
        cut = -1
        for m in _CLAUSE.finditer(text, a + limit // 4, hi):
            cut = m.end()
        if cut <= a:
            space = text.rfind(" ", a + 1, hi + 1)
            # No space at all: a "word" longer than the limit (a URL, a hash) is cut hard.
            cut = space if space > a else hi
        end = cut
        while end > a and text[end - 1] == " ":
            end -= 1
        yield a, end
        a = cut
        while a < b and text[a] == " ":
            a += 1
    if a < b:
        yield a, b


# --------------------------------------------------------------------------------------------
# Blocks


@dataclass
class _Block:
    ranges: list[tuple[int, int]]  # source spans of the block's content, one per line
    heading: int = 0  # heading level; 0 for body text
    table: bool = False
    title: str | None = None


_LINE_END = re.compile("\r\n|\r|\n")
_FRONT_MATTER_KEY = re.compile(r"[A-Za-z0-9_-]+\s*:")


def _line_spans(doc: str, base: int) -> list[tuple[int, int]]:
    spans = []
    pos = base
    for m in _LINE_END.finditer(doc, base):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(doc)))
    return spans


def _stripped(doc: str, span: tuple[int, int]) -> tuple[int, int]:
    a, b = span
    line = doc[a:b]
    return a + len(line) - len(line.lstrip()), a + len(line.rstrip())


def _align(
    doc: str, lines: list[tuple[int, int]], content: str, first: int
) -> list[tuple[int, int]]:
    """Find markdown-it's block content (container markers removed) in the source lines."""
    out = []
    for k, content_line in enumerate(content.split("\n")):
        c = content_line.strip()
        if not c or first + k >= len(lines):
            continue
        a, b = lines[first + k]
        src = doc[a:b]
        right = src.rstrip()
        off = len(right) - len(c) if right.endswith(c) else src.find(c)
        if off < 0:  # markdown-it rewrote the line (tabs, NUL): speak all of it
            out.append(_stripped(doc, lines[first + k]))
        else:
            out.append((a + off, a + off + len(c)))
    return out


def _markdown_blocks(doc: str, lines: list[tuple[int, int]]) -> list[_Block]:
    texts = [doc[a:b] for a, b in lines]
    if texts[0].strip() == "---" and len(texts) > 2 and _FRONT_MATTER_KEY.match(texts[1]):
        close = next((i for i in range(1, len(texts)) if texts[i].strip() in ("---", "...")), 0)
        for i in range(close + 1):  # YAML front matter is metadata, not prose
            texts[i] = ""
    # Block structure only: inline markup is stripped by _clean, which keeps offsets.
    md = MarkdownIt("commonmark", {"html": True}).enable("table").disable(["inline", "text_join"])
    tokens = md.parse("\n".join(texts))
    blocks: list[_Block] = []
    skipped = 0
    for i, tok in enumerate(tokens):
        if tok.type in ("heading_open", "paragraph_open"):
            inline = tokens[i + 1]
            if inline.type != "inline" or inline.map is None:
                continue
            level = int(tok.tag[1:]) if tok.type == "heading_open" else 0
            blocks.append(_Block(_align(doc, lines, inline.content, inline.map[0]), level))
        elif tok.type == "tr_open" and tok.map is not None:
            a, b = _stripped(doc, lines[tok.map[0]])
            a += doc.startswith("|", a)
            b -= b > a and doc[b - 1] == "|" and doc[b - 2] != "\\"
            blocks.append(_Block([(a, b)], table=True))
        elif tok.type == "html_block" and tok.map is not None:
            blocks.append(_Block([_stripped(doc, lines[n]) for n in range(*tok.map)]))
        elif tok.type in ("fence", "code_block"):
            skipped += 1  # code is shown, not spoken
            if tok.type == "fence" and tok.map and not _closes(texts, tok.map, tok.markup):
                log.warning(
                    "a code fence opened on line %d is never closed: the rest of the document "
                    "is code (as CommonMark says) and is not spoken",
                    tok.map[0] + 1,
                )
    if skipped:
        log.debug("skipped %d code blocks", skipped)
    return blocks


def _closes(texts: list[str], span: list[int], markup: str) -> bool:
    last = texts[span[1] - 1].strip()
    return span[1] - span[0] >= 2 and last.startswith(markup) and not last.strip(markup[0])


_NUM_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred"
)
_NUMBER = rf"(?:\d+|[ivxlcdm]+|(?:{_NUM_WORDS})(?:[ -](?:{_NUM_WORDS}))*)"
_PLAIN_HEADING = re.compile(
    rf"(?:chapter|part|book)\s+{_NUMBER}(?:\s*[.:\-–—]\s*\S.{{0,80}}|\s*[.:])?|prologue|epilogue",
    re.I,
)
_ENDS_SENTENCE = re.compile("[.!?:\"'”’)]$")
_ENDS_CLAUSE = re.compile('[.!?,;:"”]$')


def _plain_blocks(doc: str, lines: list[tuple[int, int]]) -> list[_Block]:
    groups: list[list[tuple[int, int]]] = [[]]
    for span in lines:
        a, b = _stripped(doc, span)
        if a < b:
            groups[-1].append((a, b))
        elif groups[-1]:
            groups.append([])
    groups = [g for g in groups if g]
    if len(groups) == 1 and len(groups[0]) > 1:
        # No blank lines at all: one paragraph per line, unless the lines look hard-wrapped
        # (most of them stopping mid-sentence).
        ended = sum(1 for a, b in groups[0] if _ENDS_SENTENCE.search(doc[a:b]))
        if ended * 2 > len(groups[0]):
            groups = [[span] for span in groups[0]]
    blocks = []
    for group in groups:
        first = doc[group[0][0] : group[0][1]]
        if not _PLAIN_HEADING.fullmatch(first):
            blocks.append(_Block(group))
            continue
        title = first.rstrip(" .:")
        size = 1
        if len(group) == 2 and len(doc[group[1][0] : group[1][1]]) <= 80:
            # "CHAPTER I." over "Down the Rabbit-Hole": the second line is the chapter's name.
            second = doc[group[1][0] : group[1][1]]
            if not _ENDS_CLAUSE.search(second):
                title, size = f"{title}: {second.rstrip(' .:')}", 2
        blocks.append(_Block(group[:size], heading=1, title=title))
        if group[size:]:
            blocks.append(_Block(group[size:]))
    return blocks


# --------------------------------------------------------------------------------------------
# The document


def _title(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= TITLE_MAX_CHARS:
        return text or UNTITLED
    cut = text.rfind(" ", 0, TITLE_MAX_CHARS)
    return text[: cut if cut > 0 else TITLE_MAX_CHARS - 1].rstrip(" ,;:") + "…"


def _first_line(mt: _Mapped, ranges: list[tuple[int, int]]) -> str:
    """The spoken text of the block's first source line that has any (an image-only line
    has none)."""
    line_end = next(b for _, b in ranges if b > mt.index[0])
    n = next((i for i, pos in enumerate(mt.index) if pos >= line_end), len(mt.index))
    return mt.text[:n]


def _segments(
    doc: str, block: _Block, mt: _Mapped, seg: pysbd.Segmenter, max_chars: int
) -> list[SegmentSpec]:
    text, index = mt.text, mt.index
    kept = set(index)
    lo, hi = block.ranges[0][0], block.ranges[-1][1]
    sentences = [(0, len(text))] if block.heading else _sentence_spans(text, seg)
    out: list[SegmentSpec] = []
    for sa, sb in sentences:
        for a, b in _split_long(text, sa, sb, max_chars):
            start, end = index[a], index[b - 1] + 1
            # Widen the span over markup that was stripped at its edges (``**``, ``](url)``).
            while start > lo and (start - 1) not in kept and not doc[start - 1].isspace():
                start -= 1
            while end < hi and end not in kept and not doc[end].isspace():
                end += 1
            lo = end
            out.append(SegmentSpec(text[a:b], start, end))
    return out


def split_document(
    text: str,
    *,
    fmt: DocFormat,
    max_segment_chars: int = 400,
    max_segments: int = 20000,
    speak_headings: bool = True,
) -> list[ChapterSpec]:
    """Split a document into chapters, blocks (paragraphs) and segments (sentences).

    Markdown: ``#`` and ``##`` headings (ATX or setext) start chapters; deeper headings, paragraphs,
    list items and table rows are blocks; fenced and indented code is skipped; inline markup
    (emphasis, links, images, inline code, HTML) is stripped from what is spoken. Plain text: blank
    lines separate blocks and lines such as ``Chapter 1`` or ``CHAPTER ONE`` start chapters.
    Content before the first chapter heading forms a chapter titled from its first line.

    Args:
        text: The document, as returned by :func:`decode_upload` (CRLF and a BOM are tolerated).
        fmt: ``"markdown"`` or ``"text"``.
        max_segment_chars: Longer sentences are cut at clause boundaries, then at spaces.
        max_segments: The most segments a document may have.
        speak_headings: Whether headings are spoken as blocks of their own (they are chapter
            titles either way).

    Returns:
        The chapters in reading order; every chapter has at least one block and every block at
        least one segment. ``text[s.start:s.end]`` is each segment's source.

    Raises:
        DocumentError: Nothing to speak, or more than ``max_segments`` segments.
        ValueError: ``fmt`` or ``max_segment_chars`` is invalid.
    """
    if fmt not in ("markdown", "text"):
        raise ValueError(f"unknown document format {fmt!r}; use 'markdown' or 'text'")
    if max_segment_chars < 20:
        raise ValueError("max_segment_chars must be at least 20")
    began = time.perf_counter()
    markdown = fmt == "markdown"
    lines = _line_spans(text, 1 if text.startswith("\ufeff") else 0)
    blocks = _markdown_blocks(text, lines) if markdown else _plain_blocks(text, lines)
    seg = pysbd.Segmenter(language="en", clean=False)
    chapters: list[ChapterSpec] = []
    title: str | None = None
    current: list[BlockSpec] = []
    count = 0
    for block in blocks:
        mt = _clean(text, block.ranges, markdown=markdown, table=block.table)
        if not mt.text:
            continue
        if block.heading and block.heading <= 2:
            if current:
                chapters.append(ChapterSpec(title or UNTITLED, current))
            title, current = _title(block.title or mt.text), []
        elif title is None:
            title = _title(_first_line(mt, block.ranges))
        if block.heading and not speak_headings:
            continue
        segments = _segments(text, block, mt, seg, max_segment_chars)
        count += len(segments)
        if count > max_segments:
            raise TooManySegmentsError(
                f"the document has more than {max_segments} sentences, the limit for one "
                "document; split it into smaller documents and convert them separately"
            )
        current.append(BlockSpec(segments))
    if current:
        chapters.append(ChapterSpec(title or UNTITLED, current))
    if not chapters:
        raise DocumentError("the document has no text to speak")
    log.debug(
        "split %d chars (%s) into %d chapters, %d segments in %.3f s",
        len(text),
        fmt,
        len(chapters),
        count,
        time.perf_counter() - began,
    )
    return chapters
