"""Uploaded bytes → document text, whatever the format, or a refusal naming the problem.

The type comes from the file name's extension, else the content type, else the content; the
content must then match it ("report.pdf" that holds a ZIP is refused, not guessed at). Structured
formats become Markdown (chapters as ``#`` headings), PDF and plain text stay plain text; the one
splitter in :mod:`text_processing.structure` takes it from there.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Literal

from text_processing.formats.detect import looks_like_markdown
from text_processing.formats.errors import UploadError, human_size
from text_processing.formats.plain import decode_text
from text_processing.limits import DocumentLimits
from text_processing.structure.model import DocFormat

log = logging.getLogger(__name__)

Kind = Literal["text", "markdown", "ssml", "html", "epub", "docx", "pdf"]

EXTENSIONS: dict[str, Kind] = {
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".ssml": "ssml",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".epub": "epub",
    ".docx": "docx",
    ".pdf": "pdf",
}
CONTENT_TYPES: dict[str, Kind] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/ssml+xml": "ssml",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/epub+zip": "epub",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/pdf": "pdf",
}
# What browsers and curl send when they do not know the type: the content decides.
UNKNOWN_TYPES = frozenset({"", "application/octet-stream"})
ACCEPTED = "a .txt, .md, .ssml, .html, .epub, .docx or .pdf file"
_LABELS = {
    "text": "text",
    "markdown": "Markdown",
    "ssml": "SSML",
    "html": "HTML",
    "epub": "EPUB",
    "docx": "Word (.docx)",
    "pdf": "PDF",
}
_BINARY = {
    "pdf": "a PDF",
    "epub": "an EPUB",
    "docx": "a Word file",
    "zip": "a ZIP archive",
    "ole": "an old Office file",
}
_HTML_START = re.compile(
    rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)


@dataclass(frozen=True)
class DocumentText:
    """A decoded document: its text, the splitter format for it, and what it was uploaded as."""

    text: str
    fmt: DocFormat
    kind: Kind


def sniff(data: bytes) -> str:
    """What the bytes are, from their first bytes: pdf, epub, docx, zip, html, ole (an old or
    password-protected Office file), or text."""
    head = data[:2048]
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        if b"mimetypeapplication/epub+zip" in head[:100]:
            return "epub"
        if b"word/" in data[:65536] or b"[Content_Types].xml" in head:
            return "docx" if b"word/" in data[:200000] else "zip"
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "ole"
    if _HTML_START.match(head):
        return "html"
    return "text"


def has_format_hint(filename: str | None, content_type: str | None) -> bool:
    """Whether the upload names its format (an extension, or a known content type)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, _ext = name.rpartition(".")
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return bool(dot and stem) or media not in UNKNOWN_TYPES


def kind_of(filename: str | None, content_type: str | None, data: bytes) -> Kind:
    """The declared kind of an upload, checked against its content.

    Raises:
        UploadError: An unsupported type (415), or content that does not match it (415).
    """
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, ext = name.rpartition(".")
    declared: Kind | None = None
    if dot and stem:
        declared = EXTENSIONS.get(f".{ext.lower()}")
        if declared is None:
            raise UploadError(f"files of type '.{ext}' are not supported; upload {ACCEPTED}", 415)
    else:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media not in UNKNOWN_TYPES:
            declared = CONTENT_TYPES.get(media)
            if declared is None:
                raise UploadError(
                    f"content type '{media}' is not supported; upload {ACCEPTED}", 415
                )
    found = sniff(data)
    if declared is None:
        if found in ("pdf", "epub", "docx", "html"):
            return found  # type: ignore[return-value]
        if found in ("zip", "ole"):
            raise UploadError(
                f"the file is an archive or an old Office file; upload {ACCEPTED}", 415
            )
        return "text"
    expected = {"pdf": "pdf", "epub": "epub", "docx": "docx"}.get(declared)
    if expected and found != expected:
        what = {
            "text": "text",
            "html": "HTML",
            "zip": "a ZIP archive",
            "ole": "an old or password-protected Office file",
        }.get(found, _LABELS.get(found, found))
        hint = (
            " (Word files with a password are stored that way: remove it)" if found == "ole" else ""
        )
        raise UploadError(
            f"'{name or 'the upload'}' is named as {_LABELS[declared]} but its content is {what}"
            f"{hint}; upload the real file",
            415,
        )
    if declared in ("text", "markdown", "ssml", "html") and found in _BINARY:
        raise UploadError(
            f"'{name or 'the upload'}' is named as {_LABELS[declared]} but its content is "
            f"{_BINARY[found]}, a binary file; give it its real extension",
            415,
        )
    return declared


