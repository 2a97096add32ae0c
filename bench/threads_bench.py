"""Threads per model call: one sentence alone, and two callers at once, per thread setting.

The voice handler in this process with the handler option ``threads`` at 1 (the CPU profile
before), the number of cores, and ``adaptive`` (every core for a call alone on the machine, one
beside other calls: handlers/cores.py), against plain piper-tts (its default threads) in the same
run. Prints (not a test), as medians of rounds that take turns:

- one sentence, one caller: milliseconds per call (the time to first audio of a speech request
  is this plus the hops);
- two callers at once (the embedded mode's two workers, or TorchServe's two model workers, on
  one machine): sentences per second.

Run: .venv/bin/python bench/threads_bench.py [--rounds 5]   (after `make mar`)
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.handler_bench import load_handler
from bench.speech_bench import SENTENCE, SENTENCES, load_piper
from handlers.cores import machine_cores
from handlers.local_context import LocalContext


def _call_with(call: Callable[[str, str], None], name: str, text: str) -> None:
    call(name, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cores = machine_cores()
    print(f"# threads_bench, {cores} cores, {time.ctime()}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    voice = load_piper()
    settings: list[int | str] = [1, cores, "adaptive"]
    with tempfile.TemporaryDirectory() as tmp:
        handlers = {
            str(t): load_handler({"handler": {"threads": t}}, Path(tmp) / f"t{t}") for t in settings
        }

        def call(name: str, text: str = SENTENCE) -> None:
            handlers[name].handle(
                [{"body": {"text": text, "format": "pcm"}}], LocalContext(Path("."))
            )

        def plain(text: str = SENTENCE) -> None:
            list(voice.synthesize(text))

        runs: dict[str, Callable[[str], None]] = {"plain piper-tts": plain}
        for name in handlers:
            runs[f"handler, threads {name}"] = functools.partial(_call_with, call, name)
        single: dict[str, list[float]] = {name: [] for name in runs}
        pair: dict[str, list[float]] = {name: [] for name in runs}
        for fn in runs.values():
            fn(SENTENCE)
        for _ in range(args.rounds):
            for name, fn in runs.items():
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    fn(SENTENCE)
                    times.append(time.perf_counter() - t0)
                single[name].append(statistics.median(times))
                with ThreadPoolExecutor(2) as pool:
                    t0 = time.perf_counter()
                    list(pool.map(fn, [SENTENCES[n % len(SENTENCES)] for n in range(20)]))
                    pair[name].append(20 / (time.perf_counter() - t0))
    print(f"\n## Threads per model call, median of {args.rounds} rounds\n")
    print("| run | one sentence alone, ms | two callers at once, sentences/s |")
    print("|---|---:|---:|")
    for name in runs:
        print(
            f"| {name} | {1000 * statistics.median(single[name]):.0f} | "
            f"{statistics.median(pair[name]):.1f} |"
        )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
