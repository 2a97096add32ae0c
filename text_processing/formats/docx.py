"""Word (.docx) → Markdown, with ``python-docx``: heading styles give chapters (Title and
Heading 1 → ``#``; Heading 2 and deeper are read as subheadings, ``###``), list paragraphs
become list items at their level, tables become Markdown tables, and footnotes are read at the
end under "Notes" (their reference marks are not read in the text)."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from typing import Any

from text_processing.formats.archive import open_zip, refuse_declarations
from text_processing.formats.errors import UploadError
from text_processing.formats.markdown_out import MarkdownWriter
from text_processing.limits import DocumentLimits

log = logging.getLogger(__name__)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_HEADING = re.compile(r"heading (\d)", re.I)


def _heading_level(style: str) -> int:
    """Title and Heading 1 start chapters; deeper headings are read as subheadings."""
    if style.lower() in ("title", "heading 1"):
        return 1
    return 3 if _HEADING.fullmatch(style) else 0


def _list_level(paragraph: Any, style: str) -> int | None:
    ppr = paragraph._p.pPr
    numpr = ppr.numPr if ppr is not None else None
    if numpr is not None and numpr.ilvl is not None:
        return int(numpr.ilvl.val)
    if numpr is not None or style.lower().startswith("list"):
        found = re.search(r"(\d)$", style)
        return int(found.group(1)) - 1 if found else 0
    return None


def _footnotes(document: Any) -> list[str]:
    for rel in document.part.rels.values():
        if rel.reltype.endswith("/footnotes") and not rel.is_external:
            from lxml import etree

            root = etree.fromstring(
                rel.target_part.blob,
                etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
            )
            notes = []
            for note in root.iter(f"{_W}footnote"):
                if note.get(f"{_W}type") in ("separator", "continuationSeparator"):
                    continue
                text = "".join(t.text or "" for t in note.iter(f"{_W}t")).strip()
                if text:
                    notes.append(text)
            return notes
    return []


def read_docx(data: bytes, limits: DocumentLimits) -> str:
    """The document as Markdown.

    Raises:
        UploadError: Damaged, encrypted (a password-protected .docx is not a ZIP), a zip bomb, or
            XML with a DOCTYPE (its entities would be lost).
        LimitError: Lists nested deeper than the limit.
    """
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    archive = open_zip(
        data,
        kind="Word",
        max_unpacked=limits.max_unpacked_bytes,
        max_members=limits.max_archive_members,
    )
    refuse_declarations(archive, kind="Word", any_doctype=True)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise UploadError(f"the Word file cannot be read (damaged or not a .docx): {e}") from e
    except Exception as e:  # python-docx raises its own PackageNotFoundError and lxml errors
        raise UploadError(f"the Word file cannot be read: {type(e).__name__}: {e}") from e
    out = MarkdownWriter(limits.max_depth)
    numbers: dict[int, int] = {}
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            out.table([[cell.text for cell in row.cells] for row in block.rows])
            continue
        assert isinstance(block, Paragraph)
        style = block.style.name if block.style is not None else ""
        text = block.text
        level = _heading_level(style)
        if level:
            out.heading(level, text)
            continue
        depth = _list_level(block, style)
        if depth is not None:
            ordered = "number" in style.lower()
            numbers[depth] = numbers.get(depth, 0) + 1
            out.item(text, depth=depth, ordered=ordered, number=numbers[depth])
        else:
            numbers.clear()
            out.paragraph(text)
    notes = _footnotes(document)
    if notes:
        out.heading(3, "Notes")
        for n, note in enumerate(notes, 1):
            out.item(note, depth=0, ordered=True, number=n)
    return out.text()
