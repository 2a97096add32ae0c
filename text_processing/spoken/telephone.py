"""Telephone numbers: digit by digit, a pause (comma) between the groups.

"555-0142" → "five five five, zero one four two"; "(555) 123-4567" → "five five five, one two
three, four five six seven"; "+44 20 7946 0958" → "plus four four, two zero, ...". Without an
area code the exchange must start with 2-9, so "100-1000" stays a range.
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, rule

_GROUPS = re.compile(r"\d+")


def _groups(match: re.Match[str]) -> str:
    spoken = ", ".join(numbers.digits(g) for g in _GROUPS.findall(match[0]))
    return f"plus {spoken}" if match[0].startswith("+") else spoken


RULES: tuple[Rule, ...] = (
    rule(
        "phone-international",
        r"(?<![\w+])\+\d{1,3}(?:[ .-]\(?\d{1,4}\)?){2,5}(?![\d])",
        _groups,
    ),
    rule(
        "phone",
        r"(?<![\d-])(?:1[-. ])?(?:\(\d{3}\)\s?|\d{3}[-. ])\d{3}[-.]\d{4}(?![\d-])"
        r"|(?<![\d-])[2-9]\d{2}-\d{4}(?![\d-])",
        _groups,
    ),
    # Hyphenated digit chains of three or more groups are identifiers ("978-3-16-148410-0").
    rule("digit-chain", r"(?<![\d-])\d+(?:-\d+){2,8}(?![\d])", _groups),
)
