"""The front end: written text → spoken form → pieces for the voice. One path for everyone.

- :func:`spoken_form` is what a segment's ``spoken_text`` shows and what a task carries: the
  written sentence (optionally with SSML) with the project's lexicon applied, then normalized.
  It is an SSML fragment: plain words, plus ``<phoneme>``, ``<break>`` and ``<prosody>`` where
  the text or the lexicon asked for them.
- :func:`pieces` is what the voice handler does with any text it receives (plain, SSML, or a
  spoken form): parse the markup, apply a lexicon if given, and split the text into the same
  sentences the document splitter makes, each normalized.

Normalizing a spoken form again changes nothing (``tests/unit/test_text_frontend.py`` checks
this property), so the handler may safely run the whole front end on a task's text.

Where the lexicon is applied: when a task is made (a conversion or a re-synthesis), in the API,
before normalization. The lexicon is project data in the database that the voice server never
sees, applying it before normalization keeps "NASA" from being read out as letters before the
lexicon can say how, and applying it per task means an entry added today changes the next
conversion without re-splitting the document.
"""

from __future__ import annotations

from text_processing.chunking import pack, split_for_synthesis
from text_processing.lexicon import Lexicon
from text_processing.spoken import is_speakable, normalize
from text_processing.ssml import Piece, has_markup, parse, render
from text_processing.structure.sentences import split_sentences


def _written_pieces(text: str, lexicon: Lexicon | None) -> list[Piece]:
    found = parse(text) if has_markup(text) else [Piece("text", text)]
    if lexicon:
        found = [p for piece in found for p in lexicon.apply(piece)]
    return found


def spoken_form(text: str, lexicon: Lexicon | None = None) -> str:
    """The spoken form of one sentence (or any short text).

    Args:
        text: As written; may hold SSML of the supported subset.
        lexicon: The project's pronunciation lexicon.

    Returns:
        Plain words for plain text; an SSML fragment when markup or a phoneme entry is involved.
        ``""`` when nothing in it can be spoken (a lone "." or "…").

    Raises:
        text_processing.ssml.SsmlError: Invalid markup (the message says where).
    """
    spoken: list[Piece] = []
    for piece in _written_pieces(text, lexicon):
        if piece.kind == "text":
            words = normalize(piece.text)
            if words:
                # Keep the spaces that separated this text from its neighbours.
                lead = " " if piece.text[:1].isspace() else ""
                trail = " " if piece.text[-1:].isspace() else ""
                spoken.append(Piece("text", lead + words + trail, rate=piece.rate))
        else:
            spoken.append(piece)
    if not any(p.kind == "ipa" or (p.kind == "text" and is_speakable(p.text)) for p in spoken):
        return ""
    if all(p.kind == "text" and p.rate == 1.0 for p in spoken):
        return " ".join("".join(p.text for p in spoken).split())
    return " ".join(render(spoken).split())


def pieces(text: str, lexicon: Lexicon | None = None) -> list[Piece]:
    """What the voice says for ``text``: one text piece per sentence (normalized), IPA pieces
    and pauses, in order. Unspeakable text gives no piece.

    Raises:
        text_processing.ssml.SsmlError: Invalid markup.
    """
    out: list[Piece] = []
    for piece in _written_pieces(text, lexicon):
        if piece.kind != "text":
            out.append(piece)
            continue
        for sentence in split_sentences(piece.text):
            words = normalize(sentence)
            if is_speakable(words):
                out.append(Piece("text", words, rate=piece.rate))
    return out


def speech_input(text: str) -> list[str]:
    """Text given to speak (``/v1/audio/speech``, ``voxmill synth``) → its sentences, with no
    markup left to be read out: SSML is kept as SSML fragments (validated), Markdown markup
    (``##``, ``**``, backticks, links) is removed, and a heading or list item becomes a sentence
    of its own (ended with a period so the voice pauses there).

    Raises:
        text_processing.ssml.SsmlError: Invalid markup (says where).
    """
    if has_markup(text):
        out: list[str] = []
        current: list[Piece] = []
        for piece in parse(text):
            current.append(piece)
            if piece.kind == "break" or (
                piece.kind == "text" and piece.text.rstrip()[-1:] in ".!?"
            ):
                out.append(render(current).strip())
                current = []
        if current:
            out.append(render(current).strip())
        return [chunk for chunk in out if chunk]
    from text_processing.structure import DocumentError, split_document

    try:
        chapters = split_document(text, fmt="markdown", spoken=lambda s: s)
    except DocumentError:
        return []
    sentences = []
    for chapter in chapters:
        for block in chapter.blocks:
            for segment in block.segments:
                said = segment.text
                sentences.append(said if said[-1:] in ".!?…:;,\"'”’)" else f"{said}.")
    return sentences


def has_speech(text: str) -> bool:
    """Whether the voice has anything to do for ``text``: words, phonemes or an SSML pause.
    The voice handler refuses text without (``limits.NOTHING_TO_SPEAK``).

    Raises:
        text_processing.ssml.SsmlError: Invalid markup.
    """
    return bool(pieces(text))


def speech_chunks(text: str, max_chars: int) -> list[str]:
    """:func:`speech_input` packed into chunks of at most ``max_chars`` (SSML fragments are
    never cut; a plain sentence longer than the limit is cut at clauses).

    Every chunk has something to say (:func:`has_speech`): a piece without (a lone "." left
    over where a very long word was cut, an "…" or emoji sentence) is dropped, so the result is
    empty when nothing in ``text`` can be spoken.

    Raises:
        text_processing.ssml.SsmlError: Invalid markup (says where).
    """
    found: list[str] = []
    for sentence in speech_input(text):
        if has_markup(sentence) or len(sentence) <= max_chars:
            found.append(sentence)
        else:
            found.extend(split_for_synthesis(sentence, max_chars))
    return pack((piece for piece in found if has_speech(piece)), max_chars)
