"""The machinery the semiotic classes share: a rule is a compiled pattern and a renderer.

Every pattern here must run in linear time: no nested quantifiers over the same characters, and
repetitions bounded. ``tests/unit/test_text_fuzz.py`` checks the whole pipeline scales linearly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from text_processing.tables.abbreviations import SENTENCE_STARTERS

Render = Callable[[re.Match[str]], str]

_NEXT_SENTENCE = re.compile(r"\s*$|\s+[\"'“‘(\[]*([A-Z][a-z]*)")
_PREVIOUS_WORD = re.compile(r"([\w'’]+)[^\w]{0,3}$")
_NEXT_WORD = re.compile(r"[^\w]{0,3}([\w'’]+)")


@dataclass(frozen=True)
class Rule:
    """One rewrite: every match of ``pattern`` becomes ``render(match)``."""

    name: str
    pattern: re.Pattern[str]
    render: Render
    needs_digit: bool = False  # the pattern cannot match text without a digit (a fast skip)


def rule(name: str, pattern: str, render: Render, flags: int = 0) -> Rule:
    """Compile a :class:`Rule`; a pattern that needs a digit to match is marked so."""
    compiled = re.compile(pattern, flags)
    return Rule(name, compiled, render, needs_digit=_needs_digit(compiled))


def _needs_digit(pattern: re.Pattern[str]) -> bool:
    """Whether every match of ``pattern`` contains a digit: checked on probe strings, so a rule
    that is wrongly marked would fail the class tests, never silently skip text."""
    probes = ("a", "Mr. X", "A.B.", "&", "#", "½", "II", "x²", "km/h", "°C", "€", "www.a.com")
    return not any(pattern.search(p) for p in probes) and r"\d" in pattern.pattern


def apply(rule_: Rule, text: str) -> str:
    """``pattern.sub`` that keeps a space between the spoken words and adjacent letters or
    digits ("5kg" → "five kilograms", not "fivekilograms")."""

    def replace(match: re.Match[str]) -> str:
        words = render_(match)
        start, end = match.span()
        if words and start > 0 and text[start - 1].isalnum() and words[0].isalnum():
            words = f" {words}"
        if words and end < len(text) and text[end].isalnum() and words[-1].isalnum():
            words = f"{words} "
        return words

    render_ = rule_.render
    return rule_.pattern.sub(replace, text)


def kept_period(match: re.Match[str], group: int = 0) -> str:
    """The abbreviation's period, kept when it also ends the sentence (so prosody falls there):
    at the end of the text, or before a word that opens sentences (the splitter's own rule)."""
    if not match.group(group).endswith("."):
        return ""
    follows = _NEXT_SENTENCE.match(match.string, match.end())
    if follows and (follows.group(1) is None or follows.group(1).lower() in SENTENCE_STARTERS):
        return "."
    return ""


def previous_word(match: re.Match[str], group: int = 0) -> str:
    """The word just before the match (up to three non-word characters away), or ""."""
    start = match.start(group)
    found = _PREVIOUS_WORD.search(match.string, max(0, start - 40), start)
    return found.group(1) if found else ""


def next_word(match: re.Match[str], group: int = 0) -> str:
    """The word just after the match, or ""."""
    found = _NEXT_WORD.match(match.string, match.end(group))
    return found.group(1) if found else ""


def alternation(words: Iterable[str]) -> str:
    """A regex alternation of literal ``words``, longest first (so "km/h" wins over "km")."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
