"""What one document may cost: the limits checked while it is read and split.

The defaults are the constants of :mod:`contract.limits` (the one place limits live); the API
builds a :class:`DocumentLimits` from its settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract import limits


@dataclass(frozen=True)
class DocumentLimits:
    """Limits for one document.

    Attributes:
        max_bytes: The largest upload (bytes as received).
        max_segments: The most sentences a document may have.
        max_depth: The deepest nesting of lists, quotes or sections.
        max_segment_chars: A sentence stays one segment (one row, one task) up to this many
            characters, written and spoken, which is what one synthesis request may carry
            (``MAX_SEGMENT_CHARS``); longer ones are cut at clauses, then at spaces. The voice
            handler cuts each request into model calls of its own size (``chunk_chars``).
        max_block_chars: The longest paragraph (no real prose goes on for half a million
            characters without a break; refusing it early keeps the reading within seconds).
        max_lines: The most lines a document's text may have (checked first, in one pass: a
            5 MB file of one-word lines is refused at once instead of split for seconds).
        max_unpacked_bytes: The most an archive (EPUB, DOCX) may unpack to: a zip bomb stops here.
        max_archive_members: The most files an archive may hold.
        max_pdf_pages: The most pages of a PDF.
        timeout_s: Wall-clock time one document may take to read and split.
        memory_bytes: Address space of the process that reads it.
    """

    max_bytes: int = limits.MAX_UPLOAD_BYTES
    max_segments: int = limits.MAX_SEGMENTS_PER_DOCUMENT
    max_depth: int = limits.MAX_NESTING_DEPTH
    max_segment_chars: int = limits.MAX_SEGMENT_CHARS
    max_block_chars: int = limits.MAX_BLOCK_CHARS
    max_lines: int = limits.MAX_LINES
    max_unpacked_bytes: int = limits.MAX_UNPACKED_BYTES
    max_archive_members: int = limits.MAX_ARCHIVE_MEMBERS
    max_pdf_pages: int = limits.MAX_PDF_PAGES
    timeout_s: float = limits.PARSE_TIMEOUT_S
    memory_bytes: int = limits.PARSE_MEMORY_BYTES
