"""Decimals and dotted section numbers: "3.14" → "three point one four", "2.1.3" → "two point
one point three" (section and version numbers), "-0.5" → "minus zero point five"."""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, rule


def _dotted(match: re.Match[str]) -> str:
    return " point ".join(numbers.integer(part) for part in match[0].split("."))


RULES: tuple[Rule, ...] = (
    rule("section-number", r"(?<![\d.])\d+(?:\.\d+){2,6}(?![\d]|\.\d)", _dotted),
    rule(
        "decimal",
        r"(?:(?<![\w.+-])[-+])?(?<![\d.])(?:\d{1,3}(?:,\d{3})+|\d+)?\.\d+(?![\d]|\.\d)",
        lambda m: numbers.decimal(m[0].lstrip("+")),
    ),
)
