"""Cardinals, years, ranges and scores.

A four-digit number is a year only where a narrator would read it so: after a word such as "in",
"since" or a month name, or before "AD"/"BC". Elsewhere it is a quantity ("1850 crates" → "one
thousand eight hundred fifty crates"). A dash between two numbers reads "to", which fits ranges
("pages 10-20") and scores ("won 52–48") alike.
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, next_word, previous_word, rule
from text_processing.tables.words import MONTHS, YEAR_CUES

_ERAS = frozenset({"AD", "BC", "BCE", "CE"})
_YEAR_LIKE = re.compile(r"1\d\d\d|20\d\d")


def _is_year(match: re.Match[str], group: int = 0) -> bool:
    before = previous_word(match, group)
    if before.lower() in YEAR_CUES or before in MONTHS or before in _ERAS:
        return True
    if next_word(match, group) in _ERAS:
        return True
    text, start, end = match.string, match.start(group), match.end(group)
    return start > 0 and text[start - 1] == "(" and text[end : end + 1] == ")"


def _year_or_number(text: str, is_year: bool) -> str:
    if is_year and _YEAR_LIKE.fullmatch(text):
        return numbers.year(int(text))
    return numbers.integer(text)


def _range(match: re.Match[str]) -> str:
    both_years = bool(_YEAR_LIKE.fullmatch(match[1]) and _YEAR_LIKE.fullmatch(match[2]))
    years = both_years and (int(match[1]) < int(match[2]) or _is_year(match, 1))
    return f"{_year_or_number(match[1], years)} to {_year_or_number(match[2], years)}"


def _four_digits(match: re.Match[str]) -> str:
    return _year_or_number(match[0], _is_year(match))


def _signed(match: re.Match[str]) -> str:
    words = numbers.integer(match[2])
    return {"-": "minus ", "+": "plus "}.get(match[1] or "", "") + words


RULES: tuple[Rule, ...] = (
    rule(
        "range",
        r"(?<![\w.,/:-])(\d{1,7})(?:\s?[–—]\s?|-)(\d{1,7})(?![\d]|[.,]\d|[-–]\d)",
        _range,
    ),
    rule("four-digits", r"(?<![\w.,$€£¥₹+-])(?:1\d\d\d|20\d\d)(?![\d]|[.,]\d)", _four_digits),
    rule(
        "cardinal",
        r"(?:(?<![\w.+-])([-+]))?(?<![\d.])(\d{1,3}(?:,\d{3})+(?!\d)|\d+)",
        _signed,
    ),
    # Whatever digits are left ("..9o"): a narrator still reads them; no digit reaches the voice.
    rule("digits", r"\d+", lambda m: numbers.integer(m[0])),
)
