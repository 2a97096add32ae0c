"""Measures, from the one unit table (:mod:`text_processing.tables.units`), and percentages.

"5 km/h" → "five kilometers per hour", "1 kg" → "one kilogram", "20°C" → "twenty degrees
Celsius", "3.5 m²" → "three point five square meters", "12%" → "twelve percent".
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, alternation, rule
from text_processing.tables.units import STANDALONE, TIGHT_ONLY, UNITS

_NUMBER = r"(?P<num>-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|-?\.\d+)"
_SPACED = alternation(u for u in UNITS if u not in TIGHT_ONLY)
_TIGHT = alternation(UNITS)
_END = r"(?![A-Za-z0-9²³/])"


def _number_words(number: str) -> str:
    return numbers.decimal(number) if "." in number else numbers.integer(number.lstrip("-"))


def _measure(match: re.Match[str]) -> str:
    number, unit = match["num"], match["unit"]
    singular, plural = UNITS[unit]
    words = _number_words(number)
    if number.startswith("-") and "." not in number:
        words = f"minus {words}"
    return f"{words} {singular if number.lstrip('-') == '1' else plural}"


def _standalone(match: re.Match[str]) -> str:
    return UNITS[match[1]][1]


def _percent(match: re.Match[str]) -> str:
    number = match["num"]
    words = _number_words(number)
    if number.startswith("-") and "." not in number:
        words = f"minus {words}"
    return f"{words} percent"


_NUMBER_WORDS = (
    "zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    "fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    "eighty|ninety|hundred|thousand|million|billion|half|quarter|quarters|thirds"
)


def _after_words(match: re.Match[str]) -> str:
    """A unit after a number already in words ("five to ten kg", from a range)."""
    singular, plural = UNITS[match[2]]
    return f"{match[1]} {singular if match[1] == 'one' and not _compound(match) else plural}"


def _compound(match: re.Match[str]) -> bool:
    head = match.string[max(0, match.start() - 12) : match.start()].split()
    return bool(head) and head[-1] in _NUMBER_WORDS.split("|")


def _power(match: re.Match[str]) -> str:
    return f"{match[1]} {'squared' if match[2] == '²' else 'cubed'}"


RULES: tuple[Rule, ...] = (
    rule("measure-tight", rf"(?<![\w.,]){_NUMBER}(?P<unit>{_TIGHT}){_END}", _measure),
    rule("measure", rf"(?<![\w.,]){_NUMBER}[ \u00a0](?P<unit>{_SPACED}){_END}", _measure),
    rule("percent", rf"(?<![\w.,]){_NUMBER}\s?%", _percent),
    rule("unit", rf"(?<![\w/])({alternation(STANDALONE)})(?![\w/])", _standalone),
    rule("power", r"(\w)([²³])", _power),
)
# After the cardinal rules: units after numbers that are words by then.
LATE_RULES: tuple[Rule, ...] = (
    rule("unit-after-words", rf"\b({_NUMBER_WORDS})\s({_SPACED}){_END}", _after_words),
)
