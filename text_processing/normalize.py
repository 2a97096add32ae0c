"""English text front end: read numbers, symbols and abbreviations aloud before phonemization.

Pure functions over ``str`` using only the standard library, so the handler and the tests call them
directly. ``normalize`` never raises and never leaves a digit behind: a digit run it cannot place is
read as a cardinal, or digit by digit when it is long or zero-padded (IDs, card numbers). Commas,
periods and question marks are kept because the phonemizer turns them into pauses and intonation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

__all__ = [
    "normalize",
    "number_to_words",
    "ordinal_to_words",
    "year_to_words",
]

# ---------------------------------------------------------------------------------------------
# Numbers as words
# ---------------------------------------------------------------------------------------------

_ONES = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion")
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
# Longer runs are identifiers rather than quantities; reading them digit by digit also keeps int()
# away from Python's limit on converting very long digit strings.
_MAX_CARDINAL_DIGITS = 15


def number_to_words(n: int) -> str:
    """Spell an integer as American English words, without "and" or hyphens.

    Args:
        n: Any integer whose magnitude is below 10**21.

    Returns:
        For example ``"one thousand two hundred fifty"`` or ``"minus four"``.

    Raises:
        ValueError: If ``abs(n)`` is 10**21 or more (beyond "quintillion").
    """
    if n < 0:
        return f"minus {number_to_words(-n)}"
    if n >= 1000 ** len(_SCALES):
        raise ValueError(f"{n} is too large to spell out; read it digit by digit instead")
    if n == 0:
        return "zero"
    groups: list[str] = []
    for scale in _SCALES:
        n, group = divmod(n, 1000)
        if group:
            groups.append(f"{_below_thousand(group)} {scale}".rstrip())
        if not n:
            break
    return " ".join(reversed(groups))


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words = [f"{_ONES[hundreds]} hundred"] if hundreds else []
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(f"{_TENS[tens]} {_ONES[ones]}" if ones else _TENS[tens])
    elif rest:
        words.append(_ONES[rest])
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """Spell an integer as an ordinal: ``21`` → ``"twenty first"``, ``100`` → ``"one hundredth"``.

    Raises:
        ValueError: As ``number_to_words``.
    """
    head, _, last = number_to_words(n).rpartition(" ")
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = f"{last[:-1]}ieth"
    else:
        last = f"{last}th"
    return f"{head} {last}".lstrip()


def year_to_words(n: int) -> str:
    """Read an integer the way a year is spoken.

    ``1984`` → ``"nineteen eighty four"``, ``1905`` → ``"nineteen oh five"``, ``1900`` →
    ``"nineteen hundred"``, ``2005`` → ``"two thousand five"``, ``2010`` → ``"twenty ten"``.
    Values outside 1000–9999 are read as cardinals.

    Raises:
        ValueError: As ``number_to_words``.
    """
    if not 1000 <= n <= 9999 or n % 1000 == 0 or 2000 < n < 2010:
        return number_to_words(n)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{number_to_words(century)} hundred"
    if rest < 10:
        return f"{number_to_words(century)} oh {_ONES[rest]}"
    return f"{number_to_words(century)} {number_to_words(rest)}"


def _digits_aloud(digits: str) -> str:
    return " ".join(_ONES[int(d)] for d in digits if d.isdigit())


def _cardinal(digits: str) -> str:
    """Words for a run of ASCII digits, which may carry thousands commas."""
    digits = digits.replace(",", "")
    if len(digits) > _MAX_CARDINAL_DIGITS or (len(digits) > 1 and digits[0] == "0"):
        return _digits_aloud(digits)
    return number_to_words(int(digits))


def _number(token: str) -> str:
    """Words for ``-1,234.56``, ``+3``, ``.5`` and the like."""
    sign = {"-": "minus ", "+": "plus "}.get(token[:1], "")
    whole, _, fraction = token.lstrip("+-").partition(".")
    words = _cardinal(whole) if whole else ""
    if fraction:
        words = f"{words} point {_digits_aloud(fraction)}".lstrip()
    return sign + words


def _plural(words: str) -> str:
    """``"nineteen ninety"`` → ``"nineteen nineties"``, for decades and fractions."""
    if words.endswith("y"):
        return f"{words[:-1]}ies"
    return f"{words}es" if words.endswith("x") else f"{words}s"


# ---------------------------------------------------------------------------------------------
# normalize(): one compiled pattern and one renderer per kind of token
# ---------------------------------------------------------------------------------------------

_INT = r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?![0-9])|[0-9]+)"
_MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)
_CURRENCIES = {  # symbol: (one, many, one hundredth, many hundredths)
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", "", ""),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_SCALE_SUFFIXES = {"k": "thousand", "K": "thousand", "m": "million", "M": "million"}
_SCALE_SUFFIXES |= {"mn": "million", "bn": "billion", "B": "billion"}
_UNITS = {  # abbreviation: (singular, plural); case matters ("MB" vs "mb", "L" vs "l")
    "km": ("kilometer", "kilometers"),
    "m": ("meter", "meters"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"),
    "g": ("gram", "grams"),
    "mg": ("milligram", "milligrams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "L": ("liter", "liters"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "mph": ("mile per hour", "miles per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
}
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_QUANTITY_WORDS = frozenset({*_ONES, *_TENS[2:], "hundred", *_SCALES[1:], "point"})
_NUMBER_WORD_ALT = "|".join(sorted(_QUANTITY_WORDS, key=len, reverse=True))
# Abbreviations that always precede what they qualify, so their period never ends a sentence.
_TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Prof": "Professor",
    "Gen": "General",
    "Capt": "Captain",
    "Lt": "Lieutenant",
    "Col": "Colonel",
    "Sgt": "Sergeant",
    "Rev": "Reverend",
    "Gov": "Governor",
    "Mt": "Mount",
    "vs": "versus",
}
# Abbreviations that may close a sentence: "He lives on Elm Ave. It is quiet."
_TRAILING = {
    "Jr": "Junior",
    "Sr": "Senior",
    "Ave": "Avenue",
    "Blvd": "Boulevard",
    "Rd": "Road",
    "etc": "et cetera",
    "approx": "approximately",
    "Approx": "Approximately",
    "Inc": "Incorporated",
    "Ltd": "Limited",
    "Dept": "Department",
}
_PLACE_OR_TITLE = {"St": ("Street", "Saint"), "Dr": ("Drive", "Doctor")}


def _alt(words: Iterable[str]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_TIME = re.compile(
    r"(?<![0-9:.])([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?(?![0-9])"
    r"(?:\s?([AaPp])\.?\s?[Mm]\b\.?)?"
)
_HOUR_MERIDIEM = re.compile(r"(?<![0-9:.,])(1[0-2]|0?[1-9])\s?([AaPp])\.?\s?[Mm]\b\.?")
_MERIDIEM = re.compile(r"\b([AaPp])\.\s?[Mm]\.")
_LATIN = re.compile(r"(?<![\w.])([EeIi])\.\s?([ge])\.?(?!\w)")
_TITLE = re.compile(rf"\b(?:({_alt(_TITLES)})\.|(Mrs|Mr|Ms|Mt)(?=\s+[A-Z])|(vs)\b)")
_TRAILING_ABBREVIATION = re.compile(rf"\b({_alt(_TRAILING)})\.")
_ST_DR = re.compile(r"\b(St|Dr)(?:\.|(?=\s+[A-Z]))")
_NUMBER_SIGN = re.compile(r"\b[Nn]o\.(?=\s?[0-9])|#(?=[0-9])")
_AMPERSAND = re.compile(r"&")
_CURRENCY = re.compile(
    rf"(?:(?<![\w.-])(-))?([$€£¥₹])\s?({_INT})(?:\.([0-9]+))?(?![0-9])"
    r"(?:\s?(thousand|million|billion|trillion)\b|(bn|mn|[kKmMB])(?![A-Za-z0-9]))?"
)
_CENTS = re.compile(rf"(?<![0-9.])({_INT})\s?¢")
_ISO_DATE = re.compile(
    r"(?<![0-9-])([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])(?![0-9-])"
)
_PHONE = re.compile(  # without an area code the exchange must start 2-9, so "100-1000" is a range
    r"(?<![0-9-])(?:(?:\([0-9]{3}\)\s?|[0-9]{3}-)[0-9]{3}|[2-9][0-9]{2})-[0-9]{4}(?![0-9-])"
)
_HYPHEN_CHAIN = re.compile(r"(?<![0-9-])[0-9]+(?:-[0-9]+){2,}(?![0-9])")
_RANGE = re.compile(r"(?<![\w.,-])([0-9]+)(?:-|\s?[–—]\s?)([0-9]+)(?![0-9]|[.,][0-9]|-[0-9])")
_ORDINAL = re.compile(rf"(?<![\w.,])({_INT})(st|nd|rd|th|ST|ND|RD|TH)(?![A-Za-z0-9])")
_DECADE = re.compile(r"(?<![\w.,])['’]?([1-9][0-9]{0,2}0)(?:['’]?s)(?![A-Za-z0-9])")
_FRACTION = re.compile(r"(?<![0-9/.,])(?:([0-9]+)\s)?([0-9]{1,2})/([0-9]{1,2})(?![0-9/])")
_SLASHED = re.compile(r"(?<![0-9/.,])[0-9]+(?:/[0-9]+)+(?![0-9])")
_VERSION = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+){2,}(?![0-9])")
_YEAR = re.compile(
    rf"(?<![\w.,$€£¥₹+-])(1[1-9][0-9]{{2}}|20[0-9]{{2}})"
    rf"(?![0-9]|[.,][0-9]|\s?(?:{_UNIT_ALT})(?![A-Za-z0-9])|\s?%)"
)
_NUMBER = re.compile(
    rf"(?:(?<![\w.+-])[-+])?(?:(?<![0-9.])(?:{_INT})(?:\.[0-9]+)?|(?<![\w.])\.[0-9]+)"
)
_DIGITS = re.compile(r"[0-9]+")
_UNIT = re.compile(rf"\b({_NUMBER_WORD_ALT})\s?({_UNIT_ALT})(?![A-Za-z0-9])")
_PERCENT = re.compile(r"\s?%")
_SENTENCE_FOLLOWS = re.compile(r"\s*$|\s+[\"'“‘(\[]*[A-Z]")
_NEXT_IS_NAME = re.compile(r"\s+[A-Z]")
_PREVIOUS_WORD = re.compile(r"(\S+)\s+$")
_WHITESPACE = re.compile(r"\s+")
# Denominators read as fractions; others ("24/7", "9/11", "12/25") are read number by number.
_FRACTION_DENOMINATORS = {
    d: (ordinal_to_words(d), _plural(ordinal_to_words(d))) for d in (3, 5, 6, 8, 10, 16)
} | {2: ("half", "halves"), 4: ("quarter", "quarters")}

Render = Callable[[re.Match[str]], str]


def _sub(pattern: re.Pattern[str], render: Render, text: str) -> str:
    """``pattern.sub`` keeping a space between the spoken words and adjacent letters or digits."""

    def replace(match: re.Match[str]) -> str:
        words = render(match)
        start, end = match.span()
        if start > 0 and text[start - 1].isalnum() and words[:1].isalnum():
            words = f" {words}"
        if end < len(text) and text[end].isalnum() and words[-1:].isalnum():
            words = f"{words} "
        return words

    return pattern.sub(replace, text)


def _kept_period(match: re.Match[str]) -> str:
    """The abbreviation's period, kept when it also ends the sentence (so prosody falls there)."""
    if match[0].endswith(".") and _SENTENCE_FOLLOWS.match(match.string, match.end()):
        return "."
    return ""


