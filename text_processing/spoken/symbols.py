"""Symbols: "#5" → "number five", "5 + 3" → "five plus three"; markup characters that are no
word ("##", "**", backticks, "|", "~") are not read out at all (a narrator would not say
"asterisk asterisk")."""

from __future__ import annotations

from text_processing.spoken.rules import Rule, rule

RULES: tuple[Rule, ...] = (
    rule("number-sign", r"(?<![\w&])#(?=\d)", lambda m: "number "),
    rule("markup", r"#{1,6}(?=\s|$)|[*`~|_^]+|\\(?=\S)", lambda m: " "),
    # "x" is a multiplication sign only after a number ("3x4", "2 x 3", "a 2x speedup"), so it
    # is read before numbers are words; elsewhere it is a letter ("the x axis", "x86"), and the
    # spoken form ("two times three") reads the same when normalized again.
    rule("times", r"(?<=\d) ?[×x] ?(?=\d)|(?<=\d)[×x](?!\w)", lambda m: " times "),
)
# After numbers are words: arithmetic signs between words.
LATE_RULES: tuple[Rule, ...] = (
    rule("plus", r"(?<=\w) \+ (?=\w)", lambda m: " plus "),
    rule("equals", r"(?<=\w) = (?=\w)", lambda m: " equals "),
    rule("times", r"(?<=\w) × (?=\w)", lambda m: " times "),
)
