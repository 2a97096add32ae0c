"""Abbreviations and initialisms, read from the one table in
:mod:`text_processing.tables.abbreviations` and the word lists in
:mod:`text_processing.tables.words`.

"Dr. Smith" → "Doctor Smith", "Elm St." → "Elm Street", "Fri., Jun. 5" → "Friday, June 5",
"pp. 12" → "pages 12", "U.S." → "U S", "FBI" → "F B I", "e.g." → "for example".
"""

from __future__ import annotations

import re

from text_processing.spoken.rules import Rule, alternation, kept_period, previous_word, rule
from text_processing.tables.abbreviations import (
    ABBREVIATIONS,
    AMBIGUOUS_CALENDAR,
    DOTTED,
)
from text_processing.tables.words import ACRONYMS, INITIALISMS

_DIGIT_AFTER = re.compile(r"\s?[0-9]")
_NUMBERISH_AFTER = re.compile(r"\s?(?:[0-9]|[IVXLC]{2,}\b|[VX]\b)")
_CALENDAR_AFTER = re.compile(r"\s?(?:[0-9]|,)")
_NAME_AFTER = re.compile(r"\s+[A-Z]")
_VOWELS = re.compile("[AEIOUY]")
_PLACE = {"St": "Street", "Dr": "Drive"}


def _word(match: re.Match[str]) -> str:
    key = match[1]
    row = ABBREVIATIONS[key]
    after = match.end()
    text = match.string
    if (row.kind == "number" or row.needs_digit) and not _NUMBERISH_AFTER.match(text, after):
        return match[0]
    ambiguous = row.kind in ("day", "month") and key in AMBIGUOUS_CALENDAR
    if ambiguous and not _CALENDAR_AFTER.match(text, after):
        return match[0]
    if row.before_digit and _DIGIT_AFTER.match(text, after):
        return row.before_digit
    if key in _PLACE:
        # "Elm St." / "5th St." is a street; "St. Paul" a saint; "Dr. Who" a doctor.
        before = previous_word(match, 1)
        capitalised = bool(before) and (before[0].isupper() or before[0].isdigit())
        inside_name = capitalised and not _before_sentence(match)
        if inside_name or (capitalised and not _NAME_AFTER.match(text, after)):
            return _PLACE[key] + kept_period(match)
    spoken = row.spoken if row.spoken is not None else key
    if row.kind in ("trailing", "latin"):
        return spoken + kept_period(match)
    return spoken


def _before_sentence(match: re.Match[str]) -> bool:
    """Whether the word before the match opens its sentence (then it says nothing of a name)."""
    start = match.start()
    head = match.string[max(0, start - 60) : start].rstrip()
    cut = head.rstrip("\"'“‘(")
    space = cut.rfind(" ")
    before = cut[:space].rstrip() if space >= 0 else ""
    return not before or before[-1] in ".!?"


def _title_no_period(match: re.Match[str]) -> str:
    return ABBREVIATIONS[match[1]].spoken or match[1]


def _dotted(match: re.Match[str]) -> str:
    written = match[1]
    row = DOTTED.get(written.lower().rstrip("."))
    if row is not None and row.spoken is not None:
        spoken = row.spoken
        if written[0].isupper() and spoken[0].islower():
            spoken = spoken[0].upper() + spoken[1:]
        return spoken + kept_period(match)
    letters = " ".join(ch.upper() for ch in written if ch.isalpha())
    return letters + kept_period(match)


def _shouting(text: str, start: int, end: int) -> bool:
    """Whether the words around ``text[start:end]`` are capitals too (a heading in capitals)."""
    before = text[max(0, start - 30) : start].split()
    after = text[end : end + 30].split()
    near = [w.strip(".,;:!?\"'()") for w in (before[-1:] + after[:1])]
    return any(len(w) >= 3 and w.isupper() and w not in INITIALISMS for w in near)


def _initialism(match: re.Match[str]) -> str:
    word, plural = match[1], match[2] or ""
    if word in ACRONYMS:
        return match[0]
    if word not in INITIALISMS and _VOWELS.search(word):
        return match[0]
    if _shouting(match.string, match.start(), match.end()):
        return match[0]
    letters = " ".join(word)
    return f"{letters}'s" if plural else letters


_WORDS = alternation(k for k in ABBREVIATIONS)
_DOTTED_WORDS = alternation(k for k in DOTTED if "." not in k)

RULES: tuple[Rule, ...] = (
    rule("et-al", r"\b(et al)\.", lambda m: "et al" + kept_period(m)),
    # "U.S.", "e.g.", "a.m.", "Ph.D.": letters with periods between them.
    rule("dotted", r"(?<![\w.])((?:[A-Za-z]{1,2}\.){1,5}[A-Za-z]{1,2}\.?)(?![\w])", _dotted),
    rule("abbreviation", rf"(?<![\w.])({_WORDS})\.(?!\w)", _word),
    rule("latin-word", rf"(?<![\w.])({_DOTTED_WORDS})\.(?!\w)", _dotted),
    rule("title", r"\b(Mrs|Mr|Ms|Dr|Prof|Mt|St)(?=\s+[A-Z])", _title_no_period),
    rule("versus", r"\b(vs)\b", lambda m: "versus"),
    rule("ampersand", r"\s?&\s?", lambda m: " and "),
)
# Last of all, once Roman numerals and units had their turn.
INITIALISM_RULES: tuple[Rule, ...] = (
    rule("initialism", r"(?<![\w'’])([A-Z]{2,5})(s)?(?![\w'’])", _initialism),
)
