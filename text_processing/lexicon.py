"""A pronunciation lexicon: graphemes read as an alias or as IPA phonemes; W3C PLS 1.0 in and out.

Entries match whole words, case as written, longest grapheme first, in one pass of one
alternation (linear in the text). :func:`apply` turns a text piece into pieces: the rest of the
text, ``<sub>``-like alias text, and IPA pieces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from contract import limits
from text_processing.ssml import Piece, SsmlError, parse_xml

PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"
MAX_GRAPHEME_CHARS = limits.MAX_LEXICON_GRAPHEME_CHARS
MAX_PRONUNCIATION_CHARS = limits.MAX_LEXICON_PRONUNCIATION_CHARS


class LexiconError(ValueError):
    """An entry or a PLS document that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Entry:
    """One entry: ``grapheme`` is read as ``alias`` (words) or as ``phoneme`` (IPA)."""

    grapheme: str
    alias: str | None = None
    phoneme: str | None = None

    def check(self) -> Entry:
        """The entry, stripped, if it is usable.

        Raises:
            LexiconError: Blank or too long, or not exactly one of alias and phoneme.
        """
        grapheme = " ".join(self.grapheme.split())
        if not grapheme or not any(ch.isalnum() for ch in grapheme):
            raise LexiconError("the grapheme must contain a letter or a digit")
        if len(grapheme) > MAX_GRAPHEME_CHARS:
            raise LexiconError(f"the grapheme is longer than {MAX_GRAPHEME_CHARS} characters")
        if self.alias is None and self.phoneme is None:
            raise LexiconError(f"{grapheme!r}: give an alias (words) or a phoneme (IPA)")
        if self.alias is not None and self.phoneme is not None:
            raise LexiconError(f"{grapheme!r}: give either an alias or a phoneme (IPA), not both")
        value = (self.alias if self.alias is not None else self.phoneme) or ""
        value = " ".join(value.split())
        if not value or len(value) > MAX_PRONUNCIATION_CHARS or "\x00" in value + grapheme:
            raise LexiconError(
                f"{grapheme!r}: the pronunciation must be 1 to {MAX_PRONUNCIATION_CHARS} characters"
            )
        if self.alias is not None:
            return Entry(grapheme, alias=value)
        return Entry(grapheme, phoneme=value)


class Lexicon:
    """Entries ready to apply (later entries for the same grapheme win)."""

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        self.entries: dict[str, Entry] = {}
        for entry in entries:
            self.entries[entry.grapheme] = entry
        words = sorted(self.entries, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)")
            if words
            else None
        )

    def __bool__(self) -> bool:
        return bool(self.entries)

    def apply(self, piece: Piece) -> list[Piece]:
        """Split a text piece at lexicon words; other pieces pass through."""
        if self._pattern is None or piece.kind != "text":
            return [piece]
        out: list[Piece] = []
        pos = 0
        for m in self._pattern.finditer(piece.text):
            if m.start() > pos:
                out.append(Piece("text", piece.text[pos : m.start()], rate=piece.rate))
            entry = self.entries[m.group()]
            if entry.phoneme is not None:
                out.append(Piece("ipa", m.group(), ipa=entry.phoneme, rate=piece.rate))
            else:
                out.append(Piece("text", entry.alias or "", rate=piece.rate))
            pos = m.end()
        if pos == 0:
            return [piece]
        if pos < len(piece.text):
            out.append(Piece("text", piece.text[pos:], rate=piece.rate))
        return out


def read_pls(data: bytes, *, max_entries: int) -> list[Entry]:
    """The entries of a W3C PLS 1.0 document (``alphabet="ipa"``).

    Each ``<lexeme>`` gives one entry per ``<grapheme>``: its first ``<phoneme>``, else its
    first ``<alias>``.

    Raises:
        LexiconError: Not UTF-8, not well-formed (with the line), not a PLS ``<lexicon>``, a
            non-IPA alphabet, a lexeme without a pronunciation, or more than ``max_entries``.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise LexiconError(f"the PLS file is not UTF-8 (byte offset {e.start})") from e
    text = re.sub(r"^\s*<\?xml[^>]{0,200}\?>", "", text)
    from lxml import etree  # on first use: the voice handler imports this module, not PLS

    try:
        root = parse_xml(text)
    except SsmlError as e:
        raise LexiconError(f"the PLS file is not well-formed XML: {e}") from e
    if etree.QName(root.tag).localname != "lexicon":
        raise LexiconError("the file is not a PLS lexicon: its root element must be <lexicon>")
    alphabet = root.get("alphabet", "ipa")
    if alphabet.lower() != "ipa":
        raise LexiconError(f'alphabet="{alphabet}" is not supported: only "ipa"')
    entries: list[Entry] = []
    for lexeme in root:
        if not isinstance(lexeme.tag, str) or etree.QName(lexeme.tag).localname != "lexeme":
            continue
        graphemes, phoneme, alias = [], None, None
        for child in lexeme:
            if not isinstance(child.tag, str):
                continue
            name = etree.QName(child.tag).localname
            value = "".join(child.itertext()).strip()
            if name == "grapheme" and value:
                graphemes.append(value)
            elif name == "phoneme" and phoneme is None and value:
                if child.get("alphabet", alphabet).lower() != "ipa":
                    raise LexiconError(f"line {child.sourceline}: only IPA phonemes are supported")
                phoneme = value
            elif name == "alias" and alias is None and value:
                alias = value
        if not graphemes or (phoneme is None and alias is None):
            raise LexiconError(
                f"line {lexeme.sourceline}: a <lexeme> needs a <grapheme> and a <phoneme> "
                "or <alias>"
            )
        for grapheme in graphemes:
            try:
                entry = (
                    Entry(grapheme, phoneme=phoneme) if phoneme else Entry(grapheme, alias=alias)
                )
                entries.append(entry.check())
            except LexiconError as e:
                raise LexiconError(f"line {lexeme.sourceline}: {e}") from e
            if len(entries) > max_entries:
                raise LexiconError(f"the lexicon has more than {max_entries} entries, the limit")
    return entries


def write_pls(entries: Iterable[Entry], *, lang: str = "en-US") -> bytes:
    """A W3C PLS 1.0 document of ``entries``."""
    from lxml import etree

    root = etree.Element(
        f"{{{PLS_NS}}}lexicon", nsmap={None: PLS_NS}, version="1.0", alphabet="ipa"
    )
    root.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
    for entry in entries:
        lexeme = etree.SubElement(root, f"{{{PLS_NS}}}lexeme")
        etree.SubElement(lexeme, f"{{{PLS_NS}}}grapheme").text = entry.grapheme
        if entry.phoneme is not None:
            etree.SubElement(lexeme, f"{{{PLS_NS}}}phoneme").text = entry.phoneme
        else:
            etree.SubElement(lexeme, f"{{{PLS_NS}}}alias").text = entry.alias
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
