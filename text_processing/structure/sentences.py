"""Sentences: the one splitting algorithm, used for documents (the API, the CLI) and by the voice
handler alike.

``pysbd`` finds the candidate boundaries; the one abbreviation table
(:mod:`text_processing.tables.abbreviations`) then vetoes those after an abbreviation that cannot
end a sentence there ("Dr. Smith", "pp. 12", "Acme Inc. announced"), and adds the ones pysbd
misses when two sentences are glued together ("shut.Nobody had a key."). Callers may force more
boundaries (line breaks after unpunctuated lines, decided by
:mod:`text_processing.structure.blocks`).

pysbd's ``NUMBERED_REFERENCE_REGEX`` backtracks catastrophically (a bracket of numbers followed
by a lower-case word: ~8x slower per number), so it is replaced by an equivalent whose repeated
item cannot match the same digits two ways. pysbd's cost also grows faster than its input, so it
only ever sees a few hundred characters at a time.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator

import pysbd
from pysbd.lang.english import English

from text_processing.tables.abbreviations import (
    ABBREVIATIONS,
    SENTENCE_STARTERS,
    lookup,
)


class SafeEnglish(English):
    """pysbd's English rules with the backtracking numbered-reference pattern replaced (same
    groups, so pysbd's replacement string still fits)."""

    NUMBERED_REFERENCE_REGEX = (
        r"(?<=[^\d\s])(\.|∯)((\[(\d{1,3}(?!\d)(?:,\s?|\s?-\s?|\s)?)*\b\d{1,3}\])+"
        r"|((\d{1,3}\s)?\d{1,3}))(\s)(?=[A-Z])"
    )


def segmenter() -> pysbd.Segmenter:
    """A pysbd segmenter with :class:`SafeEnglish` rules."""
    seg = pysbd.Segmenter(language="en", clean=False)
    seg.language_module = SafeEnglish
    return seg


_PYSBD_ABBREVIATIONS = frozenset(
    a.lower()
    for a in (
        *English.Abbreviation.ABBREVIATIONS,
        *English.Abbreviation.PREPOSITIVE_ABBREVIATIONS,
        *English.Abbreviation.NUMBER_ABBREVIATIONS,
    )
)
_SENTENCE_PUNCT = re.compile("[.!?。．！？]")
_TRAILING = ".!?。．！？\"'”’)] \t\n"
# A sentence end no reader would doubt: a word of two or more letters that is not an
# abbreviation, one . ! or ?, optional closing quotes, spaces and a capital. Cutting there first
# keeps every pysbd call small and skips pysbd for pieces holding a single plain sentence.
_SAFE_BREAK = re.compile(r"\b([A-Za-z]{2,})([.!?])[\"'”’)\]]*( +)(?=[\"“‘'(\[]?[A-Z])")
# Two sentences glued without a space: "shut.Nobody" (a lower-case word, a stop, a capitalised
# word). Dotted abbreviations and domains are excluded by the table and by the lower-case tail.
_GLUED = re.compile(r"(?<![\w.])([a-z]{2,})([.!?])(?=[A-Z][a-z])")
_WORD_BEFORE = re.compile(r"([\w.]{1,20})[.!?][\"'”’)\]]*\s*$")
_WORD_AFTER = re.compile(r"\s*[\"“‘'(\[]*([\w]+)")
PYSBD_MAX_CHARS = 2000
# pysbd costs about 0.6 ms per call however short the text, and more per character as the text
# grows: a few hundred characters per call is the cheapest per character.
_PYSBD_BATCH_CHARS = 600
_CLAUSE = re.compile(r"[,;:](?= )|[—–] ?| - ")


def boundary_allowed(text: str, end: int) -> bool:
    """Whether a sentence may end at ``text[:end]`` (which ends in sentence punctuation,
    perhaps followed by closing quotes), judged by the abbreviation table."""
    head = text[max(0, end - 30) : end]
    found = _WORD_BEFORE.search(head)
    if not found or not head.rstrip("\"'”’)] \t").endswith("."):
        return True
    word = found.group(1)
    row = lookup(word)
    nxt = _WORD_AFTER.match(text, end)
    following = nxt.group(1) if nxt else ""
    if row is None:
        if re.fullmatch(r"(?:[A-Za-z]\.){1,5}[A-Za-z]", word):  # "U.S", "e.g" without a row
            return not following or following.lower() in SENTENCE_STARTERS
        if len(word) == 1 and word.isupper():  # an initial: "J. Smith"
            return not following or following.lower() in SENTENCE_STARTERS
        return True
    if not following:
        return True
    if row.kind == "title":
        return False
    if row.kind in ("number", "day", "month") or row.needs_digit:
        return not following[0].isdigit()
    return following.lower() in SENTENCE_STARTERS


