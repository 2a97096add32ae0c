"""DTD declarations in untrusted XML, found before any parser acts on them.

Voxmill never loads a DTD nor expands an entity (a parser that did could be made to read local
files or to blow up in size: "billion laughs"), and a parser that does neither silently drops the
text of every entity reference it cannot expand. So a document that declares its own entities is
refused with a message, never read with holes: SSML and PLS refuse any ``<!DOCTYPE``, Word files
too (Word never writes one), EPUB and HTML a DOCTYPE that declares anything (``[...]``); the plain
XHTML DOCTYPE of EPUB 2 books names a public DTD and declares nothing, so it stays accepted.

The prolog is read with the standard library's expat and reading stops at the root element, after
which no DOCTYPE may come: the check reads a few hundred bytes of a normal document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO
from xml.parsers import expat

__all__ = ["Doctype", "find_doctype"]

_CHUNK = 64 * 1024
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*(\[)?|<!ENTITY", re.I)


@dataclass(frozen=True)
class Doctype:
    """A DOCTYPE (or a stray ENTITY) declaration: its 1-based ``line``, and ``declares``:
    whether it holds declarations of its own (an internal subset, ``[...]``: entities, possibly
    nested or external)."""

    line: int
    declares: bool


class _Found(Exception):
    def __init__(self, doctype: Doctype | None) -> None:
        self.doctype = doctype


def find_doctype(source: bytes | str | IO[bytes], *, whole: bool = False) -> Doctype | None:
    """The document's DOCTYPE declaration, or ``None`` when it has none.

    Args:
        source: The XML as bytes (its own encoding declaration applies), as text, or a binary
            file object read in chunks until the root element starts.
        whole: Read on past the root element's start, for markup that a caller wrapped in a
            root of its own (a declaration inside it is then found, not a syntax error).

    Returns:
        Where the declaration is and whether it declares anything. A prolog that is not
        well-formed is searched as text, so a DOCTYPE is found even where the XML parser that
        reads the document later would be more lenient than expat.
    """
    parser = expat.ParserCreate("utf-8" if isinstance(source, str) else None)

    def doctype(name: str, system: str | None, public: str | None, subset: int) -> None:
        raise _Found(Doctype(parser.CurrentLineNumber, bool(subset)))

    def root(name: str, attributes: object) -> None:
        raise _Found(None)  # the root element has started: no DOCTYPE can follow

    parser.StartDoctypeDeclHandler = doctype
    if not whole:
        parser.StartElementHandler = root
    seen = b""
    try:
        if isinstance(source, str | bytes):
            data = source.encode("utf-8") if isinstance(source, str) else source
            seen = data if whole else data[:_CHUNK]
            parser.Parse(data, True)
        else:
            while chunk := source.read(_CHUNK):
                if len(seen) < _CHUNK:
                    seen += chunk
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _Found as found:
        return found.doctype
    except expat.ExpatError:
        return _search(seen)
    return None


def _search(head: bytes) -> Doctype | None:
    for encoding in ("utf-16", "utf-8") if head[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8",):
        text = head.decode(encoding, errors="replace")
        found = _DOCTYPE.search(text)
        if found:
            line = text.count("\n", 0, found.start()) + 1
            return Doctype(line, declares=bool(found.group(1)) or found[0].upper() == "<!ENTITY")
    return None
