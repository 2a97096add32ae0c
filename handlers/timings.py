"""Word times from the VITS duration predictor: which model inputs say which word, and when.

A VITS voice decides how many audio frames each input symbol (phoneme or character id) lasts; the
decoder's output is exactly the sum of those durations (``handlers/backends/`` expose them as
samples per input id). A word's start and end are the running sums at its first and last symbol.

What is not given is which symbols belong to which written word: the input is one phoneme (or
character) string per sentence, with word separators (a space id). Usually there is one group
per word, but espeak-ng joins short function words ("of the" → ``ʌvðə``) and may split others, so
the written words are aligned to the groups by their lengths spoken alone, with a small dynamic
programme in the manner of Gale & Church's length-based sentence alignment (W. A. Gale,
K. W. Church, "A program for aligning sentences in bilingual corpora", Computational
Linguistics 19(1), 1993): steps of 1:1, 2:1, 3:1, 1:2 and 1:3, each costing the difference of
lengths plus a penalty for anything but 1:1. A group holding several words is shared between
them in proportion to their lengths. No library does this for phoneme groups of a TTS input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Cost of a step that is not one word to one group, in symbols.
_MERGE_PENALTY = 2.0
_STEPS = ((1, 1), (2, 1), (3, 1), (1, 2), (1, 3))


@dataclass(frozen=True)
class Group:
    """Input symbols between two word separators: ``[start, end)`` in samples, and how many
    speech symbols it holds."""

    start: int
    end: int
    symbols: int


def groups_of(
    ids: Sequence[int],
    id_samples: np.ndarray,
    *,
    separators: frozenset[int],
    silent: frozenset[int],
    padding: frozenset[int] = frozenset(),
    offset: int = 0,
) -> list[Group]:
    """Cut one model input into word groups with their times.

    Args:
        ids: The model's input ids (one sentence).
        id_samples: Samples each id lasts (the duration predictor's output times the hop
            length), same length as ``ids``.
        separators: Ids that separate words (the space).
        silent: Ids that are never speech (begin/end markers, punctuation): they end a word's
            time, and a group of only these is dropped.
        padding: Ids put between symbols (Piper's ``_`` after each phoneme): part of the sound
            of the symbol before them, never a symbol themselves.
        offset: Sample where this input's audio starts in the whole answer.

    Returns:
        The groups, in order, times in samples from the start of the whole answer.
    """
    ends = offset + np.cumsum(np.asarray(id_samples, dtype=np.int64))
    starts = ends - np.asarray(id_samples, dtype=np.int64)
    groups: list[Group] = []
    first: int | None = None
    last = 0
    count = 0
    for i, token in enumerate(ids):
        if token in separators:
            if first is not None:
                groups.append(Group(int(starts[first]), int(ends[last]), count))
            first, count = None, 0
            continue
        if token in padding:
            if first is not None and last == i - 1:
                last = i  # the padding after a phoneme is part of its sound
            continue
        if token in silent:
            continue
        if first is None:
            first = i
            # The transition into a word is in the separator (and the blank after it) just
            # before its first phoneme: the word starts there. The blank right after the
            # previous symbol stays that symbol's sound (Piper's alignment convention).
            while first > 0 and (ids[first - 1] in padding or ids[first - 1] in separators):
                first -= 1
            if (
                first < i
                and ids[first] in padding
                and (first == 0 or ids[first - 1] not in separators)
            ):
                first += 1
        last = i
        count += 1
    if first is not None:
        groups.append(Group(int(starts[first]), int(ends[last]), count))
    return groups


def align_words(
    words: Sequence[str], lengths: Sequence[int], groups: Sequence[Group]
) -> list[tuple[str, int, int]]:
    """Give each written word a time from the groups.

    Args:
        words: The words as written, in order.
        lengths: Each word's symbol count when spoken alone (same length as ``words``).
        groups: The input's word groups (:func:`groups_of`), in order.

    Returns:
        ``(word, start, end)`` per word, in samples, monotonic and inside the groups' range.
        Empty when either side is empty.
    """
    n, m = len(words), len(groups)
    if not n or not m:
        return []
    inf = float("inf")
    cost = np.full((n + 1, m + 1), inf)
    back: dict[tuple[int, int], tuple[int, int]] = {}
    cost[0, 0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if cost[i, j] == inf:
                continue
            for di, dj in _STEPS:
                a, b = i + di, j + dj
                if a > n or b > m:
                    continue
                step = float(abs(sum(lengths[i:a]) - sum(g.symbols for g in groups[j:b])))
                step += 0.0 if (di, dj) == (1, 1) else _MERGE_PENALTY * (di + dj - 2)
                if cost[i, j] + step < cost[a, b]:
                    cost[a, b] = cost[i, j] + step
                    back[(a, b)] = (i, j)
    if cost[n, m] == inf:  # more than 3:1 somewhere: share the whole span by length
        return _share(words, lengths, groups[0].start, groups[-1].end)
    out: list[tuple[str, int, int]] = []
    cell = (n, m)
    pieces: list[tuple[int, int, int, int]] = []
    while cell != (0, 0):
        i, j = back[cell]
        pieces.append((i, cell[0], j, cell[1]))
        cell = (i, j)
    for i, a, j, b in reversed(pieces):
        out += _share(words[i:a], lengths[i:a], groups[j].start, groups[b - 1].end)
    return out


def _share(
    words: Sequence[str], lengths: Sequence[int], start: int, end: int
) -> list[tuple[str, int, int]]:
    """Split ``[start, end)`` between ``words`` in proportion to their lengths."""
    weights = np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)
    bounds = start + np.round(
        np.concatenate([[0.0], np.cumsum(weights)]) / weights.sum() * (end - start)
    )
    return [(w, int(bounds[k]), int(bounds[k + 1])) for k, w in enumerate(words)]


def written_words(text: str) -> list[str]:
    """The words of ``text`` as a reader sees them: split at white space, punctuation around
    a word removed, tokens without a letter or digit dropped."""
    out = []
    for token in text.split():
        word = token.strip("\"'“”‘’«»()[]{}.,;:!?…—–-")
        if any(ch.isalnum() for ch in word):
            out.append(word)
    return out
