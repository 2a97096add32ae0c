"""Fractions: "1½" → "one and a half", "¾" → "three quarters", "2/3" → "two thirds",
"5 3/8" → "five and three eighths". Slashed numbers that are no fraction ("24/7", "9/11") are
read number by number."""

from __future__ import annotations

import re
import unicodedata

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, rule

_VULGAR = "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅐⅛⅜⅝⅞⅑⅒"
# Denominators read as fractions; a slash with any other ("9/11", "24/7") is no fraction.
_DENOMINATORS = frozenset({2, 3, 4, 5, 6, 8, 10, 12, 16, 32, 64, 100})


def fraction_words(numerator: int, denominator: int) -> str:
    """ "three quarters", "one half", "five eighths"."""
    if denominator == 2:
        name = "half"
    elif denominator == 4:
        name = "quarter"
    else:
        name = numbers.ordinal(denominator)
    count = numbers.cardinal(numerator)
    return f"{count} {name}" if numerator == 1 else f"{count} {numbers.plural(name)}"


def _mixed(whole: str | None, numerator: int, denominator: int) -> str:
    if not whole:
        return fraction_words(numerator, denominator)
    if numerator == 1 and denominator == 2:
        return f"{numbers.integer(whole)} and a half"
    if numerator == 1 and denominator == 4:
        return f"{numbers.integer(whole)} and a quarter"
    return f"{numbers.integer(whole)} and {fraction_words(numerator, denominator)}"


def _vulgar(match: re.Match[str]) -> str:
    value = unicodedata.numeric(match[2])
    for denominator in (2, 3, 4, 5, 6, 7, 8, 9, 10):
        numerator = round(value * denominator)
        if abs(numerator / denominator - value) < 1e-9:
            return _mixed(match[1], numerator, denominator)
    return match[0]  # pragma: no cover - every character of _VULGAR has a denominator above


def _slashed_fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match[2]), int(match[3])
    if denominator not in _DENOMINATORS or not 0 < numerator < denominator:
        return match[0]  # "24/7", "9/11": left to the next rule
    return _mixed(match[1], numerator, denominator)


def _slashed(match: re.Match[str]) -> str:
    return " ".join(numbers.integer(part) for part in match[0].split("/"))


RULES: tuple[Rule, ...] = (
    rule("vulgar-fraction", rf"(?:(?<![\d.,])(\d+)\s?)?([{_VULGAR}])", _vulgar),
    rule(
        "fraction",
        r"(?<![\d/.,])(?:(\d+)\s)?(\d{1,2})/(\d{1,3})(?![\d/]|\.\d)",
        _slashed_fraction,
    ),
    rule("slashed", r"(?<![\d/.,])\d+(?:/\d+){1,4}(?![\d])", _slashed),
)
