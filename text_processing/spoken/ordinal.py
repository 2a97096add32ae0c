"""Ordinals: "21st" → "twenty first", "3rd" → "third", "100th" → "one hundredth"."""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, rule


def _ordinal(match: re.Match[str]) -> str:
    digits = match[1].replace(",", "")
    if len(digits) > numbers.MAX_CARDINAL_DIGITS or (len(digits) > 1 and digits[0] == "0"):
        return f"{numbers.digits(digits[:-1])} {numbers.ordinal(int(digits[-1]))}".lstrip()
    return numbers.ordinal(int(digits))


RULES: tuple[Rule, ...] = (
    rule(
        "ordinal",
        r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+)(?:st|nd|rd|th|ST|ND|RD|TH)(?![A-Za-z0-9])",
        _ordinal,
    ),
)