def _time(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), int(match[2])
    suffix = f" {match[4].lower()} m" if match[4] else ""
    spoken = number_to_words(hour)
    if minute >= 10:
        spoken += f" {number_to_words(minute)}"
    elif minute:
        spoken += f" oh {_ONES[minute]}"
    elif not suffix:
        spoken += " o'clock" if 1 <= hour <= 12 else " hundred"
    if match[3]:
        seconds = int(match[3])
        spoken += f" and {number_to_words(seconds)} second{'' if seconds == 1 else 's'}"
    return spoken + suffix + _kept_period(match)


def _hour_meridiem(match: re.Match[str]) -> str:
    return f"{number_to_words(int(match[1]))} {match[2].lower()} m{_kept_period(match)}"


def _meridiem(match: re.Match[str]) -> str:
    return f"{match[1].lower()} m{_kept_period(match)}"


def _latin(match: re.Match[str]) -> str:
    words = {"eg": "for example", "ie": "that is"}.get(f"{match[1].lower()}{match[2]}")
    if words is None:
        return match[0]
    return words.capitalize() if match[1].isupper() else words


def _title(match: re.Match[str]) -> str:
    return _TITLES[match[1] or match[2] or match[3]]


def _trailing_abbreviation(match: re.Match[str]) -> str:
    return _TRAILING[match[1]] + _kept_period(match)


