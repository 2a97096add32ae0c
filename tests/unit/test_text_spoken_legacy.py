"""Earlier tests of the spoken form and chunking (from handlers/textnorm.py), kept against the new classes."""

from __future__ import annotations

import random
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text_processing.chunking import split_for_synthesis
from text_processing.spoken import normalize
from text_processing.spoken.numbers import cardinal as number_to_words
from text_processing.spoken.numbers import ordinal as ordinal_to_words
from text_processing.spoken.numbers import year as year_to_words

NORMALIZE_CASES = [
    # The example from the spec, end to end.
    (
        "Dr. Smith paid $3.50 at 9:30 a.m. on March 3rd",
        "Doctor Smith paid three dollars and fifty cents at nine thirty a m on March third",
    ),
    # Money.
    ("$1", "one dollar"),
    ("$0.01", "one cent"),
    ("$0.50", "fifty cents"),
    ("$1,250", "one thousand two hundred fifty dollars"),
    ("$1.00", "one dollar"),
    ("$3.5", "three dollars and fifty cents"),
    ("£5", "five pounds"),
    ("£2.50", "two pounds and fifty pence"),
    ("€2.50", "two euros and fifty cents"),
    ("¥500", "five hundred yen"),
    ("$1.5 million", "one point five million dollars"),
    ("$5M", "five million dollars"),
    ("-$5", "minus five dollars"),
    ("50¢", "fifty cents"),
    # Years and decades.
    ("in 1984", "in nineteen eighty four"),
    ("in 2005", "in two thousand five"),
    ("in 2010", "in twenty ten"),
    ("In 1900.", "In nineteen hundred."),
    ("since 1905.", "since nineteen oh five."),
    ("the 1990s", "the nineteen nineties"),
    ("the '80s", "the eighties"),
    ("the 1800s", "the eighteen hundreds"),
    ("100s of people", "hundreds of people"),
    # Ordinals.
    ("21st", "twenty first"),
    ("100th", "one hundredth"),
    ("the 2nd and 3rd", "the second and third"),
    ("11th 12th 13th", "eleventh twelfth thirteenth"),
    # Decimals, percentages, negatives, big numbers.
    ("3.14", "three point one four"),
    ("0.5", "zero point five"),
    ("50%", "fifty percent"),
    ("12.5%", "twelve point five percent"),
    ("-4", "minus four"),
    ("It was -3.5 today", "It was minus three point five today"),
    ("1,000,000", "one million"),
    (
        "999,999,999,999",
        "nine hundred ninety nine billion nine hundred ninety nine million "
        "nine hundred ninety nine thousand nine hundred ninety nine",
    ),
    ("42", "forty two"),
    ("007", "zero zero seven"),
    # Times.
    ("7:05 pm", "seven oh five p m"),
    ("12:00", "twelve o'clock"),
    ("10:45 AM", "ten forty five a m"),
    ("17:00", "seventeen hundred"),
    ("at 9 p.m.", "at nine p m."),
    ("at 9 p.m. Then", "at nine p m. Then"),
    # Ranges, dates, phone numbers, fractions.
    ("pages 5-10", "pages five to ten"),
    ("1990–1995", "nineteen ninety to nineteen ninety five"),
    ("on 2021-07-04", "on July fourth, twenty twenty one"),
    ("call 555-1234", "call five five five, one two three four"),
    ("1/2 cup", "one half cup"),
    ("2 3/4 miles", "two and three quarters miles"),
    ("24/7", "twenty four seven"),
    # Units after numbers.
    ("10 km", "ten kilometers"),
    ("1 km", "one kilometer"),
    ("21 km", "twenty one kilometers"),
    ("5 kg", "five kilograms"),
    ("3 ft", "three feet"),
    ("1 ft", "one foot"),
    ("30°C", "thirty degrees Celsius"),
    ("65 mph", "sixty five miles per hour"),
    ("2.5 GB", "two point five gigabytes"),
    # Abbreviations and symbols.
    ("Mr. and Mrs. Smith", "Mister and Missus Smith"),
    ("Ms. Jones", "Miz Jones"),
    ("St. Louis", "Saint Louis"),
    ("I live on Baker St. It is quiet.", "I live on Baker Street. It is quiet."),
    ("Main St. is closed", "Main Street is closed"),
    ("John Smith Jr. was there", "John Smith Junior was there"),
    ("Ali vs. Frazier", "Ali versus Frazier"),
    ("apples, pears, etc. are fruit", "apples, pears, et cetera are fruit"),
    ("fruit, e.g. apples", "fruit, for example apples"),
    ("E.g. apples", "For example apples"),
    ("one thing, i.e. this", "one thing, that is this"),
    ("approx. 5 people", "approximately five people"),
    ("No. 5", "number five"),
    ("No. I refuse.", "No. I refuse."),
    ("#1 fan", "number one fan"),
    ("Prof. Gen. Mt. Ave.", "Professor General Mount Avenue."),
    ("Tom & Jerry", "Tom and Jerry"),
    ("R&D", "R and D"),
    # Punctuation kept, whitespace collapsed, letters next to digits separated.
    ("Wait,   what?  It costs $2!", "Wait, what? It costs two dollars!"),
    ("  hello\n\tworld  ", "hello world"),
    ("mp3", "mp three"),
    ("COVID-19", "COVID-nineteen"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZE_CASES)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_normalize_reads_other_scripts_digits() -> None:
    assert normalize("٣ apples and ５ pears") == "three apples and five pears"


def test_normalize_reads_very_long_digit_runs_digit_by_digit() -> None:
    assert normalize("1234567890123456") == (
        "one two three four five six seven eight nine zero one two three four five six"
    )


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (20, "twenty"),
        (45, "forty five"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (999, "nine hundred ninety nine"),
        (1000, "one thousand"),
        (1250, "one thousand two hundred fifty"),
        (100_000, "one hundred thousand"),
        (1_000_001, "one million one"),
        (2_000_300_000, "two billion three hundred thousand"),
        (10**12, "one trillion"),
        (-4, "minus four"),
    ],
)
def test_number_to_words(n: int, expected: str) -> None:
    assert number_to_words(n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "zeroth"),
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (5, "fifth"),
        (8, "eighth"),
        (9, "ninth"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty first"),
        (100, "one hundredth"),
        (1_000_003, "one million third"),
    ],
)
def test_ordinal_to_words(n: int, expected: str) -> None:
    assert ordinal_to_words(n) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1984, "nineteen eighty four"),
        (1900, "nineteen hundred"),
        (1905, "nineteen oh five"),
        (2000, "two thousand"),
        (2005, "two thousand five"),
        (2010, "twenty ten"),
        (2024, "twenty twenty four"),
        (1066, "ten sixty six"),
        (800, "eight hundred"),
    ],
)
def test_year_to_words(n: int, expected: str) -> None:
    assert year_to_words(n) == expected


