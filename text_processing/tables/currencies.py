"""The one currency table: symbol or code → how amounts of it are read (the money class)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Currency:
    """How an amount is read: ``one``/``many`` units and ``sub_one``/``sub_many`` hundredths."""

    one: str
    many: str
    sub_one: str = ""
    sub_many: str = ""


CURRENCIES: dict[str, Currency] = {
    "$": Currency("dollar", "dollars", "cent", "cents"),
    "US$": Currency("US dollar", "US dollars", "cent", "cents"),
    "€": Currency("euro", "euros", "cent", "cents"),
    "£": Currency("pound", "pounds", "penny", "pence"),
    "¥": Currency("yen", "yen"),
    "₹": Currency("rupee", "rupees", "paisa", "paise"),
    "₩": Currency("won", "won"),
    "₽": Currency("ruble", "rubles", "kopek", "kopeks"),
    "CHF": Currency("Swiss franc", "Swiss francs", "centime", "centimes"),
    "USD": Currency("US dollar", "US dollars", "cent", "cents"),
    "EUR": Currency("euro", "euros", "cent", "cents"),
    "GBP": Currency("pound", "pounds", "penny", "pence"),
}
# Scale words and their abbreviations after an amount: "$800K", "€2.5bn", "$3 million".
SCALES: dict[str, str] = {
    "K": "thousand",
    "k": "thousand",
    "M": "million",
    "m": "million",
    "mn": "million",
    "MM": "million",
    "B": "billion",
    "bn": "billion",
    "T": "trillion",
    "tn": "trillion",
    "thousand": "thousand",
    "million": "million",
    "billion": "billion",
    "trillion": "trillion",
}
