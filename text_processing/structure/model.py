"""The document tree the API stores, and the errors a document can raise."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DocFormat = Literal["markdown", "text"]


class DocumentError(ValueError):
    """The document cannot be converted; the message says why and what to do."""


class LimitError(DocumentError):
    """The document goes past a limit (nesting, sentence count, size); the message names the
    place and the limit."""


class TooManySegmentsError(LimitError):
    """The document has more sentences than one document may have."""


@dataclass(frozen=True)
class SegmentSpec:
    """One sentence: the text as written (markup removed), where it sits in the source text, and
    its spoken form (what the voice is given; ``""`` when nothing in it can be spoken)."""

    text: str
    start: int
    end: int
    spoken: str = ""


@dataclass(frozen=True)
class BlockSpec:
    """One paragraph, list item, heading or table row."""

    segments: list[SegmentSpec]


@dataclass(frozen=True)
class ChapterSpec:
    """One chapter: a title and its blocks, in reading order."""

    title: str
    blocks: list[BlockSpec] = field(default_factory=list)