def _needs_pysbd(piece: str) -> bool:
    """Whether sentence punctuation appears anywhere but at the very end."""
    return bool(_SENTENCE_PUNCT.search(piece.rstrip(_TRAILING)))


def split_long(text: str, a: int, b: int, limit: int) -> Iterator[tuple[int, int]]:
    """Cut ``text[a:b]`` into pieces of at most ``limit`` chars: at clauses, else at spaces."""
    while b - a > limit:
        hi = a + limit
        cut = -1
        for m in _CLAUSE.finditer(text, a + limit // 4, hi):
            cut = m.end()
        if cut <= a:
            found = text.rfind(" ", a + 1, hi + 1)
            # No space at all: a "word" longer than the limit (a URL, a hash) is cut hard.
            cut = found if found > a else hi
        end = cut
        while end > a and text[end - 1] == " ":
            end -= 1
        yield a, end
        a = cut
        while a < b and text[a] == " ":
            a += 1
    if a < b:
        yield a, b


def _pysbd_spans(text: str, a: int, b: int, seg: pysbd.Segmenter) -> Iterator[tuple[int, int]]:
    piece = text[a:b]
    if not _needs_pysbd(piece):
        yield a, b
        return
    if b - a > PYSBD_MAX_CHARS:  # no safe break in a long stretch: bound pysbd's cost
        for wa, wb in split_long(text, a, b, PYSBD_MAX_CHARS):
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
            at_end = cursor == len(piece)
            if at_end or (piece[cursor].isspace() and boundary_allowed(piece, cursor)):
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


def _safe_pieces(text: str, a: int, b: int) -> Iterator[tuple[int, int]]:
    start = a
    for m in _SAFE_BREAK.finditer(text, a, b):
        if m.group(2) == ".":
            word = m.group(1)
            if word.lower() in _PYSBD_ABBREVIATIONS or word in ABBREVIATIONS:
                continue
        yield start, m.start(3)
        start = m.end(3)
    if start < b:
        yield start, b


def _spans_in(text: str, a: int, b: int, seg: pysbd.Segmenter) -> Iterator[tuple[int, int]]:
    pending: tuple[int, int] | None = None  # neighbouring pieces that share one pysbd call
    for pa, pb in _safe_pieces(text, a, b):
        if not _needs_pysbd(text[pa:pb]):
            if pending:
                yield from _pysbd_spans(text, *pending, seg)
                pending = None
            yield pa, pb
        elif pending and pb - pending[0] <= _PYSBD_BATCH_CHARS:
            pending = (pending[0], pb)
        else:
            if pending:
                yield from _pysbd_spans(text, *pending, seg)
            pending = (pa, pb)
    if pending:
        yield from _pysbd_spans(text, *pending, seg)


def glued_breaks(text: str) -> list[int]:
    """Positions just after the stop of sentences glued to the next ("shut.Nobody")."""
    out = []
    for m in _GLUED.finditer(text):
        if lookup(m.group(1)) is None and m.group(1).lower() not in _PYSBD_ABBREVIATIONS:
            out.append(m.end())
    return out


def sentence_spans(
    text: str, breaks: Iterable[int] = (), seg: pysbd.Segmenter | None = None
) -> Iterator[tuple[int, int]]:
    """The sentences of ``text`` as trimmed ``(start, end)`` spans, lazily, in order.

    Args:
        text: One block of plain text (markup already removed).
        breaks: Positions where a sentence must end, besides the ones found here (for example
            the line break after an unpunctuated title line).
        seg: A segmenter to reuse (see :func:`segmenter`).
    """
    seg = seg or segmenter()
    cuts = sorted({0, *breaks, *glued_breaks(text), len(text)})
    for a, b in itertools.pairwise(cuts):
        while a < b and text[a].isspace():
            a += 1
        end = b
        while end > a and text[end - 1].isspace():
            end -= 1
        if a < end:
            yield from _spans_in(text, a, end, seg)


def split_sentences(text: str) -> list[str]:
    """The sentences of a plain text, whitespace collapsed (what the voice handler speaks one by
    one). Line breaks inside ``text`` are spaces."""
    flat = " ".join(text.split())
    return [flat[a:b] for a, b in sentence_spans(flat)]