def _word_before(text: str, pos: int) -> tuple[bool, bool]:
    """Whether the word before ``pos`` is a name inside a sentence, and whether it is capitalised.

    A capitalised word that opens a sentence ("Visit St. Paul") says nothing about being a name.
    Digits count as both, for house numbers and "5th St.".
    """
    found = _PREVIOUS_WORD.search(text, max(0, pos - 40), pos)
    if not found or not found[1][-1].isalnum():
        return False, False
    word = found[1]
    if word[0].isdigit():
        return True, True
    if not word[0].isupper():
        return False, False
    before = text[max(0, found.start(1) - 40) : found.start(1)].rstrip()
    return bool(before) and before[-1] not in ".!?", True


def _place_or_title(match: re.Match[str]) -> str:
    """``St.``/``Dr.``: "Street"/"Drive" after a name, "Saint"/"Doctor" before one."""
    place, title = _PLACE_OR_TITLE[match[1]]
    inside_name, capitalised = _word_before(match.string, match.start())
    next_is_name = _NEXT_IS_NAME.match(match.string, match.end())
    if inside_name or (capitalised and not next_is_name):
        return place + _kept_period(match)
    return title


def _money(match: re.Match[str]) -> str:
    one, many, one_sub, many_sub = _CURRENCIES[match[2]]
    sign = "minus " if match[1] else ""
    whole, fraction = match[3], match[4] or ""
    scale = match[5] or _SCALE_SUFFIXES.get(match[6] or "")
    if scale or len(fraction) > 2 or (fraction and not one_sub):
        amount = _number(f"{whole}.{fraction}" if fraction else whole)
        return " ".join(part for part in (sign + amount, scale, many) if part)
    hundredths = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if whole.strip("0,") or not hundredths:
        parts.append(f"{_cardinal(whole)} {one if whole == '1' else many}")
    if hundredths:
        parts.append(f"{number_to_words(hundredths)} {one_sub if hundredths == 1 else many_sub}")
    return sign + " and ".join(parts)


