"""Blocks: a document's paragraphs, headings, list items and table rows, as source line spans.

Markdown block structure comes from ``markdown-it-py`` (CommonMark plus tables). Its nesting
limit (``maxNesting``) makes it drop everything after a too-deep list or quote without a word, so
the limit is set from :class:`~text_processing.limits.DocumentLimits` and reaching it is refused
with the line where it happened. Plain text: blank lines separate blocks and lines such as
``Chapter 1`` or ``CHAPTER ONE`` start chapters.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

from text_processing.structure.model import LimitError

log = logging.getLogger(__name__)


@dataclass
class Block:
    """One block: its source spans (one per line), heading level (0 for body text), whether it
    is a table row, and a title (for plain-text chapter lines)."""

    ranges: list[tuple[int, int]]
    heading: int = 0
    table: bool = False
    title: str | None = None
    items: frozenset[int] = frozenset()  # lines that had a plain-text list marker


_LINE_END = re.compile("\r\n|\r|\n")
_FRONT_MATTER_KEY = re.compile(r"[A-Za-z0-9_-]+\s*:")


def line_spans(doc: str, base: int) -> list[tuple[int, int]]:
    """``(start, end)`` of every line of ``doc`` from ``base``, without line ends."""
    spans = []
    pos = base
    for m in _LINE_END.finditer(doc, base):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(doc)))
    return spans


def stripped(doc: str, span: tuple[int, int]) -> tuple[int, int]:
    """The span without leading and trailing whitespace."""
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
            out.append(stripped(doc, lines[first + k]))
        else:
            out.append((a + off, a + off + len(c)))
    return out


def _closes(texts: list[str], span: list[int], markup: str) -> bool:
    last = texts[span[1] - 1].strip()
    return span[1] - span[0] >= 2 and last.startswith(markup) and not last.strip(markup[0])


def markdown_blocks(doc: str, lines: list[tuple[int, int]], *, max_depth: int) -> list[Block]:
    """The blocks of a Markdown document.

    Raises:
        LimitError: Lists or block quotes nest deeper than ``max_depth`` levels (markdown-it
            would silently drop the rest of the document).
    """
    texts = [doc[a:b] for a, b in lines]
    if texts[0].strip() == "---" and len(texts) > 2 and _FRONT_MATTER_KEY.match(texts[1]):
        close = next((i for i in range(1, len(texts)) if texts[i].strip() in ("---", "...")), 0)
        for i in range(close + 1):  # YAML front matter is metadata, not prose
            texts[i] = ""
    # Block structure only: inline markup is stripped by structure.inline, which keeps offsets.
    md = MarkdownIt("commonmark", {"html": True}).enable("table").disable(["inline", "text_join"])
    # A list item costs two levels (list, item), a quote one; a paragraph inside adds one more.
    md.options["maxNesting"] = 2 * max_depth + 2
    tokens = md.parse("\n".join(texts))
    limit = md.options["maxNesting"]
    for tok in tokens:
        if tok.level >= limit - 1 and tok.nesting == 1:
            line = (tok.map[0] + 1) if tok.map else "?"
            raise LimitError(
                f"line {line}: lists or block quotes are nested more than {max_depth} levels "
                "deep there, which this server does not read; flatten the nesting (or raise "
                "VOXMILL_MAX_NESTING_DEPTH) and upload the document again"
            )
    blocks: list[Block] = []
    skipped = 0
    for i, tok in enumerate(tokens):
        if tok.type in ("heading_open", "paragraph_open"):
            inline = tokens[i + 1]
            if inline.type != "inline" or inline.map is None:
                continue
            level = int(tok.tag[1:]) if tok.type == "heading_open" else 0
            blocks.append(Block(_align(doc, lines, inline.content, inline.map[0]), level))
        elif tok.type == "tr_open" and tok.map is not None:
            a, b = stripped(doc, lines[tok.map[0]])
            a += doc.startswith("|", a)
            b -= b > a and doc[b - 1] == "|" and doc[b - 2] != "\\"
            blocks.append(Block([(a, b)], table=True))
        elif tok.type == "html_block" and tok.map is not None:
            blocks.append(Block([stripped(doc, lines[n]) for n in range(*tok.map)]))
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


_NUM_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred"
)
_NUMBER = rf"(?:\d+|[ivxlcdm]+|(?:{_NUM_WORDS})(?:[ -](?:{_NUM_WORDS}))*)"
PLAIN_HEADING = re.compile(
    rf"(?:chapter|part|book)\s+{_NUMBER}(?:\s*[.:\-–—]\s*\S.{{0,80}}|\s*[.:])?|prologue|epilogue",
    re.I,
)
_ENDS_SENTENCE = re.compile("[.!?:\"'”’)]$")
_ENDS_CLAUSE = re.compile('[.!?,;:"”]$')
_LIST_MARKER = re.compile(r"(?:[-*•+]|\d{1,3}[.)])\s+")


def plain_blocks(doc: str, lines: list[tuple[int, int]]) -> list[Block]:
    """The blocks of a plain-text document."""
    groups: list[list[tuple[int, int]]] = [[]]
    for span in lines:
        a, b = stripped(doc, span)
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
        # A plain-text list marker ("- ", "1. ") is not read; its line is a sentence of its own.
        marks = [_marker_length(doc, a, b) for a, b in group]
        items = frozenset(k for k, n in enumerate(marks) if n)
        group = [(a + n, b) for (a, b), n in zip(group, marks, strict=True)]
        first = doc[group[0][0] : group[0][1]]
        if not PLAIN_HEADING.fullmatch(first):
            blocks.append(Block(group, items=items))
            continue
        title = first.rstrip(" .:")
        size = 1
        if len(group) == 2 and len(doc[group[1][0] : group[1][1]]) <= 80:
            # "CHAPTER I." over "Down the Rabbit-Hole": the second line is the chapter's name.
            second = doc[group[1][0] : group[1][1]]
            if not _ENDS_CLAUSE.search(second):
                title, size = f"{title}: {second.rstrip(' .:')}", 2
        blocks.append(Block(group[:size], heading=1, title=title))
        if group[size:]:
            blocks.append(Block(group[size:]))
    return blocks


def _marker_length(doc: str, a: int, b: int) -> int:
    found = _LIST_MARKER.match(doc, a, b)
    return found.end() - a if found and found.end() < b else 0


# Prose is wrapped at 60 characters or more; lines all shorter than this are a list or verse.
_WRAP_WIDTH = 50
_OPENS_LINE = re.compile(r"[\"“‘'(\[]?[A-Z0-9]")
_LINE_ENDS_PUNCTUATED = re.compile(r"[.!?:;,…\"'”’)\]—–-]$")


def line_breaks(text: str, joins: list[int], items: frozenset[int] = frozenset()) -> list[int]:
    """Which line joins of a block end a sentence: those after an unpunctuated line (a title, a
    list item, a line of verse) before a line that opens like a sentence, unless the lines look
    like wrapped prose (then the short line is the exception: the last of a paragraph).

    Args:
        text: The block's cleaned text, lines joined by single spaces at ``joins``.
        joins: Positions of those spaces.
        items: Indexes of the lines that were list items (a marker such as "- " or "1.").
    """
    if not joins:
        return []
    starts = [0, *(j + 1 for j in joins)]
    ends = [*joins, len(text)]
    longest = max(e - s for s, e in zip(starts, ends, strict=True))
    out = []
    for k, join in enumerate(joins):
        line = text[starts[k] : ends[k]]
        if k + 1 in items:  # the next line is a list item ("- eggs")
            out.append(join)
            continue
        if _LINE_ENDS_PUNCTUATED.search(line) or not _OPENS_LINE.match(text, join + 1):
            continue
        if longest < _WRAP_WIDTH or len(line) <= 0.6 * longest:
            out.append(join)
    return out
