"""Word and sentence timings from the voice's own durations: the alignment of written words to
the model's word groups, and the joe voice's timings through the real handler."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from contract import limits
from contract.timings import Span, Timings
from handlers.local_context import LocalContext
from handlers.timings import Group, align_words, groups_of, written_words
from handlers.voxmill_handler import TIMINGS_HEADER, VoxmillHandler
from synthesis.inprocess import extract_mar


def test_groups_tile_the_separators_and_padding_belongs_to_the_sound_before_it() -> None:
    # ids: ^ _ a _ b _ SPACE _ c _ . $   (1 = space, 0 = pad, 9 = ^, 8 = $, 7 = .)
    ids = [9, 0, 2, 0, 3, 0, 1, 0, 4, 0, 7, 8]
    samples = np.array([5, 1, 10, 2, 10, 2, 4, 1, 20, 3, 6, 5])
    groups = groups_of(
        ids,
        samples,
        separators=frozenset({1}),
        silent=frozenset({7, 8, 9}),
        padding=frozenset({0}),
        offset=100,
    )
    assert groups == [Group(106, 130, 2), Group(130, 158, 1)]


def test_joined_words_share_their_group_and_split_words_span_theirs() -> None:
    groups = [Group(0, 100, 4), Group(120, 200, 6), Group(220, 300, 2), Group(300, 340, 2)]
    # "of the" spoken as one group (ʌvðə), "people" alone, "hotdog" as two groups.
    words = align_words(["of", "the", "people", "hotdog"], [2, 2, 6, 4], groups)
    assert words == [("of", 0, 50), ("the", 50, 100), ("people", 120, 200), ("hotdog", 220, 340)]


def test_written_words_drop_punctuation_but_keep_apostrophes_inside() -> None:
    assert written_words('"Don\'t," she said — twice!') == ["Don't", "she", "said", "twice"]


def test_timings_shift_onto_a_longer_time_line() -> None:
    one = Timings(words=[Span(text="a", start_ms=0, end_ms=10)], sentences=[])
    two = Timings(words=[Span(text="b", start_ms=5, end_ms=15)], sentences=[])
    joined = Timings.concatenated([(0, one), (100, two)])
    assert [(w.text, w.start_ms, w.end_ms) for w in joined.words] == [("a", 0, 10), ("b", 105, 115)]


@pytest.fixture(scope="module")
def handler(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> VoxmillHandler:
    model_dir = tmp_path_factory.mktemp("joe")
    h = VoxmillHandler()
    h.initialize(LocalContext(model_dir, extract_mar(joe_mar, model_dir)))
    return h


TEXT = "Of the people, by the people, for the people. It cost 42 dollars on March 3rd! Did it rain?"


def test_the_handler_sends_word_and_sentence_times_that_fit_the_audio(
    handler: VoxmillHandler,
) -> None:
    context = LocalContext(Path("."))
    body = {"text": TEXT, "format": "pcm", "noise_scale": 0, "noise_w": 0}
    requests = handler.preprocess([{"body": body}])
    (pcm,) = handler.postprocess(handler.inference(requests), requests, context)
    timings = Timings.from_header(context.headers[0][TIMINGS_HEADER])
    length_ms = 1000 * (len(pcm) // 2) / handler.service.sample_rate  # type: ignore[union-attr]

    words = timings.words
    assert [w.text for w in words][:9] == [
        "Of",
        "the",
        "people",
        "by",
        "the",
        "people",
        "for",
        "the",
        "people",
    ]
    assert "forty" in [w.text for w in words], "numbers are timed as they are spoken"
    assert len(timings.sentences) == 3
    # Monotonic, inside the audio, and each word inside its sentence.
    edges = [t for w in words for t in (w.start_ms, w.end_ms)]
    assert edges == sorted(edges)
    assert words[-1].end_ms <= length_ms
    for sentence in timings.sentences:
        assert any(sentence.start_ms <= w.start_ms < sentence.end_ms for w in words)
    # Sentences with the pauses between them add up to the whole audio.
    spans = timings.sentences
    spoken = sum(s.end_ms - s.start_ms for s in spans)
    gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(spans)]
    assert all(abs(g - limits.SENTENCE_PAUSE_MS) <= 1 for g in gaps)
    assert abs(spoken + sum(gaps) - length_ms) <= 2
    # Words are spoken, not silence: each has some length and the first starts near the start.
    assert all(w.end_ms > w.start_ms for w in words)
    assert words[0].start_ms < 200


def test_the_header_form_stays_small_for_the_longest_segment() -> None:
    words = [Span(text=f"wörd{i}", start_ms=10 * i, end_ms=10 * i + 9) for i in range(400)]
    sentences = [Span(text="x" * 2000, start_ms=0, end_ms=4000)]
    timings = Timings(words=words, sentences=sentences)

    header = timings.to_header()

    assert header.isascii() and len(header) < 8 * 1024, len(header)
    assert Timings.from_header(header) == timings
    assert Timings.from_header(timings.model_dump_json()) == timings
    with pytest.raises(ValueError):
        Timings.from_header("z:bm90IHpsaWI=")
