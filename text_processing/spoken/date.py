"""Dates: numeric dates with a year, month-name dates, and decades.

The voices are American English, so an ambiguous slashed date is month first ("03/04/2025" →
"March fourth, twenty twenty five"); a first number above 12 makes it day first, and dotted dates
("15.02.2026") are day first as everywhere they are written so.
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, rule
from text_processing.tables.words import MONTHS

_MONTH_ALT = "|".join(MONTHS)


def _year_of(text: str) -> str:
    value = int(text)
    if len(text) == 2:  # "03/04/25": this century for small numbers, the last one otherwise
        value += 2000 if value < 50 else 1900
    return numbers.year(value)


def _spoken(month: int, day: int, year: str | None) -> str:
    words = f"{MONTHS[month - 1]} {numbers.ordinal(day)}"
    return f"{words}, {_year_of(year)}" if year else words


def _valid(month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= 31


def _iso(match: re.Match[str]) -> str:
    year, month, day = match[1], int(match[2]), int(match[3])
    return _spoken(month, day, year) if _valid(month, day) else match[0]


def _slashed(match: re.Match[str]) -> str:
    first, second, year = int(match[1]), int(match[2]), match[3]
    if _valid(first, second):
        return _spoken(first, second, year)
    if _valid(second, first):
        return _spoken(second, first, year)
    return match[0]


def _dotted(match: re.Match[str]) -> str:
    day, month, year = int(match[1]), int(match[2]), match[3]
    return _spoken(month, day, year) if _valid(month, day) else match[0]


def _month_day(match: re.Match[str]) -> str:
    day = int(match[2])
    if not 1 <= day <= 31:
        return match[0]
    words = f"{match[1]} {numbers.ordinal(day)}"
    return f"{words}, {numbers.year(int(match[3]))}" if match[3] else words


def _day_month(match: re.Match[str]) -> str:
    day = int(match[1])
    if not 1 <= day <= 31:
        return match[0]
    words = f"the {numbers.ordinal(day)} of {match[2]}"
    return f"{words}, {numbers.year(int(match[3]))}" if match[3] else words


def _decade(match: re.Match[str]) -> str:
    value = int(next(g for g in match.groups() if g))
    if value < 100:  # "the '90s", "in their 20s"
        return numbers.plural(numbers.cardinal(value))
    if value in (100, 1000):  # "100s of people"
        return numbers.plural(numbers.cardinal(value).split()[-1])
    if value >= 1000 and value % 100 == 0:  # "the 1800s"
        return numbers.plural(numbers.year(value))
    return numbers.plural(numbers.year(value) if value >= 1000 else numbers.cardinal(value))


RULES: tuple[Rule, ...] = (
    rule("iso-date", r"(?<![\d-])(\d{4})-(\d{2})-(\d{2})(?![\d-])", _iso),
    rule("slashed-date", r"(?<![\d/.])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\d/])", _slashed),
    rule("dotted-date", r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\d]|\.\d)", _dotted),
    rule(
        "month-day",
        rf"\b({_MONTH_ALT})\s(\d{{1,2}})(?:st|nd|rd|th)?(?![\d:.,]\d|\w)(?:,?\s(\d{{4}})(?!\d))?",
        _month_day,
    ),
    rule(
        "day-month",
        rf"(?<![\w.,])(\d{{1,2}})(?:st|nd|rd|th)?\s(?:of\s)?({_MONTH_ALT})\b(?:,?\s(\d{{4}})(?!\d))?",
        _day_month,
    ),
    rule(
        "decade",
        r"(?<![\w.,])(?:['’](\d0)|(1\d\d0|20\d0|100|1000)|(?:(?<=the )|(?<=early )|(?<=late )"
        r"|(?<=mid-)|(?<=their )|(?<=his )|(?<=her ))(\d0))['’]?s(?![A-Za-z0-9])",
        _decade,
    ),
)
