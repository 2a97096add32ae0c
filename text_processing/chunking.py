"""Cutting long text into pieces the acoustic model handles well.

Breaks at sentence ends first, then at clause punctuation, then between words; the periods of
"Dr. Smith", "3.50" or "e.g." are not sentence ends (the abbreviation tables are the text front
end's, :mod:`text_processing.normalize`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from text_processing.normalize import _PLACE_OR_TITLE, _TITLES

_CLOSERS = "\"')]}”’»"
_OPENERS = "\"'([{“‘«"
_NO_BREAK_AFTER = frozenset(
    {*(k.lower() for k in (*_TITLES, *_PLACE_OR_TITLE)), "jr", "sr", "e.g", "i.e", "cf", "approx"}
    | {"fig", "vol", "a.m", "p.m"}
)
_CLAUSE_ENDS = (",", ";", ":", "—", "–")
Boundary = Callable[[str, str], bool]  # (word, following word) -> is there a break after word


def split_for_synthesis(text: str, max_chars: int) -> list[str]:
    """Split text into chunks of at most ``max_chars`` characters for the acoustic model.

    Breaks at sentence ends first, then at clause punctuation (, ; : — –), then between words;
    a single word longer than ``max_chars`` is cut. Short sentences are packed together up to
    the limit. Words are never dropped or reordered: joining the chunks with spaces gives the
    text back with its whitespace collapsed. Periods in "Dr. Smith", "3.50" or "e.g." do not
    end sentences.

    Args:
        text: Text to split, normally the output of ``normalize``.
        max_chars: Longest chunk allowed, at least 1.

    Returns:
        Non-empty chunks in order; an empty list for blank text.

    Raises:
        ValueError: If ``max_chars`` is below 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    return _split(text.split(), max_chars, (_ends_sentence, _ends_clause))


def _runs(words: list[str], ends: Boundary) -> Iterator[list[str]]:
    start = 0
    for i, word in enumerate(words):
        if i == len(words) - 1 or ends(word, words[i + 1]):
            yield words[start : i + 1]
            start = i + 1


def _ends_sentence(word: str, following: str) -> bool:
    core = word.rstrip(_CLOSERS)
    if core.endswith(("!", "?")):
        return True
    if not core.endswith("."):
        return False
    stem = core.rstrip(".").lstrip(_OPENERS).lower()
    if stem == "no":  # "No. 5", but "I said no. Then"
        if following[:1].isdigit():
            return False
    elif stem in _NO_BREAK_AFTER or (len(stem) == 1 and stem.isalpha()):
        return False
    return not following.lstrip(_OPENERS)[:1].islower()


def _ends_clause(word: str, following: str) -> bool:
    return word.rstrip(_CLOSERS).endswith(_CLAUSE_ENDS) or following.startswith(("—", "–", "-"))


def _split(words: list[str], max_chars: int, breaks: tuple[Boundary, ...]) -> list[str]:
    """Chunks of ``words`` no longer than ``max_chars``.

    Splits at the first kind of boundary in ``breaks`` and recurses with the rest on runs still
    too long; with none left, packs single words, cutting those longer than the limit. The pieces
    are then packed greedily; each piece is already packed as full as it can be, so two join
    only across the boundary between them and a finer cut inside a run stays where it was made.
    """
    joined = " ".join(words)
    if len(joined) <= max_chars:
        return [joined] if joined else []
    if not breaks:
        return _pack(
            [word[i : i + max_chars] for word in words for i in range(0, len(word), max_chars)],
            max_chars,
        )
    pieces = [
        piece for run in _runs(words, breaks[0]) for piece in _split(run, max_chars, breaks[1:])
    ]
    return _pack(pieces, max_chars)


def _pack(atoms: list[str], max_chars: int) -> list[str]:
    chunks: list[str] = []
    for atom in atoms:
        if chunks and len(chunks[-1]) + 1 + len(atom) <= max_chars:
            chunks[-1] = f"{chunks[-1]} {atom}"
        else:
            chunks.append(atom)
    return chunks
