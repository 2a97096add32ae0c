"""Document conversion through the distributed stack vs plain piper-tts on the same text.

Starts the local distributed stack (scripts/stack.sh: TorchServe with the shipped CPU profile,
two queue workers, the API on Postgres and RabbitMQ) and converts two documents the way
``voxmill convert`` does (the same code, :func:`cli.rest.run_conversion`: create a project,
upload, start, follow the live events, download one WAV), timed from the upload to the last byte
of the WAV on disk. Plain piper-tts synthesizes the same text in this process (its model loaded
beforehand, its default threads), and the two take turns, round after round, so that a slow
moment of a shared machine hits both. Prints (not a test), as medians of the rounds:
audio seconds per wall second of each, and their ratio.

- "chapter": one chapter of ~330 words (about 100 s of audio);
- "document": the same chapter five times as five chapters (about 8 minutes of audio).

Voxmill's audio includes its pauses between sentences (as a listener gets it); the library's
is the sentences' audio only.

Run: .venv/bin/python bench/pipeline_bench.py [--rounds 5]   (stops the stack when done)
On a shared machine give the stack its own ports, database and queue prefix, for example
PORT=8350 TS_PORT=8370 STACK_DB=bench_me VOXMILL_QUEUE_PREFIX=bench-me .venv/bin/python ...
(TorchServe takes TS_PORT to TS_PORT+4, the workers' health endpoints PORT+11 and PORT+12.)
The time to first audio of ``POST /v1/audio/speech`` is in bench/speech_bench.py.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.speech_bench import load_piper
from bench.texts import LONG_PROSE
from cli import rest
from cli.progress import ConversionProgress

API = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
RATE = 22050


def document(chapters: int = 6) -> tuple[str, str]:
    """A Markdown book of ``chapters`` chapters and the same text without headings."""
    parts = [f"# Chapter {n}\n\n{LONG_PROSE}" for n in range(1, chapters + 1)]
    return "\n\n".join(parts), "\n\n".join(LONG_PROSE for _ in range(chapters))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _no_events(*_args: object, **_kwargs: object) -> Iterator[dict[str, object]]:
    raise httpx.HTTPError("following by polling, as voxmill convert did before")


def convert(
    client: httpx.Client, markdown: str, tmp: Path, *, poll: bool = False
) -> tuple[float, float]:
    """Audio seconds and wall seconds of one conversion, upload to downloaded WAV; ``poll``
    follows it by polling every 0.5 s (the CLI before it followed live events)."""
    source, output = tmp / "book.md", tmp / "book.wav"
    data = markdown.encode()
    source.write_bytes(data)
    events = rest._events
    if poll:
        rest._events = _no_events
    t0 = time.perf_counter()
    rest.run_conversion(
        client,
        document=source,
        data=data,
        output=output,
        fmt="wav",
        voice="joe",
        name="bench",
        progress=ConversionProgress(io.StringIO(), "bench"),
        poll_s=0.5,
    )
    wall = time.perf_counter() - t0
    rest._events = events
    with wave.open(str(output)) as audio:
        return audio.getnframes() / audio.getframerate(), wall


def piper_once(voice: Any, text: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    samples = sum(len(c.audio_float_array) for c in voice.synthesize(text))
    return samples / RATE, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="turns of each (medians)")
    parser.add_argument(
        "--poll", action="store_true", help="also the chapter followed by polling (before)"
    )
    args = parser.parse_args()
    print(f"# pipeline_bench on {platform.machine()}, {os.cpu_count()} cores, {time.ctime()}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    works = {"chapter": document(1), "document": document(5)}
    if args.poll:
        works["chapter, polling every 0.5 s (before)"] = works["chapter"]
    voice = load_piper()
    figures: dict[str, dict[str, list[float]]] = {
        name: {"ours": [], "plain": [], "ours_audio": [], "plain_audio": []} for name in works
    }
    subprocess.run(["bash", "scripts/stack.sh", "up"], check=True, stdout=subprocess.DEVNULL)
    try:
        with (
            httpx.Client(base_url=API, timeout=600) as client,
            tempfile.TemporaryDirectory() as tmp,
        ):
            convert(client, works["chapter"][0], Path(tmp))  # warm-up
            for _ in range(args.rounds):
                for name, (markdown, plain) in works.items():
                    audio, wall = piper_once(voice, plain)
                    figures[name]["plain"].append(audio / wall)
                    figures[name]["plain_audio"].append(audio)
                    audio, wall = convert(client, markdown, Path(tmp), poll="polling" in name)
                    figures[name]["ours"].append(audio / wall)
                    figures[name]["ours_audio"].append(audio)
    finally:
        subprocess.run(["bash", "scripts/stack.sh", "down"], check=False, stdout=subprocess.DEVNULL)

    print(f"\n## Conversion, audio seconds per wall second, median of {args.rounds} rounds\n")
    print(
        "| work | audio s (Voxmill / plain) | plain piper-tts | Voxmill distributed "
        "(upload → WAV) | ratio (median of pairs) | Voxmill min–max |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, f in figures.items():
        ours_rate, plain_rate = statistics.median(f["ours"]), statistics.median(f["plain"])
        # The ratio pair by pair (each round's two runs were side by side in time), then the median.
        ratio = statistics.median(o / p for o, p in zip(f["ours"], f["plain"], strict=True))
        print(
            f"| {name} | {statistics.median(f['ours_audio']):.0f} / "
            f"{statistics.median(f['plain_audio']):.0f} | {plain_rate:.1f}× | {ours_rate:.1f}× | "
            f"{ratio:.2f} | {min(f['ours']):.1f}–{max(f['ours']):.1f}× |"
        )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