# A reader for our own output: checks number_to_words over its whole range, not just the table.
_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_ONES += ["eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"]
_ONES += ["eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SMALL = {w: i for i, w in enumerate(_ONES)} | {w: 10 * i for i, w in enumerate(_TENS, start=2)}
_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


def _read_number(words: str) -> int:
    total = group = 0
    for word in words.split():
        if word in _SMALL:
            group += _SMALL[word]
        elif word == "hundred":
            group *= 100
        else:
            total, group = total + group * _SCALE[word], 0
    return total + group


def _check_number_round_trip(n: int) -> None:
    words = number_to_words(n)
    assert _read_number(words) == n
    assert normalize(f"{n:,}") == words  # thousands commas: never read as a year


def _check_normalize_output(text: str) -> None:
    out = normalize(text)
    assert not any(unicodedata.category(c) == "Nd" for c in out), (text, out)
    assert out == out.strip()
    assert "  " not in out


def _check_split(text: str, max_chars: int) -> None:
    chunks = split_for_synthesis(text, max_chars)
    assert all(0 < len(chunk) <= max_chars for chunk in chunks)
    assert all(chunk == chunk.strip() for chunk in chunks)
    assert "".join(" ".join(chunks).split()) == "".join(text.split())
    if all(len(word) <= max_chars for word in text.split()):
        assert " ".join(chunks).split() == text.split()


FUZZ_ALPHABET = "0123456789 .,:;$£€¥¢%-–—/+&'#°()stndrhAaPpMmkgNoDrSLK\n\t"
SPLIT_WORDS = [
    "Dr.",
    "Smith",
    "paid",
    "3.50,",
    "e.g.",
    "tea;",
    "—",
    "No.",
    "5.",
    "Then",
    "etc.",
    "went",
    "home!",
    "Why?",
    "word",
    "a" * 30,
    "it:",
    '"Yes."',
    "(see",
    "below).",
]


def test_number_round_trip_seeded() -> None:
    rng = random.Random(20240601)
    for n in [*range(1100), *(rng.randrange(10**12) for _ in range(3000))]:
        _check_number_round_trip(n)


def test_normalize_fuzz_seeded() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        _check_normalize_output("".join(rng.choices(FUZZ_ALPHABET, k=rng.randrange(40))))
    for _ in range(300):
        _check_normalize_output("".join(chr(rng.randrange(0x30000)) for _ in range(20)))


def test_plain_digit_runs_become_words_seeded() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        digits = str(rng.randrange(10 ** rng.randrange(1, 25)))
        out = normalize(digits)
        assert out and all(c.isalpha() or c == " " for c in out), (digits, out)


@pytest.mark.parametrize("abbreviation", ["Dr.", "Mr.", "St.", "e.g."])
def test_split_does_not_break_after_abbreviations(abbreviation: str) -> None:
    text = f"Call {abbreviation} Smith now, please. Thanks."
    assert split_for_synthesis(text, 20) == [f"Call {abbreviation} Smith now,", "please. Thanks."]


def test_split_keeps_decimals_whole() -> None:
    assert split_for_synthesis("It is 3.50 now, please. Thanks.", 20) == [
        "It is 3.50 now,",
        "please. Thanks.",
    ]


def test_split_prefers_sentences_then_clauses_then_spaces() -> None:
    text = "One two three. Four five, six seven eight nine ten eleven."
    assert split_for_synthesis(text, 15) == [
        "One two three.",
        "Four five,",
        "six seven eight",
        "nine ten",
        "eleven.",
    ]


def test_split_packs_short_sentences_up_to_the_limit() -> None:
    assert split_for_synthesis("Hi. Yes. No? Fine!", 100) == ["Hi. Yes. No? Fine!"]


def test_split_cuts_words_longer_than_the_limit() -> None:
    assert split_for_synthesis("ab abcdefgh", 3) == ["ab", "abc", "def", "gh"]


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_split_blank_text_gives_no_chunks(blank: str) -> None:
    assert split_for_synthesis(blank, 10) == []


def test_split_rejects_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="max_chars must be at least 1"):
        split_for_synthesis("text", 0)


