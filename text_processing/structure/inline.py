"""The speakable text of one block, with a map back to the source: ``clean[i]`` came from
``source[index[i]]``.

Markdown inline markup (emphasis, links, images, inline code, HTML) is stripped with passes that
each run in linear time: every repetition is bounded or stops at a character it cannot contain,
code spans are paired by a single scan, and emphasis markers are dropped by their flanking
instead of being paired (pairing by regex is what made ``*a *a *a ...`` quadratic). Markdown-it
is not used for inline parsing because its tokens carry no character offsets.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Mapped:
    """Text with, for every character, its offset in the source document."""

    text: str
    index: list[int]


# One part of a replacement: a (start, end) span of the matched string to keep, or a literal
# string attributed to a position of the matched string.
Part = tuple[int, int] | tuple[str, int]
Repl = Callable[[re.Match[str]], list[Part]]


def sub(pattern: re.Pattern[str], mapped: Mapped, repl: Repl, endpos: int | None = None) -> Mapped:
    """``re.sub`` that keeps the source map: ``repl`` says which spans of a match survive."""
    s, idx = mapped.text, mapped.index
    out: list[str] = []
    out_idx: list[int] = []
    pos = 0
    for m in pattern.finditer(s, 0, len(s) if endpos is None else endpos):
        out.append(s[pos : m.start()])
        out_idx.extend(idx[pos : m.start()])
        for a, b in repl(m):
            if isinstance(a, str):
                out.append(a)
                out_idx.extend([idx[min(b, len(idx) - 1)]] * len(a))
            else:
                out.append(s[a:b])
                out_idx.extend(idx[a:b])
        pos = m.end()
    if pos == 0:
        return mapped
    out.append(s[pos:])
    out_idx.extend(idx[pos:])
    return Mapped("".join(out), out_idx)


def keep(*groups: int) -> Repl:
    """Keep these groups of the match."""
    return lambda m: [m.span(g) for g in groups if m.start(g) >= 0]


def drop(_m: re.Match[str]) -> list[Part]:
    """Drop the match."""
    return []


def space(m: re.Match[str]) -> list[Part]:
    """Replace the match by one space."""
    return [(" ", m.start())]


def _entity(m: re.Match[str]) -> list[Part]:
    return [(html.unescape(m.group()), m.start())]


def _flanking(m: re.Match[str]) -> list[Part]:
    """Drop an emphasis delimiter run that touches a word (``*a``, ``a*``); keep one with spaces
    on both sides ("5 * 3") or between digits ("5*3")."""
    s, a, b = m.string, m.start(), m.end()
    before = s[a - 1] if a > 0 else " "
    after = s[b] if b < len(s) else " "
    if before.isspace() and after.isspace():
        return [m.span()]
    if before.isdigit() and after.isdigit():
        return [m.span()]
    if m.group()[0] == "_" and before.isalnum() and after.isalnum():
        return [m.span()]  # snake_case is no emphasis
    return []


# SSML elements a user may write inside a document; they are kept for the spoken form.
SSML_TAGS = ("break", "say-as", "sub", "phoneme", "prosody")
_SSML = "|".join(SSML_TAGS)
_URL = r"\((?:[^()\n]|\([^()\n]{0,500}\)){0,2000}\)"
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_MD_PASSES: list[tuple[re.Pattern[str], Repl]] = [
    (re.compile(r"!\[[^\]\[\n]{0,1000}\](?:" + _URL + r"|\[[^\]\[\n]{0,1000}\])?"), drop),  # images
    (re.compile(r"\[\^[^\]\[\s]{1,100}\]:?"), drop),  # footnote references and definitions
    (re.compile(r"\[([^\]\[]{1,1000})\](?:" + _URL + r"|\[[^\]\[\n]{0,1000}\])"), keep(1)),  # links
    (
        re.compile(r"<((?:https?|ftp|mailto):[^<>\s]{1,2000}|[^<>\s@]{1,64}@[^<>\s@]{1,255})>"),
        keep(1),
    ),
    (re.compile(r"<br\s*/?>|</?(?:p|div|li|tr|td|th|h[1-6])\b[^<>]{0,1000}>", re.I), space),
    # Other HTML tags, except the SSML elements a user may write.
    (
        re.compile(rf"</?(?!(?:{_SSML})\b)[A-Za-z][A-Za-z0-9-]{{0,40}}(?:\s[^<>]{{0,1000}})?/?>"),
        drop,
    ),
    (re.compile(r"(?<!\\)(?:\*{1,3}|_{1,3}|~~)"), _flanking),
    (re.compile(r"\\([!-/:-@\[-`{-~])"), keep(1)),  # backslash escapes
    (re.compile(r"\\(?=\s|$)"), drop),  # hard line breaks
    (re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"), _entity),
]
_TABLE_CELL = re.compile(r"\s*(?<!\\)\|\s*")
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u200b-\u200d\u2060\ufeff\ue000-\uf8ff]")
# Only runs and non-space whitespace: rewriting every single space would cost more than the rest.
SPACES = re.compile(r"\s{2,}|[^\S ]")
# Starts only where a run of blanks starts, so a long run is scanned once (linear).
_JOIN = re.compile(r"(?<![^\S\n])[^\S\n]*\n[^\S\n]*")
_INLINE_SPACES = re.compile(r"[^\S\n]{2,}|[^\S \n]")
_PLACEHOLDER = "\ue000"
_BACKTICKS = re.compile(r"`+")
_RAW_BLOCK = re.compile(r"<(script|style)\b", re.I)


def _code_spans(text: str) -> list[tuple[int, int, int, int]]:
    """CommonMark code spans as (open, content start, content end, close end), in one scan: a
    backtick run opens a span closed by the next run of the same length."""
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text)]
    by_length: dict[int, list[int]] = {}
    for i, (a, b) in enumerate(runs):
        by_length.setdefault(b - a, []).append(i)
    cursor = {n: 0 for n in by_length}
    spans = []
    i = 0
    while i < len(runs):
        a, b = runs[i]
        same = by_length[b - a]
        k = cursor[b - a]
        while k < len(same) and same[k] <= i:
            k += 1
        cursor[b - a] = k
        if k == len(same):
            i += 1
            continue
        j = same[k]
        spans.append((a, b, runs[j][0], runs[j][1]))
        i = j + 1
    return spans


def _hide_code(mapped: Mapped) -> Mapped:
    """Code spans become placeholders (so no later pass reads markup inside them); their
    characters come back from the source at the end."""
    text, idx = mapped.text, mapped.index
    spans = _code_spans(text)
    if not spans:
        return mapped
    out: list[str] = []
    out_idx: list[int] = []
    pos = 0
    for open_, a, b, close_end in spans:
        out.append(text[pos:open_])
        out_idx.extend(idx[pos:open_])
        if b - a > 2 and text[a] == " " and text[b - 1] == " ":
            a, b = a + 1, b - 1
        out.append(_PLACEHOLDER * (b - a))
        out_idx.extend(idx[a:b])
        pos = close_end
    out.append(text[pos:])
    out_idx.extend(idx[pos:])
    return Mapped("".join(out), out_idx)


def _drop_raw_blocks(mapped: Mapped) -> Mapped:
    """``<script>``/``<style>`` elements, found with ``str.find`` (linear) and dropped."""
    text = mapped.text
    lower = None
    keep_spans: list[tuple[int, int]] = []
    pos = 0
    for m in _RAW_BLOCK.finditer(text):
        if m.start() < pos:
            continue
        lower = lower or text.lower()
        close = lower.find(f"</{m.group(1).lower()}", m.end())
        if close < 0:
            continue
        end = lower.find(">", close)
        end = len(text) if end < 0 else end + 1
        keep_spans.append((pos, m.start()))
        pos = end
    if not keep_spans:
        return mapped
    keep_spans.append((pos, len(text)))
    return Mapped(
        "".join(text[a:b] for a, b in keep_spans),
        [i for a, b in keep_spans for i in mapped.index[a:b]],
    )


def clean(
    doc: str, ranges: list[tuple[int, int]], *, markdown: bool, table: bool
) -> tuple[Mapped, list[int]]:
    """The speakable text of one block and where its source lines were joined.

    Args:
        doc: The whole document.
        ranges: The block's source spans, one per line.
        markdown: Strip Markdown inline markup.
        table: The block is a table row (cells are joined with commas).

    Returns:
        The mapped text, and the positions in it where one source line ended and the next began
        (a line break the sentence splitter may treat as a sentence end).
    """
    parts: list[str] = []
    index: list[int] = []
    for start, end in ranges:
        if start >= end:
            continue
        if index:  # the line break between two source lines becomes one marker character
            parts.append("\n")
            index.append(index[-1] + 1)
        parts.append(doc[start:end])
        index.extend(range(start, end))
    mt = Mapped("".join(parts), index)
    mt = sub(_INVISIBLE, mt, drop)
    if markdown:
        mt = _hide_code(mt)
        # Search for comments only up to the last "-->": an unclosed "<!--" (literal text in
        # CommonMark) would otherwise make every search run to the end of the block.
        close = mt.text.rfind("-->")
        if close >= 0:
            mt = sub(_COMMENT, mt, drop, endpos=close + 3)
        mt = _drop_raw_blocks(mt)
        if table:
            mt = sub(_TABLE_CELL, mt, lambda m: [(", ", m.start() + m.group().index("|"))])
        for pattern, repl in _MD_PASSES:
            mt = sub(pattern, mt, repl)
        if _PLACEHOLDER in mt.text:
            chars = [
                (doc[i] if not doc[i].isspace() else " ") if ch == _PLACEHOLDER else ch
                for ch, i in zip(mt.text, mt.index, strict=True)
            ]
            mt = Mapped("".join(chars), mt.index)
    # Line joins survive as "\n" until here; note where they are, then make them spaces.
    mt = sub(_JOIN, mt, lambda m: [("\n", m.start())])
    mt = sub(_INLINE_SPACES, mt, lambda m: [(" ", m.start())])
    text = mt.text
    lead = len(text) - len(text.lstrip())
    trail = len(text.rstrip())
    text = text[lead:trail]
    joins = [i for i, ch in enumerate(text) if ch == "\n"]
    return Mapped(text.replace("\n", " "), mt.index[lead:trail]), joins
