"""SSML subset, pronunciation lexicon (PLS in and out), and the handler speaking both."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from handlers.local_context import LocalContext
from handlers.voxmill_handler import VoxmillHandler
from synthesis.inprocess import extract_mar
from text_processing.frontend import pieces, speech_input, spoken_form
from text_processing.lexicon import Entry, Lexicon, LexiconError, read_pls, write_pls
from text_processing.ssml import Piece, SsmlError, parse

# --- SSML ----------------------------------------------------------------------------------


def test_every_supported_element_becomes_pieces() -> None:
    got = parse(
        '<speak><p><s>Hi <say-as interpret-as="characters">abc</say-as>.</s></p>'
        '<break time="2s"/><break strength="weak"/>'
        '<say-as interpret-as="cardinal">42</say-as> <say-as interpret-as="ordinal">3</say-as> '
        '<say-as interpret-as="digits">907</say-as> <say-as interpret-as="date">03/04/2025</say-as> '
        '<say-as interpret-as="time">9:30</say-as> <say-as interpret-as="telephone">555-0142</say-as> '
        '<sub alias="World Wide Web">WWW</sub> <phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme>'
        '<prosody rate="slow">slowly</prosody></speak>'
    )
    words = [p.text for p in got if p.kind == "text" and p.text.strip()]
    assert "a b c" in words and "forty two" in words and "third" in words
    assert "nine zero seven" in words and "March fourth, twenty twenty five" in words
    assert "nine thirty" in words and "five five five, zero one four two" in words
    assert "World Wide Web" in words
    assert Piece("ipa", "tomato", ipa="təˈmɑːtoʊ") in got
    assert [p.ms for p in got if p.kind == "break"][:3] == [700, 2000, 200]
    assert next(p for p in got if p.text == "slowly").rate == 0.75


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ("<speak>Hello <b>there</b></speak>", r"line 1: <b> is not supported"),
        ('<speak>\n\n<break time="soon"/></speak>', r'line 3: <break time="soon">'),
        ('<speak><say-as interpret-as="verbatim">x</say-as></speak>', r'interpret-as="verbatim"'),
        ('<speak><prosody rate="900%">x</prosody></speak>', r"rate=\"900%\""),
        ("<speak>unclosed <s>sentence</speak>", r"line 1, column \d+"),
        ('<speak><phoneme alphabet="x-sampa" ph="a">a</phoneme></speak>', r"only \"ipa\""),
        ('<!DOCTYPE x [<!ENTITY a "aaaa">]><speak>&a;</speak>', r"DOCTYPE and ENTITY"),
    ],
)
def test_invalid_markup_says_where(markup: str, message: str) -> None:
    with pytest.raises(SsmlError, match=message):
        parse(markup)


def test_tags_and_markdown_are_never_read_out() -> None:
    assert speech_input('Wait <break time="2s"/> then go.') == [
        'Wait <break time="2000ms"/>',
        "then go.",
    ]
    assert speech_input("## Title\n\n**Bold** and `code`.") == ["Title.", "Bold and code."]


# --- Lexicon -------------------------------------------------------------------------------


def test_lexicon_applies_before_normalization() -> None:
    lexicon = Lexicon([Entry("NASA", alias="the space agency"), Entry("Nguyen", phoneme="ŋwiən")])
    spoken = spoken_form("NASA met Nguyen at 5.", lexicon)
    assert (
        spoken
        == 'the space agency met <phoneme alphabet="ipa" ph="ŋwiən">Nguyen</phoneme> at five.'
    )
    # Whole words only.
    assert spoken_form("NASAL sounds", lexicon) == "NASAL sounds"


def test_pls_round_trip() -> None:
    entries = [Entry("Nguyen", phoneme="ŋwiən"), Entry("WHO", alias="World Health Organization")]
    data = write_pls(entries)
    assert b"http://www.w3.org/2005/01/pronunciation-lexicon" in data
    assert read_pls(data, max_entries=10) == entries


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"<lexicon><lexeme><grapheme>x</grapheme></lexeme></lexicon>",
            r"line 1: a <lexeme> needs",
        ),
        (b'<lexicon alphabet="x-sampa"/>', r'alphabet="x-sampa"'),
        (b"<nope/>", r"root element must be <lexicon>"),
        (b"<lexicon>", r"not well-formed"),
    ],
)
def test_bad_pls_is_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        read_pls(data, max_entries=10)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (Entry("X"), r"^'X': give an alias \(words\) or a phoneme \(IPA\)$"),
        (
            Entry("X", alias="ex", phoneme="ɛks"),
            r"^'X': give either an alias or a phoneme.*not both$",
        ),
    ],
)
def test_an_entry_needs_exactly_one_pronunciation(entry: Entry, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        entry.check()


def test_pls_over_the_entry_limit_is_refused() -> None:
    data = write_pls([Entry(f"w{i}", alias="x") for i in range(5)])
    with pytest.raises(LexiconError, match="more than 3 entries"):
        read_pls(data, max_entries=3)


# --- The handler speaks pieces ---------------------------------------------------------------


@pytest.fixture(scope="module")
def handler(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> VoxmillHandler:
    model_dir = tmp_path_factory.mktemp("joe-pieces")
    h = VoxmillHandler()
    h.initialize(LocalContext(model_dir, extract_mar(joe_mar, model_dir)))
    return h


def _seconds(handler: VoxmillHandler, body: object) -> float:
    ctx = LocalContext(Path("."))
    (reply,) = handler.handle([{"body": body}], ctx)
    assert ctx.status(0) == 200, reply
    with wave.open(io.BytesIO(reply)) as w:
        return w.getnframes() / w.getframerate()


def _samples(handler: VoxmillHandler, body: object) -> np.ndarray:
    ctx = LocalContext(Path("."))
    (reply,) = handler.handle([{"body": body}], ctx)
    with wave.open(io.BytesIO(reply)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_a_break_adds_its_pause(handler: VoxmillHandler) -> None:
    quiet = {"noise_scale": 0.0, "noise_w": 0.0}
    plain = _seconds(handler, {"text": "Wait. Go.", **quiet})
    paused = _seconds(handler, {"text": 'Wait.<break time="2s"/> Go.', **quiet})
    assert 1.6 < paused - plain < 2.0  # 2 s instead of the 0.25 s sentence pause


def test_an_unspeakable_task_is_silence_not_a_failure(handler: VoxmillHandler) -> None:
    samples = _samples(handler, {"text": '<break time="500ms"/>'})
    assert len(samples) == 22050 // 2 and not samples.any()


def test_phonemes_are_spoken_through_the_voice_map(handler: VoxmillHandler) -> None:
    ipa = {"pieces": [{"ipa": "həˈloʊ wɜːld"}], "noise_scale": 0.0, "noise_w": 0.0}
    text = {"text": "hello world", "noise_scale": 0.0, "noise_w": 0.0}
    a, b = _seconds(handler, ipa), _seconds(handler, text)
    assert 0.5 < a / b < 1.5  # about as long as the words espeak-ng would give


def test_pieces_request_format_is_validated(handler: VoxmillHandler) -> None:
    ctx = LocalContext(Path("."))
    bad = [
        {"pieces": []},
        {"pieces": [{"break_ms": 99999}]},
        {"pieces": [{"text": "a", "ipa": "b"}]},
    ]
    replies = handler.handle([{"body": b} for b in bad], ctx)
    assert [ctx.status(i) for i in range(3)] == [400, 400, 400]
    assert b"pieces" in replies[0]


def test_rate_changes_duration(handler: VoxmillHandler) -> None:
    quiet = {"noise_scale": 0.0, "noise_w": 0.0}
    normal = _seconds(handler, {"text": "The quick brown fox jumps over the lazy dog.", **quiet})
    slow = _seconds(
        handler,
        {
            "text": '<prosody rate="50%">The quick brown fox jumps over the lazy dog.</prosody>',
            **quiet,
        },
    )
    assert slow > 1.6 * normal


def test_handler_sentences_are_the_document_sentences() -> None:
    text = "Acme Inc. announced a deal. The door was shut.Nobody had a key."
    spoken = [p.text for p in pieces(text)]
    assert spoken == [
        "Acme Incorporated announced a deal.",
        "The door was shut.",
        "Nobody had a key.",
    ]
