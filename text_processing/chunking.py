"""Cutting text into pieces of bounded length for synthesis and streaming, on sentence ends.

Sentences come from the one splitter (:mod:`text_processing.structure.sentences`); a sentence
longer than the limit is cut at clause punctuation, then between words; short sentences are
packed together up to the limit.
"""

from __future__ import annotations

from collections.abc import Iterable

from text_processing.structure.sentences import sentence_spans, split_long


def pack(pieces: Iterable[str], max_chars: int, sep: str = " ") -> list[str]:
    """Join consecutive pieces while the result stays within ``max_chars``."""
    chunks: list[str] = []
    for piece in pieces:
        if chunks and len(chunks[-1]) + len(sep) + len(piece) <= max_chars:
            chunks[-1] = f"{chunks[-1]}{sep}{piece}"
        else:
            chunks.append(piece)
    return chunks


def split_for_synthesis(text: str, max_chars: int) -> list[str]:
    """Split plain text into chunks of at most ``max_chars`` characters.

    Breaks at sentence ends first (the document splitter's sentences), then at clause punctuation
    (, ; : — –), then between words; a single word longer than ``max_chars`` is cut. Words are
    never dropped or reordered: joining the chunks with spaces gives the text back with its
    whitespace collapsed.

    Raises:
        ValueError: If ``max_chars`` is below 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    flat = " ".join(text.split())
    pieces: list[str] = []
    for a, b in sentence_spans(flat):
        for ca, cb in split_long(flat, a, b, max_chars):
            pieces.append(flat[ca:cb])
    return pack(pieces, max_chars)
