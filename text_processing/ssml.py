"""The SSML subset Voxmill reads, parsed with a real XML parser into pieces for the voice.

Supported: ``<speak>``, ``<p>``, ``<s>``, ``<break time|strength>``, ``<say-as interpret-as=
"characters|spell-out|cardinal|ordinal|digits|date|time|telephone">``, ``<sub alias>``,
``<phoneme alphabet="ipa" ph>`` and ``<prosody rate>``. Anything else is refused with the line and
column where it is. The parser is lxml with DTDs, entities and network access off, and any
``<!DOCTYPE`` refused outright, so entity expansion ("billion laughs") cannot happen.

A *piece* is what the voice handler's request format carries: text, IPA phonemes, or a pause,
each with a speaking-rate factor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from contract.limits import MAX_BREAK_MS, PARAGRAPH_PAUSE_MS
from text_processing.spoken import numbers
from text_processing.xmldecl import find_doctype

if TYPE_CHECKING:
    from lxml import etree

SSML_ELEMENTS = ("speak", "p", "s", "break", "say-as", "sub", "phoneme", "prosody")
SAY_AS = ("characters", "spell-out", "cardinal", "ordinal", "digits", "date", "time", "telephone")
_MARKUP = re.compile(rf"</?(?:{'|'.join(SSML_ELEMENTS)})(?=[\s/>])")
STRENGTH_MS = {
    "none": 0,
    "x-weak": 100,
    "weak": 200,
    "medium": 400,
    "strong": 700,
    "x-strong": 1200,
}
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.6}
_TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s)")
_RATE = re.compile(r"(\d+(?:\.\d+)?)(%?)")


class SsmlError(ValueError):
    """Markup that is not well-formed or not in the supported subset; says where."""


@dataclass(frozen=True)
class Piece:
    """One piece for the voice: ``text`` to normalize and speak, ``ipa`` phonemes (``text`` is
    then the word as written), or a ``break`` of ``ms`` milliseconds; ``rate`` multiplies the
    speaking rate."""

    kind: Literal["text", "ipa", "break"]
    text: str = ""
    ms: int = 0
    rate: float = 1.0
    ipa: str = ""

    def to_json(self) -> dict[str, object]:
        """The handler request's piece object."""
        if self.kind == "break":
            return {"break_ms": self.ms}
        body: dict[str, object] = {"ipa": self.ipa} if self.kind == "ipa" else {"text": self.text}
        if self.rate != 1.0:
            body["rate"] = self.rate
        return body


def has_markup(text: str) -> bool:
    """Whether ``text`` holds an element of the SSML subset (then it is parsed as SSML)."""
    return bool(_MARKUP.search(text))


def _parser() -> etree.XMLParser:
    from lxml import etree

    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
    )


def parse_xml(text: str) -> etree._Element:
    """Parse untrusted XML safely: no DOCTYPE, no entities, no network.

    Raises:
        SsmlError: Not well-formed, or a DOCTYPE/ENTITY declaration is present.
    """
    found = find_doctype(text, whole=True)
    if found:
        raise SsmlError(f"line {found.line}: DOCTYPE and ENTITY declarations are not accepted")
    # lxml is imported on first use: plain text (every request without markup) never needs it,
    # and the voice handler's import stays light.
    from lxml import etree

    try:
        return etree.fromstring(text.encode("utf-8"), _parser())
    except etree.XMLSyntaxError as e:
        line, column = e.position if e.position else (0, 0)
        message = str(e.msg or e).split(", line ")[0]
        raise SsmlError(f"line {line}, column {column}: {message}") from e


def _local(tag: object) -> str:
    from lxml import etree

    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _where(el: etree._Element, wrapped: bool) -> str:
    return f"line {el.sourceline}" if el.sourceline else "in the markup"


def _break_ms(el: etree._Element, wrapped: bool) -> int:
    time_ = el.get("time")
    if time_ is not None:
        found = _TIME.fullmatch(time_.strip())
        if not found:
            raise SsmlError(
                f'{_where(el, wrapped)}: <break time="{time_}"> must be like "500ms" or "2s"'
            )
        value = float(found[1]) * (1000 if found[2] == "s" else 1)
        return min(round(value), MAX_BREAK_MS)
    strength = el.get("strength", "medium")
    if strength not in STRENGTH_MS:
        raise SsmlError(
            f'{_where(el, wrapped)}: <break strength="{strength}"> must be one of '
            f"{', '.join(STRENGTH_MS)}"
        )
    return STRENGTH_MS[strength]


def _rate(el: etree._Element, wrapped: bool) -> float:
    rate = (el.get("rate") or "medium").strip()
    if rate in RATES:
        return RATES[rate]
    found = _RATE.fullmatch(rate)
    value = (float(found[1]) / 100 if found[2] else float(found[1])) if found else 0.0
    if not 0.25 <= value <= 4.0:
        raise SsmlError(
            f'{_where(el, wrapped)}: <prosody rate="{rate}"> must be x-slow, slow, medium, fast, '
            'x-fast, or a percentage between 25% and 400% ("120%")'
        )
    return value


