"""HTML (web pages, EPUB chapters) → Markdown, main content only, with ``selectolax`` (Lexbor).

The main content is ``<main>``, else the only ``<article>``, else ``[role=main]``, else the body;
navigation, headers, footers, asides, forms, scripts and styles are removed first. Code blocks
(``<pre>``) are shown, not spoken, as in Markdown. Lexbor parses in linear time and is not
recursive, so deeply nested markup cannot blow the stack; the nesting limit applies to lists and
quotes as they are written out.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

from text_processing.formats.markdown_out import MarkdownWriter
from text_processing.structure.model import LimitError

MAX_ELEMENT_DEPTH = 256

_DROP = (
    "script, style, noscript, template, nav, header, footer, aside, form, button, svg, iframe, "
    "object, embed, canvas, video, audio, select, textarea, pre, [hidden], [aria-hidden=true], "
    "[role=navigation], [role=banner], [role=contentinfo], [role=complementary], sup.footnote-ref"
)
_BLOCKS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "main",
        "body",
        "blockquote",
        "ul",
        "ol",
        "li",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "dl",
        "dt",
        "dd",
        "figure",
        "figcaption",
        "hr",
        "br",
        "tr",
        "td",
        "th",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "address",
        "center",
        "details",
        "summary",
    }
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


def main_content(tree: LexborHTMLParser) -> LexborNode | None:
    """The node holding the page's main content."""
    for selector in ("main", "[role=main]"):
        found = tree.css_first(selector)
        if found is not None:
            return found
    articles = tree.css("article")
    if len(articles) == 1:
        return articles[0]
    return tree.body or tree.root


def _inline_text(node: LexborNode) -> str:
    return node.text(deep=True, separator="", strip=False)


class _Walker:
    def __init__(self, writer: MarkdownWriter, heading_shift: int) -> None:
        self.out = writer
        self.shift = heading_shift
        self.inline: list[str] = []

    def flush(self, quote: int) -> None:
        text = "".join(self.inline)
        self.inline = []
        if text.strip():
            self.out.paragraph(text, quote_depth=quote)

    def walk(self, node: LexborNode, quote: int = 0, depth: int = 0, level: int = 0) -> None:
        if level > MAX_ELEMENT_DEPTH:
            raise LimitError(
                f"the HTML nests elements more than {MAX_ELEMENT_DEPTH} deep (near "
                f"{_inline_text(node)[:60]!r}); this server does not read it"
            )
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.inline.append(child.text_content or "")
                continue
            if tag in _HEADINGS:
                self.flush(quote)
                level = _HEADINGS[tag] + self.shift
                self.out.heading(
                    level if level <= 2 or self.shift == 0 else max(level, 3), _inline_text(child)
                )
            elif tag in ("ul", "ol"):
                self.flush(quote)
                self.list(child, depth, tag == "ol", quote)
            elif tag == "table":
                self.flush(quote)
                rows = [
                    [_inline_text(cell) for cell in row.css("th, td")] for row in child.css("tr")
                ]
                self.out.table(rows)
            elif tag == "blockquote":
                self.flush(quote)
                self.walk(child, quote + 1, depth, level + 1)
                self.flush(quote + 1)
            elif tag == "br":
                self.inline.append(" ")
            elif tag in _BLOCKS:
                self.flush(quote)
                self.walk(child, quote, depth, level + 1)
                self.flush(quote)
            else:
                self.walk(
                    child, quote, depth, level + 1
                )  # inline element: its text joins the paragraph

    def list(self, node: LexborNode, depth: int, ordered: bool, quote: int) -> None:
        number = 0
        for item in node.iter(include_text=False):
            if item.tag != "li":
                continue
            number += 1
            nested = [c for c in item.iter(include_text=False) if c.tag in ("ul", "ol")]
            own = "".join(
                _inline_text(c) if c.tag != "-text" else (c.text_content or "")
                for c in item.iter(include_text=True)
                if c.tag not in ("ul", "ol")
            )
            self.out.item(own, depth=depth, ordered=ordered, number=number)
            for sub in nested:
                self.list(sub, depth + 1, sub.tag == "ol", quote)


def html_to_markdown(
    html: str, *, max_depth: int, heading_shift: int = 0, whole: bool = False
) -> tuple[str, str | None]:
    """The main content of an HTML page as Markdown, and the page's ``<title>``.

    Args:
        html: The page.
        max_depth: The deepest list or quote nesting accepted.
        heading_shift: Added to heading levels (EPUB chapters take their titles from the table of
            contents, so their own headings must not start chapters).
        whole: Read the whole body (EPUB chapters), not only the main content.

    Raises:
        LimitError: Lists or quotes nested deeper than ``max_depth``.
    """
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node is not None else None
    for node in tree.css(_DROP):
        node.decompose()
    root = (tree.body or tree.root) if whole else main_content(tree)
    writer = MarkdownWriter(max_depth)
    if root is not None:
        walker = _Walker(writer, heading_shift)
        walker.walk(root)
        walker.flush(0)
    return writer.text(), title or None
