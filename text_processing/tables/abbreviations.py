"""The one abbreviation table: what each abbreviation is read as, and whether its period can end
a sentence. The sentence splitter and the spoken form both read it.

Kinds:
    ``title``    precedes a name ("Dr. Smith"); its period never ends a sentence.
    ``number``   precedes a number ("No. 5", "pp. 12-19", "Fig. 3"); no sentence end before a digit.
    ``day``/``month``  calendar words ("Mon.", "Jun."); no sentence end before a digit or comma.
    ``trailing`` may close a sentence ("Acme Inc."); a sentence ends after it only when the next
                 word is one that usually opens a sentence (:data:`SENTENCE_STARTERS`).
    ``latin``    "e.g.", "i.e.", "et al.", "cf."; like ``trailing``.

An expansion of ``None`` means "say the word itself, without its period" ("et al.").
``needs_digit`` marks abbreviations that are ordinary words too ("Gen" is a name, "p" a letter):
they are expanded only before a number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["title", "number", "day", "month", "trailing", "latin"]


@dataclass(frozen=True)
class Abbreviation:
    """One row of the table."""

    spoken: str | None
    kind: Kind
    needs_digit: bool = False
    before_digit: str | None = None  # another reading before a number ("Gen. 1:3": Genesis)


def _rows(kind: Kind, **rows: str | None) -> dict[str, Abbreviation]:
    return {k: Abbreviation(v, kind) for k, v in rows.items()}


# Keys are written without the period, case as written; lookups try the word as written.
ABBREVIATIONS: dict[str, Abbreviation] = {
    **_rows(
        "title",
        Mr="Mister",
        Mrs="Missus",
        Ms="Miz",
        Messrs="Messieurs",
        Dr="Doctor",
        Prof="Professor",
        Capt="Captain",
        Lt="Lieutenant",
        Col="Colonel",
        Sgt="Sergeant",
        Cpl="Corporal",
        Adm="Admiral",
        Maj="Major",
        Rev="Reverend",
        Gov="Governor",
        Sen="Senator",
        Rep="Representative",
        Pres="President",
        Hon="Honorable",
        Fr="Father",
        Mt="Mount",
        Ft="Fort",
        St="Saint",
    ),
    "Gen": Abbreviation("General", "title", before_digit="Genesis"),
    **_rows(
        "number",
        No="number",
        Nos="numbers",
        Vol="volume",
        Vols="volumes",
        Ch="chapter",
        Chap="chapter",
        Sec="section",
        Fig="figure",
        Figs="figures",
        Eq="equation",
        Eqs="equations",
        Art="article",
        Para="paragraph",
        Ex="example",
        Tel="telephone",
        pp="pages",
    ),
    "p": Abbreviation("page", "number", needs_digit=True),
    "no": Abbreviation("number", "number", needs_digit=True),
    "fig": Abbreviation("figure", "number", needs_digit=True),
    "vol": Abbreviation("volume", "number", needs_digit=True),
    "ch": Abbreviation("chapter", "number", needs_digit=True),
    "sec": Abbreviation("section", "number", needs_digit=True),
    **_rows(
        "day",
        Mon="Monday",
        Tue="Tuesday",
        Tues="Tuesday",
        Wed="Wednesday",
        Thu="Thursday",
        Thur="Thursday",
        Thurs="Thursday",
        Fri="Friday",
        Sat="Saturday",
        Sun="Sunday",
    ),
    **_rows(
        "month",
        Jan="January",
        Feb="February",
        Mar="March",
        Apr="April",
        Jun="June",
        Jul="July",
        Aug="August",
        Sep="September",
        Sept="September",
        Oct="October",
        Nov="November",
        Dec="December",
    ),
    **_rows(
        "trailing",
        Jr="Junior",
        Sr="Senior",
        Ave="Avenue",
        Blvd="Boulevard",
        Rd="Road",
        Ln="Lane",
        Inc="Incorporated",
        Ltd="Limited",
        Corp="Corporation",
        Co="Company",
        Bros="Brothers",
        Dept="Department",
        Univ="University",
        Assn="Association",
        Com=None,
        Est="Established",
        approx="approximately",
        Approx="Approximately",
        est="estimated",
        misc="miscellaneous",
        dept="department",
    ),
    **_rows(
        "latin",
        etc="et cetera",
        vs="versus",
        cf="compare",
        ca="circa",
        viz="namely",
    ),
}
# Abbreviations written with inner periods; the key is lower case, without the final period.
DOTTED: dict[str, Abbreviation] = {
    "e.g": Abbreviation("for example", "latin"),
    "i.e": Abbreviation("that is", "latin"),
    "et al": Abbreviation("et al", "latin"),
    "a.m": Abbreviation("a m", "trailing"),
    "p.m": Abbreviation("p m", "trailing"),
    "n.b": Abbreviation("note", "latin"),
    "ibid": Abbreviation("ibid", "latin"),
}

# Calendar words that are English words too ("sat", "sun", "wed", "mar"): read as the day or
# month only before a number or a comma.
AMBIGUOUS_CALENDAR = frozenset({"Mar", "Sat", "Sun", "Wed"})

# Words that open most English sentences: after a ``trailing`` or ``latin`` abbreviation, a
# sentence ends only when one of these follows ("Acme Inc. The firm ..." but "Acme Inc. Announced").
SENTENCE_STARTERS = frozenset(
    [
        "a",
        "an",
        "the",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "he",
        "she",
        "they",
        "we",
        "you",
        "i",
        "my",
        "our",
        "his",
        "her",
        "their",
        "there",
        "then",
        "but",
        "and",
        "so",
        "yet",
        "or",
        "nor",
        "if",
        "when",
        "while",
        "after",
        "before",
        "as",
        "at",
        "in",
        "on",
        "by",
        "for",
        "from",
        "with",
        "without",
        "to",
        "of",
        "one",
        "two",
        "three",
        "some",
        "many",
        "most",
        "all",
        "no",
        "not",
        "never",
        "however",
        "meanwhile",
        "later",
        "today",
        "yesterday",
        "tomorrow",
        "now",
        "here",
        "what",
        "who",
        "why",
        "how",
        "where",
        "which",
        "each",
        "every",
        "both",
        "neither",
        "either",
        "once",
    ]
)


def lookup(word: str) -> Abbreviation | None:
    """The row for ``word`` (written without its final period), or ``None``."""
    return ABBREVIATIONS.get(word) or DOTTED.get(word.lower())
