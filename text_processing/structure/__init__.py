"""Document structure: chapters → blocks (paragraphs) → segments (sentences)."""

from text_processing.structure.document import split_document
from text_processing.structure.model import (
    BlockSpec,
    ChapterSpec,
    DocFormat,
    DocumentError,
    LimitError,
    SegmentSpec,
    TooManySegmentsError,
)
from text_processing.structure.sentences import sentence_spans, split_sentences

__all__ = [
    "BlockSpec",
    "ChapterSpec",
    "DocFormat",
    "DocumentError",
    "LimitError",
    "SegmentSpec",
    "TooManySegmentsError",
    "sentence_spans",
    "split_document",
    "split_sentences",
]
