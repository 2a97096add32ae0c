"""Times of day and ratios: "9:30 a.m." → "nine thirty a m", "14:00" → "fourteen hundred",
"16:9" → "sixteen to nine" (two-digit minutes make a time; anything else with a colon is a
ratio)."""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, kept_period, rule


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), int(match[2])
    suffix = f" {match[4].lower()} m" if match[4] else ""
    spoken = numbers.cardinal(hour)
    if minute >= 10:
        spoken += f" {numbers.cardinal(minute)}"
    elif minute:
        spoken += f" oh {numbers.cardinal(minute)}"
    elif not suffix:
        spoken += " o'clock" if 1 <= hour <= 12 else " hundred"
    if match[3]:
        seconds = int(match[3])
        spoken += f" and {numbers.cardinal(seconds)} second{'' if seconds == 1 else 's'}"
    return spoken + suffix + (kept_period(match) if match[4] else "")


def _hour_meridiem(match: re.Match[str]) -> str:
    return f"{numbers.cardinal(int(match[1]))} {match[2].lower()} m{kept_period(match)}"


def _ratio(match: re.Match[str]) -> str:
    return f"{numbers.integer(match[1])} to {numbers.integer(match[2])}"


RULES: tuple[Rule, ...] = (
    rule(
        "time",
        r"(?<![\d:.])([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?![\d:])"
        r"(?:\s?([AaPp])\.?\s?[Mm](?![A-Za-z])\.?)?",
        _time,
    ),
    rule(
        "hour-meridiem",
        r"(?<![\d:.,])(1[0-2]|0?[1-9])\s?([AaPp])\.?\s?[Mm](?![A-Za-z])\.?",
        _hour_meridiem,
    ),
    rule("ratio", r"(?<![\d:.])(\d{1,6}):(\d{1,6})(?![\d:])", _ratio),
)
