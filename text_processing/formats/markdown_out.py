"""Writing Markdown: every structured reader (EPUB, DOCX, HTML) turns its document into Markdown
text, so one splitter does the rest and the text it stores is readable."""

from __future__ import annotations

import re

from text_processing.structure.model import LimitError

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")
_LINE_START = re.compile(r"^(\s*)([-+>]|\d{1,9}[.)])(?=\s|$)")
_SPACES = re.compile(r"\s+")


def escape(text: str) -> str:
    """Inline text with Markdown's special characters backslash-escaped (so a "*" in a Word
    document is read as written, not as emphasis); whitespace collapsed."""
    text = _SPACES.sub(" ", text).strip()
    text = _SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", text)


class MarkdownWriter:
    """Collects blocks as Markdown, with a nesting limit checked as they come."""

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.blocks: list[str] = []

    def heading(self, level: int, text: str) -> None:
        """A heading: levels 1-2 start chapters, deeper ones are spoken as plain blocks."""
        text = escape(text)
        if text:
            self.blocks.append(f"{'#' * max(1, min(level, 6))} {text}")

    def paragraph(self, text: str, *, quote_depth: int = 0) -> None:
        """A paragraph (inside ``quote_depth`` block quotes)."""
        text = escape(text)
        if text:
            self._check(quote_depth, text)
            self.blocks.append("> " * quote_depth + text)

    def item(self, text: str, *, depth: int, ordered: bool, number: int = 1) -> None:
        """A list item at ``depth`` (0 for a top-level list)."""
        text = escape(text)
        if not text:
            return
        self._check(depth + 1, text)
        marker = f"{number}." if ordered else "-"
        self.blocks.append("    " * depth + f"{marker} {text}")

    def table(self, rows: list[list[str]]) -> None:
        """A table; the first row is the header."""
        rows = [[escape(cell) for cell in row] for row in rows if any(c.strip() for c in row)]
        if not rows:
            return
        width = max(len(r) for r in rows)
        lines = ["| " + " | ".join(r + [""] * (width - len(r))) + " |" for r in rows]
        lines.insert(1, "|" + "---|" * width)
        self.blocks.append("\n".join(lines))

    def _check(self, depth: int, text: str) -> None:
        if depth > self.max_depth:
            raise LimitError(
                f"lists or quotes are nested more than {self.max_depth} levels deep at "
                f"{text[:60]!r}; flatten the nesting and upload the document again"
            )

    def text(self) -> str:
        """The document so far; list items of one list stay together."""
        out: list[str] = []
        for block in self.blocks:
            is_item = bool(re.match(r"\s*(?:-|\d+\.) ", block))
            if out and is_item and out[-1] == "item":
                out[-2] += "\n" + block
                continue
            out += [block, "item" if is_item else "block"]
        return "\n\n".join(out[0::2]) + "\n"
