"""Roman numerals: a number after a cue word ("Chapter IV" → "Chapter four", "World War II" →
"World War two"), a regnal ordinal after a monarch's or pope's name ("Louis XIV" → "Louis the
fourteenth", "Elizabeth II" → "Elizabeth the second"). Both word lists are in
:mod:`text_processing.tables.words`; a capital "I" elsewhere is the pronoun and stays.

The numeral check and value are the textbook regular expression and sum below: a dependency for
eight lines would not pay for itself.
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, alternation, rule
from text_processing.tables.words import REGNAL_NAMES, ROMAN_CUES

_VALID = re.compile(r"M{0,3}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}


def roman_value(numeral: str) -> int | None:
    """The value of a well-formed Roman numeral (any case), else ``None``."""
    upper = numeral.upper()
    if not upper or not _VALID.fullmatch(upper):
        return None
    total = 0
    for i, ch in enumerate(upper):
        value = _VALUES[ch]
        following = _VALUES[upper[i + 1]] if i + 1 < len(upper) else 0
        total += -value if value < following else value
    return total


def _cued(match: re.Match[str]) -> str:
    value = roman_value(match[2])
    if value is None or (match[2].islower() and not match[1][0].islower() and len(match[2]) == 1):
        return match[0]
    return f"{match[1]} {numbers.cardinal(value)}"


def _regnal(match: re.Match[str]) -> str:
    value = roman_value(match[2])
    if value is None:
        return match[0]
    return f"{match[1]} the {numbers.ordinal(value)}"


_CUES = alternation(ROMAN_CUES)
RULES: tuple[Rule, ...] = (
    rule(
        "roman-cardinal",
        rf"\b({_CUES}|{_CUES.lower()})\.?\s([IVXLCDM]{{1,8}}|[ivxlcdm]{{1,8}})(?![\w'’])",
        _cued,
    ),
    rule(
        "roman-regnal",
        rf"\b({alternation(REGNAL_NAMES)})\s([IVXLCDM]{{1,8}})(?![\w'’])",
        _regnal,
    ),
)