def test_split_properties_seeded() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        text = " ".join(rng.choices(SPLIT_WORDS, k=rng.randrange(30)))
        _check_split(text, rng.randrange(1, 80))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=999_999_999_999))
def test_number_round_trip_hypothesis(n: int) -> None:
    _check_number_round_trip(n)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=FUZZ_ALPHABET)))
def test_normalize_never_raises_nor_leaves_digits(text: str) -> None:
    _check_normalize_output(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=1, max_size=40))
def test_plain_digit_runs_become_words(digits: str) -> None:
    out = normalize(digits)
    assert out and all(c.isalpha() or c == " " for c in out)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(), st.lists(st.sampled_from(SPLIT_WORDS)).map(" ".join)),
    st.integers(min_value=1, max_value=120),
)
def test_split_properties(text: str, max_chars: int) -> None:
    _check_split(text, max_chars)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.text("qwxyz", min_size=2, max_size=8), min_size=1, max_size=6),
        min_size=1,
        max_size=8,
    )
)
def test_split_ends_chunks_at_sentences_when_sentences_fit(sentences: list[list[str]]) -> None:
    text = " ".join(" ".join(words).capitalize() + "." for words in sentences)
    max_chars = max(len(" ".join(words)) + 1 for words in sentences)
    for chunk in split_for_synthesis(text, max_chars):
        assert chunk.endswith(".") and chunk[0].isupper()
