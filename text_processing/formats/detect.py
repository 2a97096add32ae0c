"""Is a text without a format hint Markdown? (pasted text, a file without an extension).

No library answers this: Markdown parsers accept any text (plain prose is valid Markdown), so the
question is which constructs a plain-text writer would not type. A text counts as Markdown when
it has an ATX heading (``# Title``) or a setext underline, or at least two of the inline or list
constructs below (emphasis, links, images, code fences, bulleted or numbered lists, quotes).
One stray ``*`` or a single "- item" list in a plain letter is not enough.
"""

from __future__ import annotations

import re

# Scanning stops after this many characters: the start of a document shows its format.
SCAN_CHARS = 20_000

_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.M)
_SETEXT = re.compile(r"^[^\n]*\w[^\n]*\n {0,3}(?:=+|-{3,})[ \t]*$", re.M)
_SIGNS = (
    re.compile(r"(\*\*|__)(?=\S)[^\n]+?(?<=\S)\1"),  # strong emphasis
    re.compile(r"(?<![\w*])\*(?=\S)[^*\n]+?(?<=\S)\*(?![\w*])"),  # *emphasis*
    re.compile(r"!?\[[^\]\n]+\]\([^)\s]+(?:\s+\"[^\"]*\")?\)"),  # [link](url), ![image](src)
    re.compile(r"^ {0,3}(?:```|~~~)", re.M),  # a code fence
    re.compile(r"^ {0,3}[-*+][ \t]+\S[^\n]*\n {0,3}[-*+][ \t]+\S", re.M),  # a bulleted list
    re.compile(r"^ {0,3}1[.)][ \t]+\S[^\n]*\n {0,3}2[.)][ \t]+\S", re.M),  # a numbered list
    re.compile(r"^ {0,3}>[ \t]?\S", re.M),  # a block quote
    re.compile(r"`[^`\n]+`"),  # inline code
)


def looks_like_markdown(text: str) -> bool:
    """Whether ``text`` (without a format hint) is written in Markdown.

    Args:
        text: The document's text (only its first :data:`SCAN_CHARS` characters are read).

    Returns:
        True for a heading or a setext underline, or two or more distinct Markdown constructs.
    """
    head = text[:SCAN_CHARS]
    if _HEADING.search(head) or _SETEXT.search(head):
        return True
    return sum(1 for sign in _SIGNS if sign.search(head)) >= 2