def say_as(kind: str, text: str, where: str = "in the markup") -> str:
    """Words for ``<say-as interpret-as=kind>text</say-as>``.

    Raises:
        SsmlError: An unknown ``kind``, or text that does not fit it.
    """
    from text_processing.spoken import normalize

    text = text.strip()
    if kind in ("characters", "spell-out"):
        return " ".join(
            numbers.DIGIT_NAMES[int(c)] if c.isdigit() else c for c in text if c.isalnum()
        )
    if kind == "digits":
        return numbers.digits(text)
    if kind in ("cardinal", "ordinal"):
        plain = text.replace(",", "")
        if not plain.lstrip("-").isdigit() or len(plain) > numbers.MAX_CARDINAL_DIGITS:
            raise SsmlError(
                f'{where}: <say-as interpret-as="{kind}"> needs a whole number, got {text!r}'
            )
        return numbers.cardinal(int(plain)) if kind == "cardinal" else numbers.ordinal(int(plain))
    if kind in ("date", "time", "telephone"):
        return normalize(text)
    raise SsmlError(
        f'{where}: <say-as interpret-as="{kind}"> is not supported; use one of {", ".join(SAY_AS)}'
    )


def parse(text: str) -> list[Piece]:
    """SSML (with or without the ``<speak>`` root) → pieces, in reading order.

    Text pieces are as written (not normalized); ``<say-as>`` and ``<sub>`` give their words.

    Raises:
        SsmlError: Not well-formed, an element or attribute outside the subset, or a bad value;
            the message gives the line (and column, for syntax errors).
    """
    wrapped = not text.lstrip().startswith("<speak")
    root = parse_xml(f"<speak>{text}</speak>" if wrapped else text.strip())
    if _local(root.tag) != "speak":
        raise SsmlError(f"line {root.sourceline}: the root element must be <speak>")
    pieces: list[Piece] = []
    _walk(root, 1.0, pieces, wrapped)
    return [p for p in pieces if p.kind != "text" or p.text.strip()]


def _walk(el: etree._Element, rate: float, out: list[Piece], wrapped: bool) -> None:
    name = _local(el.tag)
    if not isinstance(el.tag, str):  # comments and processing instructions say nothing
        return
    if name not in SSML_ELEMENTS:
        raise SsmlError(
            f"{_where(el, wrapped)}: <{name}> is not supported; use "
            + ", ".join(f"<{n}>" for n in SSML_ELEMENTS)
        )
    where = _where(el, wrapped)
    if name == "break":
        out.append(Piece("break", ms=_break_ms(el, wrapped)))
    elif name == "say-as":
        kind = el.get("interpret-as", "")
        out.append(Piece("text", say_as(kind, "".join(el.itertext()), where), rate=rate))
    elif name == "sub":
        alias = el.get("alias")
        if alias is None:
            raise SsmlError(f'{where}: <sub> needs alias="..." (what to say instead)')
        out.append(Piece("text", alias, rate=rate))
    elif name == "phoneme":
        if el.get("alphabet", "ipa") != "ipa":
            raise SsmlError(f'{where}: <phoneme alphabet="{el.get("alphabet")}">: only "ipa"')
        ph = el.get("ph")
        if not ph:
            raise SsmlError(f'{where}: <phoneme> needs ph="..." (IPA phonemes)')
        out.append(Piece("ipa", "".join(el.itertext()).strip(), ipa=ph, rate=rate))
    else:
        inner = rate * _rate(el, wrapped) if name == "prosody" else rate
        if el.text:
            out.append(Piece("text", el.text, rate=inner))
        for child in el:
            _walk(child, inner, out, wrapped)
            if child.tail:
                out.append(Piece("text", child.tail, rate=inner))
        if name == "p":
            out.append(Piece("break", ms=PARAGRAPH_PAUSE_MS))
        elif name == "s":
            out.append(Piece("text", ".", rate=inner))  # ends the sentence for the splitter


def escape(text: str) -> str:
    """Text for inside an SSML element."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    """Text for inside a double-quoted SSML attribute."""
    return escape(text).replace('"', "&quot;")


def render(pieces: list[Piece]) -> str:
    """Pieces back to an SSML fragment (no ``<speak>`` root): text escaped, phonemes as
    ``<phoneme>``, pauses as ``<break>``, rates as ``<prosody>``."""
    out = []
    for piece in pieces:
        if piece.kind == "break":
            out.append(f'<break time="{piece.ms}ms"/>')
            continue
        if piece.kind == "ipa":
            ph = escape_attr(piece.ipa)
            body = f'<phoneme alphabet="ipa" ph="{ph}">{escape(piece.text)}</phoneme>'
        else:
            body = escape(piece.text)
        if piece.rate != 1.0:
            body = f'<prosody rate="{round(piece.rate * 100)}%">{body}</prosody>'
        out.append(body)
    return "".join(out)
