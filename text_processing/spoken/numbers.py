"""Numbers as American English words, from ``num2words`` (pinned), tidied for a narrator.

``num2words`` says "one hundred and five" and "twenty-one"; an American narrator says "one
hundred five", and the phonemizer reads a hyphen as a pause, so "and" inside numbers, commas and
hyphens are removed here. Long or zero-padded digit runs are identifiers and read digit by digit.
"""

from __future__ import annotations

import re

from num2words import num2words

DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# Longer runs are identifiers rather than quantities (and keep int() below Python's limit).
MAX_CARDINAL_DIGITS = 15
_AND = re.compile(r",|(?<=hundred) and\b|(?<=thousand) and\b|(?<=illion) and\b")
_SPACES = re.compile(r"[\s-]+")


def _tidy(words: str) -> str:
    return _SPACES.sub(" ", _AND.sub("", words)).strip()


def cardinal(n: int) -> str:
    """``1850`` → "one thousand eight hundred fifty"; ``-4`` → "minus four"."""
    return _tidy(num2words(n))


def ordinal(n: int) -> str:
    """``21`` → "twenty first"; ``112`` → "one hundred twelfth"."""
    return _tidy(num2words(n, to="ordinal"))


def year(n: int) -> str:
    """``1850`` → "eighteen fifty", ``1905`` → "nineteen oh five", ``2005`` → "two thousand
    five", ``2040`` → "twenty forty"."""
    if n < 1000 or n > 9999:
        return cardinal(n)
    return _tidy(num2words(n, to="year"))


def digits(text: str) -> str:
    """Every digit of ``text`` by name: "0142" → "zero one four two"."""
    return " ".join(DIGIT_NAMES[ord(d) - 48] for d in text if "0" <= d <= "9")


def integer(text: str) -> str:
    """A digit run (thousands commas allowed) as a cardinal, or digit by digit when it is long or
    zero-padded ("007")."""
    plain = text.replace(",", "")
    if len(plain) > MAX_CARDINAL_DIGITS or (len(plain) > 1 and plain[0] == "0"):
        return digits(plain)
    return cardinal(int(plain))


def decimal(text: str) -> str:
    """ "3.14" → "three point one four"; ".5" → "point five"; "-0.5" → "minus zero point five"."""
    sign = "minus " if text.startswith(("-", "−")) else ""
    whole, _, fraction = text.lstrip("+-−").partition(".")
    words = integer(whole) if whole else ""
    if fraction:
        words = f"{words} point {digits(fraction)}".strip()
    return sign + words


def plural(words: str) -> str:
    """ "nineteen ninety" → "nineteen nineties"; "third" → "thirds"; "half" → "halves"."""
    if words.endswith("half"):
        return words[:-1] + "ves"
    if words.endswith("y"):
        return f"{words[:-1]}ies"
    if words.endswith(("x", "s")):
        return f"{words}es"
    return f"{words}s"