def _cents(match: re.Match[str]) -> str:
    return f"{_cardinal(match[1])} {'cent' if match[1] == '1' else 'cents'}"


def _iso_date(match: re.Match[str]) -> str:
    year, month, day = int(match[1]), int(match[2]), int(match[3])
    return f"{_MONTHS[month - 1]} {ordinal_to_words(day)}, {year_to_words(year)}"


def _digit_groups(match: re.Match[str]) -> str:
    """Phone numbers and hyphenated IDs: digit by digit, a pause between groups."""
    return ", ".join(_digits_aloud(group) for group in _DIGITS.findall(match[0]))


def _year_or_cardinal(digits: str) -> str:
    if len(digits) == 4 and 1000 <= int(digits) <= 2099:
        return year_to_words(int(digits))
    return _cardinal(digits)


def _range(match: re.Match[str]) -> str:
    return f"{_year_or_cardinal(match[1])} to {_year_or_cardinal(match[2])}"


def _ordinal(match: re.Match[str]) -> str:
    digits = match[1].replace(",", "")
    if len(digits) > _MAX_CARDINAL_DIGITS or (len(digits) > 1 and digits[0] == "0"):
        return f"{_digits_aloud(digits[:-1])} {ordinal_to_words(int(digits[-1]))}".lstrip()
    return ordinal_to_words(int(digits))


