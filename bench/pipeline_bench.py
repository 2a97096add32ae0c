"""Document conversion in distributed mode vs plain piper-tts, and REST time to first audio.

Starts the local distributed stack (scripts/stack.sh: TorchServe, two workers, the API on
Postgres and RabbitMQ), converts a ~2,000-word Markdown document, and prints (not a test):
audio seconds per wall second for the pipeline and for plain piper-tts on the same text in the
same run, their ratio, and the time to first audio of `POST /v1/audio/speech` for a one-sentence
request (p50/p95) vs the handler alone in-process and a direct TorchServe call.

Run: .venv/bin/python bench/pipeline_bench.py   (stops the stack when done)
On a shared machine give the stack its own ports, database and queue prefix, for example
PORT=8350 TS_PORT=8370 STACK_DB=bench_me VOXMILL_QUEUE_PREFIX=bench-me .venv/bin/python ...
(TorchServe takes TS_PORT to TS_PORT+4, the workers' health endpoints PORT+11 and PORT+12.)
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.handler_bench import load_handler, piper_plain
from bench.texts import LONG_PROSE
from devtools.torchserve_local import LocalTorchServe
from handlers.local_context import LocalContext

API = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
TS_PORT = int(os.environ.get("TS_PORT", "8080"))
SENTENCE = "Your order has shipped and will arrive on Tuesday."
RUNS = 20


def document() -> tuple[str, str]:
    """A Markdown book of six chapters (~2,000 words) and the same text without headings."""
    chapters = [f"# Chapter {n}\n\n{LONG_PROSE}" for n in range(1, 7)]
    return "\n\n".join(chapters), "\n\n".join(LONG_PROSE for _ in range(6))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def convert(client: httpx.Client, markdown: str) -> tuple[float, float, int]:
    """Audio seconds, wall seconds and segment count of one conversion through the API."""
    project = client.post("/v1/projects", json={"name": "bench", "voice": "joe"}).json()
    pid = project["id"]
    client.post(f"/v1/projects/{pid}/documents", json={"text": markdown, "format": "markdown"})
    t0 = time.perf_counter()
    conversion = client.post(f"/v1/projects/{pid}/conversions").json()
    while True:
        status = client.get(f"/v1/conversions/{conversion['id']}").json()
        if status["state"] == "finished":
            break
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if status["failed"]:
        raise RuntimeError(f"{status['failed']} segments failed")
    detail = client.get(f"/v1/projects/{pid}").json()
    audio_ms = 0
    for chapter in detail["chapters"]:
        body = client.get(f"/v1/chapters/{chapter['id']}").json()
        audio_ms += sum(s["duration_ms"] for b in body["blocks"] for s in b["segments"])
    return audio_ms / 1000, wall, status["total"]


def first_audio_s(client: httpx.Client) -> float:
    """Seconds from sending the request to the first audio bytes after the WAV header."""
    t0 = time.perf_counter()
    body = {"input": SENTENCE, "voice": "joe", "response_format": "wav"}
    with client.stream("POST", "/v1/audio/speech", json=body) as answer:
        answer.raise_for_status()
        received = 0
        for chunk in answer.iter_bytes():
            received += len(chunk)
            if received > 44:
                return time.perf_counter() - t0
    raise RuntimeError("no audio")


def main() -> int:
    cores = os.cpu_count() or 1
    print(f"# pipeline_bench on {platform.machine()}, {cores} cores")
    markdown, plain = document()
    subprocess.run(["bash", "scripts/stack.sh", "up"], check=True)
    try:
        with httpx.Client(base_url=API, timeout=600) as client:
            first_audio_s(client)  # warm up
            audio, wall, segments = convert(client, markdown)
            p_audio, p_wall = piper_plain(plain)
            words = len(plain.split())
            print(
                f"\n## Conversion of {words} words ({segments} sentences), same machine, one run\n"
            )
            print("| run | audio s | wall s | audio s per wall s | vs piper |")
            print("|---|---:|---:|---:|---:|")
            print(
                f"| plain piper-tts, one process | {p_audio:.1f} | {p_wall:.1f} | {p_audio / p_wall:.2f} | 1.00 |"
            )
            ratio = (audio / wall) / (p_audio / p_wall)
            print(
                f"| voxmill distributed (TorchServe 2 workers, 2 queue workers) | {audio:.1f} | {wall:.1f} | {audio / wall:.2f} | {ratio:.2f} |"
            )

            rest = [first_audio_s(client) for _ in range(RUNS)]
            ts = LocalTorchServe(
                Path(".run/stack/torchserve").resolve(), TS_PORT, TS_PORT + 1, TS_PORT + 2
            )
            headers = {"Authorization": f"Bearer {ts.key()}"}
            direct = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                httpx.post(
                    f"{ts.inference_url}/predictions/joe",
                    json={"text": SENTENCE},
                    headers=headers,
                    timeout=60,
                ).raise_for_status()
                direct.append(time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            handler = load_handler({"handler": {"threads": 1}}, Path(tmp))
            alone = []
            for _ in range(RUNS + 1):
                t0 = time.perf_counter()
                handler.handle([{"body": {"text": SENTENCE}}], LocalContext(Path(".")))
                alone.append(time.perf_counter() - t0)
            alone = alone[1:]
        print(f"\n## Time to first audio, one sentence ({len(SENTENCE)} chars), {RUNS} runs, ms\n")
        print("| path | p50 | p95 |")
        print("|---|---:|---:|")
        for label, values in (
            ("handler alone, in-process (1 thread)", alone),
            ("TorchServe direct (whole response)", direct),
            ("POST /v1/audio/speech (first audio bytes)", rest),
        ):
            print(
                f"| {label} | {1000 * statistics.median(values):.0f} | {1000 * percentile(values, 0.95):.0f} |"
            )
    finally:
        subprocess.run(["bash", "scripts/stack.sh", "down"], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
