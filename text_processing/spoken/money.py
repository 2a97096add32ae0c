"""Money, from the one currency table (:mod:`text_processing.tables.currencies`).

"$3.50" → "three dollars and fifty cents", "€20" and "20 €" → "twenty euros", "$800K" → "eight
hundred thousand dollars", "£2.5bn" → "two point five billion pounds", "99¢" → "ninety nine cents".
"""

from __future__ import annotations

import re

from text_processing.spoken import numbers
from text_processing.spoken.rules import Rule, alternation, rule
from text_processing.tables.currencies import CURRENCIES, SCALES, Currency

_INT = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
_SYMBOLS = alternation(k for k in CURRENCIES if not k.isalpha())
_CODES = alternation(k for k in CURRENCIES if k.isalpha())
_SCALE_WORDS = "thousand|million|billion|trillion"
_SCALE_ABBR = alternation(k for k in SCALES if k not in _SCALE_WORDS.split("|"))
_AMOUNT = (
    rf"(?P<whole>{_INT})(?:\.(?P<frac>\d+))?(?!\d)"
    rf"(?:\s?(?P<scale>{_SCALE_WORDS})\b|(?P<abbr>{_SCALE_ABBR})(?![A-Za-z0-9]))?"
)


def _amount(currency: Currency, whole: str, fraction: str, scale: str | None, sign: str) -> str:
    if scale or len(fraction) > 2 or (fraction and not currency.sub_one):
        amount = numbers.decimal(f"{whole}.{fraction}" if fraction else whole)
        return " ".join(p for p in (sign + amount, scale, currency.many) if p)
    hundredths = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if whole.strip("0,") or not hundredths:
        unit = currency.one if whole == "1" else currency.many
        parts.append(f"{numbers.integer(whole)} {unit}")
    if hundredths:
        sub = currency.sub_one if hundredths == 1 else currency.sub_many
        parts.append(f"{numbers.cardinal(hundredths)} {sub}")
    return sign + " and ".join(parts)


def _money(match: re.Match[str]) -> str:
    sign = "minus " if match.groupdict().get("sign") else ""
    scale = match["scale"] or SCALES.get(match["abbr"] or "")
    currency = CURRENCIES[match["cur"].strip()]
    return _amount(currency, match["whole"], match["frac"] or "", scale, sign)


def _cents(match: re.Match[str]) -> str:
    return f"{numbers.integer(match[1])} {'cent' if match[1] == '1' else 'cents'}"


RULES: tuple[Rule, ...] = (
    rule(
        "money-before",
        rf"(?:(?<![\w.-])(?P<sign>-))?(?P<cur>{_SYMBOLS}|(?<![\w])(?:{_CODES})\s)\s?{_AMOUNT}",
        _money,
    ),
    rule(
        "money-after",
        rf"(?<![\w.,]){_AMOUNT}\s?(?P<cur>[€£¥₹₽₩]|(?:{_CODES})(?![\w]))",
        _money,
    ),
    rule("cents", rf"(?<![\d.])({_INT})\s?¢", _cents),
)