def _decade(match: re.Match[str]) -> str:
    n = int(match[1])
    if n in (100, 1000):  # "100s of people"
        return _plural(number_to_words(n).split()[-1])
    return _plural(year_to_words(n))


def _fraction(match: re.Match[str]) -> str:
    numerator, denominator = int(match[2]), int(match[3])
    names = _FRACTION_DENOMINATORS.get(denominator)
    if names is None or not 0 < numerator < denominator:
        return match[0]  # "24/7", "9/11", "12/25": left to _SLASHED
    spoken = f"{_ONES[numerator]} {names[0] if numerator == 1 else names[1]}"
    return f"{_cardinal(match[1])} and {spoken}" if match[1] else spoken


def _slashed(match: re.Match[str]) -> str:
    return " ".join(_year_or_cardinal(part) for part in match[0].split("/"))


def _version(match: re.Match[str]) -> str:
    return " point ".join(_cardinal(part) for part in match[0].split("."))


def _year(match: re.Match[str]) -> str:
    return year_to_words(int(match[1]))


def _unit(match: re.Match[str]) -> str:
    """Name the unit after a spelled number: singular after "one" alone, not "twenty one"."""
    singular, plural = _UNITS[match[2]]
    before = _PREVIOUS_WORD.search(match.string, max(0, match.start() - 40), match.start())
    alone = not before or before[1] not in _QUANTITY_WORDS
    return f"{match[1]} {singular if match[1] == 'one' and alone else plural}"


def _ascii_digits(text: str) -> str:
    """Map other scripts' decimal digits (Arabic-Indic, fullwidth, …) to ASCII so they are read."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(c, c)) if not c.isascii() and unicodedata.category(c) == "Nd" else c
        for c in text
    )


# Order matters: patterns that need the digits' surroundings ("9:30 a.m.", "$3.50", "No. 5",
# "5-10") run before the generic number pattern, and units are named once numbers are words.
_STEPS: tuple[tuple[re.Pattern[str], Render], ...] = (
    (_TIME, _time),
    (_HOUR_MERIDIEM, _hour_meridiem),
    (_MERIDIEM, _meridiem),
    (_LATIN, _latin),
    (_TITLE, _title),
    (_TRAILING_ABBREVIATION, _trailing_abbreviation),
    (_ST_DR, _place_or_title),
    (_NUMBER_SIGN, lambda _: "number"),
    (_AMPERSAND, lambda _: "and"),
    (_CURRENCY, _money),
    (_CENTS, _cents),
    (_ISO_DATE, _iso_date),
    (_PHONE, _digit_groups),
    (_HYPHEN_CHAIN, _digit_groups),
    (_RANGE, _range),
    (_ORDINAL, _ordinal),
    (_DECADE, _decade),
    (_FRACTION, _fraction),
    (_SLASHED, _slashed),
    (_VERSION, _version),
    (_YEAR, _year),
    (_NUMBER, lambda m: _number(m[0])),
    (_DIGITS, lambda m: _cardinal(m[0])),
    (_UNIT, _unit),
    (_PERCENT, lambda _: " percent"),
)


def normalize(text: str) -> str:
    """Rewrite English text the way a person would read it aloud.

    Spells out cardinals, ordinals, years and decades, money, times, percentages, decimals,
    negative numbers, simple ranges, fractions, units after numbers and common abbreviations,
    keeps punctuation and collapses whitespace. Never raises.

    Example:
        >>> normalize("Dr. Smith paid $3.50 at 9:30 a.m. on March 3rd")
        'Doctor Smith paid three dollars and fifty cents at nine thirty a m on March third'

    Args:
        text: Any string.

    Returns:
        The text with no digits left, words separated by single spaces.
    """
    text = _ascii_digits(text.replace("−", "-"))
    for pattern, render in _STEPS:
        text = _sub(pattern, render, text)
    return _WHITESPACE.sub(" ", text).strip()
