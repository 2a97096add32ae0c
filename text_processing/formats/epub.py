"""EPUB 2 and 3 → Markdown, with ``ebooklib``: the spine gives the reading order, the table of
contents the chapters; cover, navigation, table-of-contents and copyright pages are not read.

A spine document is skipped when the package says what it is (EPUB 3 ``nav`` property,
``epub:type`` of the page, the EPUB 2 ``<guide>``), or failing that when its file name or id
says cover, toc, nav or copyright. Each spine document that the table of contents points to
starts a chapter titled by its entry; documents it does not name continue the chapter before.
"""

from __future__ import annotations

import io
import logging
import re
import warnings
import zipfile
from typing import Any

from text_processing.formats.archive import open_zip, refuse_declarations
from text_processing.formats.errors import UploadError
from text_processing.formats.html import html_to_markdown
from text_processing.formats.markdown_out import escape
from text_processing.limits import DocumentLimits

log = logging.getLogger(__name__)

_SKIP_TYPES = frozenset(
    {
        "cover",
        "toc",
        "landmarks",
        "page-list",
        "copyright-page",
        "titlepage",
        "halftitlepage",
        "imprint",
        "colophon",
        "loi",
        "lot",
    }
)
_SKIP_NAMES = re.compile(
    r"(?:^|[/_.-])(?:cover|toc|nav|copyright|titlepage|colophon)(?:[/_.-]|$)", re.I
)
_EPUB_TYPE = re.compile(r"epub:type\s*=\s*[\"']([^\"']{1,200})[\"']", re.I)


def _toc_titles(toc: Any, out: dict[str, str]) -> None:
    """File name → the first table-of-contents title that points into it, in TOC order."""
    for entry in toc:
        if isinstance(entry, tuple | list):
            section, children = entry[0], entry[1]
            _toc_titles([section], out)
            _toc_titles(children, out)
            continue
        href = getattr(entry, "href", None)
        title = getattr(entry, "title", None)
        if href and title:
            out.setdefault(href.split("#", 1)[0], title)


def _skipped(book: Any, item: Any, html: str) -> str | None:
    """Why a spine document is not read, or ``None``."""
    properties = set(getattr(item, "properties", []) or [])
    if "nav" in properties:
        return "navigation document"
    head = html[:4000]
    for found in _EPUB_TYPE.finditer(head):
        types = set(found.group(1).split())
        if types & _SKIP_TYPES:
            return f"epub:type {' '.join(sorted(types & _SKIP_TYPES))}"
    for ref in getattr(book, "guide", []) or []:
        if ref.get("href", "").split("#")[0] == item.get_name() and ref.get("type") in (
            "cover",
            "toc",
            "copyright-page",
            "title-page",
        ):
            return f"guide {ref.get('type')}"
    name = f"{item.get_name()} {item.get_id()}"
    if _SKIP_NAMES.search(item.get_name()) or _SKIP_NAMES.search(str(item.get_id())):
        return f"named {name!r}"
    return None


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def read_epub(data: bytes, limits: DocumentLimits) -> str:
    """The book as Markdown: ``# <TOC title>`` per chapter, then its text.

    Raises:
        UploadError: Damaged, encrypted (DRM), a zip bomb, no readable text, or XML that
            declares its own entities (they would be lost).
        LimitError: Nesting deeper than the limit.
    """
    from ebooklib import ITEM_DOCUMENT, epub

    archive = open_zip(
        data,
        kind="EPUB",
        max_unpacked=limits.max_unpacked_bytes,
        max_members=limits.max_archive_members,
    )
    names = set(archive.namelist())
    if "META-INF/encryption.xml" in names:
        raise UploadError("the EPUB is encrypted (DRM); only DRM-free books can be read")
    refuse_declarations(archive, kind="EPUB", any_doctype=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})
    except (zipfile.BadZipFile, KeyError, ValueError, AttributeError, IndexError, TypeError) as e:
        raise UploadError(f"the EPUB cannot be read (damaged or not an EPUB): {e}") from e
    except Exception as e:  # ebooklib raises its own EpubException and lxml errors
        raise UploadError(f"the EPUB cannot be read: {type(e).__name__}: {e}") from e
    titles: dict[str, str] = {}
    _toc_titles(book.toc, titles)
    parts: list[str] = []
    started = False
    for idref, *_rest in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ITEM_DOCUMENT:
            continue
        html = item.get_content().decode("utf-8", errors="replace")
        reason = _skipped(book, item, html)
        if reason:
            log.debug("EPUB: not reading %s (%s)", item.get_name(), reason)
            continue
        markdown, page_title = html_to_markdown(
            html, max_depth=limits.max_depth, heading_shift=2, whole=True
        )
        title = titles.get(item.get_name())
        if title is None and not started:
            title = page_title or "Untitled"
        if title is not None:
            started = True
            first, _, rest = markdown.partition("\n\n")
            if first.lstrip("#").strip() and _same(first.lstrip("# "), escape(title)):
                markdown = rest  # the page's own heading repeats its TOC title
            parts.append(f"# {escape(title)}\n\n{markdown}")
        elif markdown.strip():
            parts.append(markdown)
    text = "\n\n".join(parts)
    if not re.search(r"\w", re.sub(r"^#.*$", "", text, flags=re.M)):
        raise UploadError("the EPUB has no text to read (only images, or only a cover)")
    return text
