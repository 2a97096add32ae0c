"""Sentence splits the issue found wrong, each as a class; and the handler splits the same way."""

from __future__ import annotations

import pytest

from text_processing.structure import split_document, split_sentences


def said(doc: str, fmt: str = "text") -> list[str]:
    chapters = split_document(doc, fmt=fmt)  # type: ignore[arg-type]
    return [s.text for c in chapters for b in c.blocks for s in b.segments]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # False breaks after abbreviations that do not end the sentence here.
        (
            "Smith et al. showed it works. Then we left.",
            ["Smith et al. showed it works.", "Then we left."],
        ),
        (
            "Acme Inc. announced a deal. The firm grew.",
            ["Acme Inc. announced a deal.", "The firm grew."],
        ),
        (
            "The Federal Trade Com. reported it. Done.",
            ["The Federal Trade Com. reported it.", "Done."],
        ),
        ("See pp. 12 and Fig. 3 for more. Done.", ["See pp. 12 and Fig. 3 for more.", "Done."]),
        ("It was on Mon. 5 June. Good.", ["It was on Mon. 5 June.", "Good."]),
        ("Ask Gen. Lee now. He knows.", ["Ask Gen. Lee now.", "He knows."]),
        # Real ends after an abbreviation.
        ("They work at Acme Inc. The pay is good.", ["They work at Acme Inc.", "The pay is good."]),
        # Sentences glued without a space.
        (
            "The door was shut.Nobody had a key.We left.",
            ["The door was shut.", "Nobody had a key.", "We left."],
        ),
        ("It rained!Then it stopped?Yes.", ["It rained!", "Then it stopped?", "Yes."]),
        # ... but not inside names, domains and dotted abbreviations.
        ("Visit example.com today. Bye.", ["Visit example.com today.", "Bye."]),
        (
            "He moved to the U.S. in 2010. It rained.",
            ["He moved to the U.S. in 2010.", "It rained."],
        ),
    ],
)
def test_sentences_end_where_a_reader_ends_them(text: str, expected: list[str]) -> None:
    assert said(text) == expected
    # The voice handler splits a request the same way (one algorithm).
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # A title line without punctuation is its own sentence.
        (
            "My Trip to Spain\nWe left early. It was cold.",
            ["My Trip to Spain", "We left early.", "It was cold."],
        ),
        # A plain-text list, one item per line.
        (
            "Shopping\n- eggs\n- Milk and bread\n- Butter",
            ["Shopping", "eggs", "Milk and bread", "Butter"],
        ),
        ("Steps\n1. Open the box\n2. Take it out", ["Steps", "Open the box", "Take it out"]),
        # Verse: short unpunctuated lines.
        (
            "Roses are red\nViolets are blue\nSugar is sweet",
            ["Roses are red", "Violets are blue", "Sugar is sweet"],
        ),
    ],
)
def test_unpunctuated_lines_are_not_run_together(doc: str, expected: list[str]) -> None:
    assert said(doc) == expected


def test_hard_wrapped_prose_is_still_one_sentence() -> None:
    doc = (
        "The river ran slowly past the old mill where the children used to play every\n"
        "Sunday afternoon, and nobody ever thought that it would one day run dry again.\n"
    )
    assert len(said(doc)) == 1


def test_markdown_paragraph_lines_follow_the_same_rule() -> None:
    doc = "# Notes\n\nIngredients\nFlour\nSugar\n\nMix them well. Bake.\n"
    assert said(doc, "markdown") == [
        "Notes",
        "Ingredients",
        "Flour",
        "Sugar",
        "Mix them well.",
        "Bake.",
    ]


def test_the_backtracking_bracket_sentence_splits_at_once() -> None:
    numbers = " ".join(str(101 * i)[:3] for i in range(1, 25))
    text = f"It is listed in the appendix.[{numbers}] and they were checked twice."
    assert len(text.encode()) < 260
    assert said(text) == [text]  # one sentence: the bracket is a reference, not an end


def test_unspeakable_paragraphs_become_pauses_not_failures() -> None:
    chapters = split_document("First.\n\n.\n\n…\n\nLast.", fmt="text")
    segments = [s for c in chapters for b in c.blocks for s in b.segments]
    assert [s.text for s in segments] == ["First.", ".", "…", "Last."]
    assert [s.spoken for s in segments] == ["First.", "", "", "Last."]
