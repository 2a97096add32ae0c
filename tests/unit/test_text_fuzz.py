"""Fuzzing the splitter and the normalizer: any input is handled, in time linear in its size.

How the time bound is proven without flaky wall-clock thresholds: for each generated motif, the
same motif repeated to a small and to an eight times larger input is split and normalized, and
the *process CPU time* of each is measured (the minimum of a few runs, which discards
scheduling noise). Linear work gives a ratio near 8; the bound allowed is 4x that plus a fixed
slack for tiny inputs, while quadratic work (ratio 64) or catastrophic backtracking (far more)
fails. The motifs lean on what made the old code blow up: markup delimiters, brackets of numbers,
abbreviations, dots and digits.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from text_processing.spoken import normalize
from text_processing.structure import DocumentError, split_document

SMALL, FACTOR = 1500, 8
RATIO_BOUND = FACTOR * 4
SLACK_S = 0.15
ALPHABET = st.sampled_from(
    [
        *list("aAzZ019 .,;:!?-–*_`~#[]()<>/\\|&%$€@'\"\n½²"),
        "Dr.",
        "e.g.",
        "U.S.",
        "Inc.",
        "<!--",
        "-->",
        "](",
        "![",
        "```",
        "**",
        "&amp;",
        "\n\n",
        "101 ",
        "3.50",
        "03/04/2025",
        "9:30",
        "IV",
        "km/h",
        "<break/>",
        "http://",
        "a@b.c",
    ]
)
MOTIFS = st.lists(ALPHABET, min_size=1, max_size=24).map("".join)


def _cpu(work: Callable[[], object], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        began = time.process_time()
        work()
        best = min(best, time.process_time() - began)
    return best


def _split(doc: str, fmt: str) -> None:
    # Nothing to speak, or a limit: refusing is fine, hanging is not.
    with contextlib.suppress(DocumentError):
        split_document(doc, fmt=fmt)  # type: ignore[arg-type]


def _scales_linearly(motif: str, work: Callable[[str], object]) -> None:
    small = (motif * (SMALL // len(motif) + 1))[:SMALL]
    big = (motif * (SMALL * FACTOR // len(motif) + 1))[: SMALL * FACTOR]
    t_small = _cpu(lambda: work(small), 3)
    t_big = _cpu(lambda: work(big), 2)
    assert t_big <= RATIO_BOUND * t_small + SLACK_S, (
        f"{len(big)} chars took {t_big:.3f} s of CPU, {len(small)} took {t_small:.4f} s: "
        f"not linear for motif {motif!r}"
    )


HOSTILE = [
    "*a ",
    "Go. ",
    "_a ",
    "`` ` ",
    "[[[[",
    "[^",
    "<a ",
    "<!--",
    "![x",
    "[101 202 ",
    "appendix.[101 202 303] and ",
    "1.1.",
    "A.B.",
    "$1,",
    "e.g. ",
    "<script",
    "~~a ",
    "  \n ",
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(motif=MOTIFS)
@example(motif="*a ")
@example(motif="[101 202 ")
@example(motif="`` ` ")
@example(motif="ae.g.")  # one long sentence whose spoken form grows: cut once, not recursively
def test_markdown_splitting_scales_linearly(motif: str) -> None:
    _scales_linearly(motif, lambda doc: _split(doc, "markdown"))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(motif=MOTIFS)
@example(motif="Go. ")
@example(motif="appendix.[101 202 303] and ")
def test_plain_splitting_scales_linearly(motif: str) -> None:
    _scales_linearly(motif, lambda doc: _split(doc, "text"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(motif=MOTIFS)
@example(motif="1.1.")
@example(motif="A.B.")
@example(motif="a@b.c")
def test_normalizing_scales_linearly(motif: str) -> None:
    _scales_linearly(motif, normalize)


def test_known_hostile_motifs_scale_linearly() -> None:
    for motif in HOSTILE:
        _scales_linearly(motif, lambda doc: _split(doc, "markdown"))
        _scales_linearly(motif, normalize)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_any_text_is_split_and_spoken_without_error(text: str) -> None:
    try:
        chapters = split_document(text, fmt="markdown")
    except DocumentError:
        return
    for chapter in chapters:
        for block in chapter.blocks:
            for segment in block.segments:
                assert not any(ch.isdigit() for ch in normalize(segment.text) if ch.isascii())
