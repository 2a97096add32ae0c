"""PDF with a text layer → plain text, with ``pypdf``.

pypdf gives each page's text in content-stream order (the reading order of nearly every
single-column document). Then, what a reader skips is removed: lines that repeat at the top or
bottom of most pages (running headers and footers, compared with their digits blanked so "Page
3" matches "Page 4"), lines that are only a page number, and hyphenation at line ends
("exam-\\nple" → "example"). Lines are joined into paragraphs where the previous line ends a
sentence and is visibly shorter than the page's text width.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter

from text_processing.formats.errors import UploadError
from text_processing.limits import DocumentLimits

log = logging.getLogger(__name__)

_PAGE_NUMBER = re.compile(
    r"\s*(?:page\s+)?(?:\d{1,5}|[ivxlcdm]{1,8})(?:\s*(?:of|/)\s*\d{1,5})?\s*|\s*[-–—]\s*\d{1,5}\s*[-–—]\s*",
    re.I,
)
_DIGITS = re.compile(r"\d+")
_HYPHENATED = re.compile(r"([A-Za-z]{2,})-\n([a-z]{2,})")
_ENDS_SENTENCE = re.compile(r"[.!?:\"'”’)]$")
_EDGE_LINES = 2


def _shape(line: str) -> str:
    return _DIGITS.sub("#", " ".join(line.split()).lower())


def _running_lines(pages: list[list[str]]) -> set[str]:
    """Shapes of the lines at the top or bottom of at least half the pages (and two or more)."""
    counts: Counter[str] = Counter()
    for lines in pages:
        edges = {_shape(line) for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]}
        counts.update(edge for edge in edges if edge)
    need = max(2, (len(pages) + 1) // 2)
    return {shape for shape, n in counts.items() if n >= need} if len(pages) >= 2 else set()


def _paragraphs(lines: list[str]) -> str:
    """Lines of running text → paragraphs separated by blank lines."""
    width = max((len(line) for line in lines), default=0)
    out: list[str] = []
    for line in lines:
        if not line.strip():
            if out and out[-1] != "":
                out.append("")
            continue
        out.append(line.strip())
        if _ENDS_SENTENCE.search(line.strip()) and len(line.strip()) < 0.8 * width:
            out.append("")
    return "\n".join(out)


def read_pdf(data: bytes, limits: DocumentLimits) -> str:
    """The text of a PDF, one paragraph per blank-line-separated block.

    Raises:
        UploadError: Damaged (422), encrypted with a password (422), too many pages (413), or
            without a text layer (scanned pages, 422).
    """
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError, PdfStreamError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                reader.decrypt("")  # many PDFs are "encrypted" with an empty user password
                _ = reader.pages[0]
            except (FileNotDecryptedError, PdfReadError, NotImplementedError) as e:
                raise UploadError(
                    "the PDF is encrypted with a password; remove the password (print it to a new "
                    "PDF) and upload it again"
                ) from e
        count = len(reader.pages)
        if count > limits.max_pdf_pages:
            raise UploadError(
                f"the PDF has {count} pages, over the limit of {limits.max_pdf_pages}; split it",
                status=413,
            )
        pages = []
        for page in reader.pages:
            raw = page.extract_text() or ""
            pages.append([line.rstrip() for line in raw.splitlines()])
    except UploadError:
        raise
    except (PdfReadError, PdfStreamError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise UploadError(f"the PDF cannot be read (damaged or not a PDF): {e}") from e
    except Exception as e:  # pypdf surfaces many internal errors on broken files
        raise UploadError(f"the PDF cannot be read: {type(e).__name__}: {e}") from e
    if not any(line.strip() for lines in pages for line in lines):
        raise UploadError(
            f"the PDF has no text layer ({count} page(s) of images: a scan?); run it through OCR "
            "(for example ocrmypdf) and upload the result"
        )
    running = _running_lines(pages)
    kept: list[str] = []
    for lines in pages:
        body = [
            line
            for i, line in enumerate(lines)
            if not _PAGE_NUMBER.fullmatch(line)
            and not ((i < _EDGE_LINES or i >= len(lines) - _EDGE_LINES) and _shape(line) in running)
        ]
        kept.extend(body)
        kept.append("")  # a page end is a paragraph end unless the text says otherwise
    text = "\n".join(kept)
    text = _HYPHENATED.sub(r"\1\2", text)
    # A page break in the middle of a sentence joins the sentence back together.
    text = re.sub(r"([a-z,;])\n\n(?=[a-z])", r"\1\n", text)
    return _paragraphs(text.split("\n"))
