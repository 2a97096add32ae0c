"""The spoken form: written English rewritten the way a careful narrator reads it aloud.

Rules are grouped by NeMo's semiotic classes, one module per class (electronic, abbreviation,
date, time, telephone, money, measure, fraction, ordinal, roman, decimal, cardinal); every table
they read is in :mod:`text_processing.tables`. :func:`normalize` runs them in :data:`PIPELINE`
order: a class that needs a number's surroundings ("$3.50", "9:30 a.m.", "15.02.2026") reads it
before the generic number rules do.
"""

from __future__ import annotations

import re
import unicodedata

from text_processing.spoken import (
    abbreviation,
    cardinal,
    date,
    decimal,
    electronic,
    fraction,
    measure,
    money,
    ordinal,
    roman,
    symbols,
    telephone,
    time,
)
from text_processing.spoken.rules import Rule, apply

__all__ = ["PIPELINE", "TOKENS", "is_speakable", "normalize"]

# Addresses (e-mail, URL, domain) are one token each, read before everything else and then kept
# out of every later rule's reach: no rule may read the "x" in "x.com" as "times", a "/" as a
# fraction or "mph" in a path as a unit. See :func:`_shield`.
TOKENS: tuple[Rule, ...] = electronic.RULES
PIPELINE: tuple[Rule, ...] = (
    *symbols.RULES,
    *abbreviation.RULES,
    *date.RULES,  # numeric and month-name dates, decades
    *time.RULES,
    *telephone.RULES,
    *money.RULES,
    *cardinal.RULES[:1],  # ranges and scores, before a unit can take the second number
    *measure.RULES,
    *fraction.RULES,
    *ordinal.RULES,
    *roman.RULES,
    *decimal.RULES,
    *cardinal.RULES[1:],
    *measure.LATE_RULES,
    *symbols.LATE_RULES,
    *abbreviation.INITIALISM_RULES,
)

_WHITESPACE = re.compile(r"\s+")
_DIGIT = re.compile(r"[0-9]")
_SPACE_BEFORE_PUNCT = re.compile(r"(?<!\s)\s+([,.;:!?])")
_SHIELD_BASE = 0xF0000  # Supplementary Private Use Area-A: no rule matches these characters
_SHIELDED = re.compile("[\U000f0000-\U000ffffd]")
_CHARACTERS = str.maketrans({"−": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "‐": "-"})


def _ascii_digits(text: str) -> str:
    """Other scripts' decimal digits (Arabic-Indic, fullwidth, …) as ASCII, so they are read."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(c, c)) if not c.isascii() and unicodedata.category(c) == "Nd" else c
        for c in text
    )


def _shield(text: str) -> tuple[str, list[str]]:
    """``text`` with every address replaced by one private-use character standing for its
    spoken words (the list, by the character's offset from ``_SHIELD_BASE``)."""
    said: list[str] = []

    def stand_in(match: re.Match[str], render: Rule) -> str:
        said.append(render.render(match))
        return chr(_SHIELD_BASE + len(said) - 1)

    for token in TOKENS:
        text = token.pattern.sub(lambda m, t=token: stand_in(m, t), text)  # type: ignore[misc]
    return text, said


def _unshield(text: str, said: list[str]) -> str:
    def words(match: re.Match[str]) -> str:
        spoken = said[ord(match[0]) - _SHIELD_BASE]
        start, end = match.span()
        if start > 0 and text[start - 1].isalnum():
            spoken = f" {spoken}"
        if end < len(text) and text[end].isalnum():
            spoken = f"{spoken} "
        return spoken

    return _SHIELDED.sub(words, text) if said else text


def normalize(text: str) -> str:
    """Rewrite plain English text the way a careful narrator reads it aloud.

    Never raises and never leaves a digit behind; punctuation is kept (the phonemizer turns it
    into pauses and intonation); whitespace is collapsed. Runs in time linear in the input.

    Example:
        >>> normalize("Dr. Smith paid $3.50 at 9:30 a.m. on March 3rd.")
        'Doctor Smith paid three dollars and fifty cents at nine thirty a m on March third.'

    Args:
        text: Any string (no markup: SSML is handled by :mod:`text_processing.ssml`).

    Returns:
        The spoken form.
    """
    text = _ascii_digits(_SHIELDED.sub("", text.translate(_CHARACTERS)))
    text, said = _shield(text)
    digits = _DIGIT.search(text) is not None  # no rule ever writes a digit
    for step in PIPELINE:
        if digits or not step.needs_digit:
            text = apply(step, text)
    text = _unshield(text, said)
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    return _WHITESPACE.sub(" ", text).strip()


def is_speakable(text: str) -> bool:
    """Whether ``text`` has anything a voice can say (a letter or a digit)."""
    return any(ch.isalnum() for ch in text)
