"""Electronic: e-mail addresses and web addresses, read the way people say them aloud.

"jane.doe@example.com" → "jane dot doe at example dot com"; "https://www.example.com/docs" →
"w w w dot example dot com slash docs" (the scheme is not read, as people do not say it).
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, rule

_SYMBOLS = {
    ".": "dot",
    "/": "slash",
    "-": "dash",
    "_": "underscore",
    "+": "plus",
    "?": "question mark",
    "=": "equals",
    "&": "and",
    ":": "colon",
    "#": "hash",
    "%": "percent",
    "~": "tilde",
    "@": "at",
}
_PARTS = re.compile(r"[A-Za-z]+|[0-9]+|[^A-Za-z0-9]")
_TLDS = "com|org|net|edu|gov|io|dev|ai|co|uk|de|fr|info|biz|app|me|us|eu|ca|au"
_TRAILING_PUNCT = ".,;:!?)]'\""


def spell_address(text: str) -> str:
    """Words for an address: letters as words, digit runs digit by digit, symbols named."""
    words = []
    for part in _PARTS.findall(text):
        if part.isdigit():
            words.append(numbers.digits(part))
        elif part.isalpha():
            words.append("w w w" if part.lower() == "www" else part)
        elif part in _SYMBOLS:
            words.append(_SYMBOLS[part])
    return " ".join(words)


def _email(match: re.Match[str]) -> str:
    return spell_address(match[0])


def _url(match: re.Match[str]) -> str:
    address = match[0]
    tail = ""
    while address and address[-1] in _TRAILING_PUNCT:
        address, tail = address[:-1], address[-1] + tail
    body = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]{0,15}://", "", address).rstrip("/")
    return spell_address(body) + tail


def _domain(match: re.Match[str]) -> str:
    return spell_address(match[0])


RULES: tuple[Rule, ...] = (
    rule(
        "email",
        r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}"
        r"(?![\w@-])",
        _email,
    ),
    rule("url", r"\b(?:(?:https?|ftp)://|www\.)[^\s<>\"\U000F0000-\U000FFFFD]{1,2000}", _url),
    rule(
        "domain",
        rf"(?<![\w@./-])[a-z0-9-]{{1,63}}(?:\.[a-z0-9-]{{1,63}}){{0,4}}\.(?:{_TLDS})(?![\w-]|\.\w)",
        _domain,
    ),
)