def _ssml_document(text: str, limits: DocumentLimits) -> str:
    """An SSML document → plain text: one paragraph per ``<p>`` (or the whole ``<speak>``), one
    line per ``<s>``, inline elements kept for the spoken form."""
    from lxml import etree

    from text_processing.ssml import SsmlError, parse_xml

    try:
        root = parse_xml(text.strip())
    except SsmlError as e:
        raise UploadError(f"the SSML document is not well-formed: {e}") from e
    if etree.QName(root.tag).localname != "speak":
        raise UploadError("an SSML document must have <speak> as its root element")

    def inner(el: etree._Element) -> str:
        parts = [el.text or ""]
        for child in el:
            name = etree.QName(child.tag).localname if isinstance(child.tag, str) else ""
            if name == "s":
                parts.append("\n" + inner(child).strip() + "\n")
            elif name:
                copy = etree.fromstring(etree.tostring(child, with_tail=False))
                for node in copy.iter():  # drop the SSML namespace from what users see
                    if isinstance(node.tag, str):
                        node.tag = etree.QName(node.tag).localname
                etree.cleanup_namespaces(copy)
                parts.append(etree.tostring(copy, encoding="unicode"))
            parts.append(child.tail or "")
        return "".join(parts)

    paragraphs = [
        inner(p) for p in root if isinstance(p.tag, str) and etree.QName(p.tag).localname == "p"
    ]
    if not paragraphs:
        paragraphs = [inner(root)]
    blocks = [
        "\n".join(" ".join(line.split()) for line in p.split("\n") if line.strip())
        for p in paragraphs
    ]
    return "\n\n".join(b for b in blocks if b) + "\n"


def read_upload(
    data: bytes, *, filename: str | None, content_type: str | None, limits: DocumentLimits
) -> DocumentText:
    """Decode an upload of any supported format.

    Raises:
        UploadError: Empty, too large (413), unsupported or mismatched type (415), or unreadable
            (422: damaged, encrypted, scanned, not UTF-8), with a message naming the problem.
        LimitError: Nesting deeper than the limit.
    """
    if not data:
        raise UploadError(f"the file is empty; upload {ACCEPTED} that contains text")
    if len(data) > limits.max_bytes:
        raise UploadError(
            f"the file is too large: {human_size(len(data))} ({len(data)} bytes), over the limit "
            f"of {human_size(limits.max_bytes)} ({limits.max_bytes} bytes); split the document "
            "into smaller files and upload them one by one",
            413,
        )
    kind = kind_of(filename, content_type, data)
    if kind == "epub":
        from text_processing.formats.epub import read_epub

        return DocumentText(read_epub(data, limits), "markdown", kind)
    if kind == "docx":
        from text_processing.formats.docx import read_docx

        return DocumentText(read_docx(data, limits), "markdown", kind)
    if kind == "pdf":
        from text_processing.formats.pdf import read_pdf

        return DocumentText(read_pdf(data, limits), "text", kind)
    text = decode_text(data)
    if kind == "html":
        from text_processing.formats.html import html_to_markdown
        from text_processing.xmldecl import find_doctype

        declared = find_doctype(text)
        if declared and declared.declares:
            raise UploadError(
                f"the HTML file's DOCTYPE declares its own entities (line {declared.line}); "
                "they are not expanded, so the text that uses them would be lost. Write the "
                "characters themselves and upload again"
            )

        markdown, _title = html_to_markdown(text, max_depth=limits.max_depth)
        return DocumentText(markdown, "markdown", kind)
    if kind == "ssml" or (kind == "text" and text.lstrip().startswith("<speak")):
        return DocumentText(_ssml_document(text, limits), "text", "ssml")
    if kind == "text" and not has_format_hint(filename, content_type) and looks_like_markdown(text):
        kind = "markdown"  # no hint, and the text is written in Markdown: read it as such
    log.debug("decoded upload %r: %d bytes, %d chars, %s", filename, len(data), len(text), kind)
    return DocumentText(text, "markdown" if kind == "markdown" else "text", kind)


__all__ = [
    "ACCEPTED",
    "DocumentText",
    "UploadError",
    "has_format_hint",
    "kind_of",
    "looks_like_markdown",
    "read_upload",
    "sniff",
]
