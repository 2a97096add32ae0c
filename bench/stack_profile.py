"""Where a conversion's time goes in the distributed stack: CPU seconds per process and per stage.

Starts the local stack (scripts/stack.sh), converts the bench document once to warm it up, then
converts it again while it reads every process's CPU time (user + system, the kernel's own
accounting: load-independent, unlike wall time on a shared machine) before and after, and prints
(not a test):

- the conversion's stages on the wall clock, from the API's own timestamps: upload and split,
  start (statuses + outbox rows), first result stored, last result stored, download;
- CPU seconds per process group (API, queue workers, TorchServe's Java frontend, TorchServe's
  Python model workers, RabbitMQ, Postgres) and per segment.

RabbitMQ and Postgres are shared with everything else on this machine: their rows include other
users' work and are an upper bound. With ``--py-spy PATH`` (a py-spy binary) it also samples the
API and both queue workers during the measured conversion and prints each one's top functions by
own time (``--py-spy`` needs ptrace rights, e.g. root).

Run: .venv/bin/python bench/stack_profile.py [--py-spy /path/to/py-spy] [--chapters 6]
Ports, database and prefix as for bench/pipeline_bench.py (PORT, TS_PORT, STACK_DB,
VOXMILL_QUEUE_PREFIX).
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline_bench import API, document
from bench.speech_bench import load_piper

RUN = Path(".run/stack")
# Status polls cost the API CPU too; at this interval (the CLI's) they are a small share of it.
POLL_S = 0.5


def groups() -> dict[str, list[psutil.Process]]:
    """The stack's processes by role."""
    found: dict[str, list[psutil.Process]] = collections.defaultdict(list)
    for name in ("api", "worker-1", "worker-2"):
        pid = int((RUN / f"{name}.pid").read_text())
        found["API" if name == "api" else "queue workers"].append(psutil.Process(pid))
    ts_pid = int((RUN / "torchserve" / "torchserve.pid").read_text())
    for process in [psutil.Process(ts_pid), *psutil.Process(ts_pid).children(recursive=True)]:
        if process.name() == "java":
            found["TorchServe frontend (Java)"].append(process)
        elif "python" in process.name():
            found["TorchServe model workers (Python)"].append(process)
    for process in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(process.info["cmdline"] or [])
        if process.info["name"] == "beam.smp" and "rabbit" in cmd:
            found["RabbitMQ (shared)"].append(process)
        elif (process.info["name"] or "").startswith("postgres"):
            found["Postgres (shared)"].append(process)
    return found


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


TS_METRICS = f"http://127.0.0.1:{int(os.environ.get('TS_PORT', '8080')) + 2}/metrics"


def torchserve_counters() -> dict[str, float]:
    """TorchServe's own cumulative counters for the joe voice (its Prometheus metrics)."""
    wanted = (
        "ts_inference_requests_total",
        "ts_inference_latency_microseconds",
        "ts_queue_latency_microseconds",
    )
    found: dict[str, float] = {}
    for line in httpx.get(TS_METRICS, timeout=10).text.splitlines():
        name = line.split("{", 1)[0]
        if name in wanted and 'model_name="joe"' in line:
            found[name] = float(line.rsplit(" ", 1)[1])
    return found


def convert(client: httpx.Client, markdown: str) -> dict[str, float]:
    """One conversion through the REST API, with the wall time of each stage in seconds."""
    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    pid = client.post("/v1/projects", json={"name": "profile", "voice": "joe"}).json()["id"]
    client.post(f"/v1/projects/{pid}/documents", json={"text": markdown, "format": "markdown"})
    marks["upload + split"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    conversion = client.post(f"/v1/projects/{pid}/conversions").json()
    marks["start (statuses + outbox rows)"] = time.perf_counter() - t1
    first = None
    while True:
        status = client.get(f"/v1/conversions/{conversion['id']}").json()
        if first is None and status["done"]:
            first = time.perf_counter() - t1
        if status["state"] == "finished":
            break
        time.sleep(0.02 if first is None else POLL_S)
    marks["first segment stored (after start)"] = first or 0.0
    marks["all segments stored (after start)"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    audio = client.get(f"/v1/projects/{pid}/audio", params={"format": "wav"})
    audio.raise_for_status()
    marks["download (WAV)"] = time.perf_counter() - t2
    marks["segments"] = status["total"]
    marks["audio s"] = (len(audio.content) - 44) / 2 / 22050
    return marks


def spy(binary: str, pid: int, seconds: int, out: Path) -> subprocess.Popen[bytes]:
    command = [binary, "record", "--pid", str(pid), "--duration", str(seconds)]
    command += ["--format", "raw", "--output", str(out), "--nonblocking"]
    return subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def top_functions(collapsed: Path, count: int = 12) -> list[tuple[str, float]]:
    """Own-time shares of the leaf frames in a py-spy raw (collapsed stacks) file, idle excluded."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if any(w in leaf for w in ("wait (threading", "select (", "poll (", "_wait_for_tstate")):
            continue
        own[leaf] += int(samples)
        total += int(samples)
    return [(name, n / max(1, total)) for name, n in own.most_common(count)]


def piper_plain_cpu(text: str) -> tuple[float, float]:
    """CPU seconds (all threads) and audio seconds of the plain piper-tts library on ``text``."""
    voice = load_piper()
    c0 = time.process_time()
    samples = sum(len(c.audio_float_array) for c in voice.synthesize(text))
    return time.process_time() - c0, samples / 22050


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--py-spy", default=None, help="a py-spy binary: also sample the stack")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    markdown, plain = document()
    subprocess.run(["bash", "scripts/stack.sh", "up"], check=True)
    try:
        with httpx.Client(base_url=API, timeout=600) as client:
            convert(client, markdown)  # warm-up: model sessions, connections, caches
            procs = groups()
            spies = []
            if args.py_spy:
                for name in ("api", "worker-1"):
                    pid = int((RUN / f"{name}.pid").read_text())
                    out = Path(f"/tmp/voxmill-profile-{name}.txt")
                    spies.append((name, out, spy(args.py_spy, pid, 60, out)))
                time.sleep(1.0)
            before = {k: cpu_seconds(v) for k, v in procs.items()}
            ts_before = torchserve_counters()
            marks = convert(client, markdown)
            after = {k: cpu_seconds(v) for k, v in procs.items()}
            ts_after = torchserve_counters()
            for _, _, process in spies:
                process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                process.wait()
    finally:
        if not args.keep:
            subprocess.run(["bash", "scripts/stack.sh", "down"], check=False)
    segments = int(marks.pop("segments"))
    audio = marks.pop("audio s")
    print(f"\n## One conversion: {segments} segments, {audio:.1f} s of audio\n")
    print("| stage (wall clock) | s |")
    print("|---|---:|")
    for name, value in marks.items():
        print(f"| {name} | {value:.3f} |")
    print("\n| process group | CPU s | CPU ms per segment |")
    print("|---|---:|---:|")
    for name in procs:
        used = after[name] - before[name]
        print(f"| {name} | {used:.2f} | {1000 * used / segments:.1f} |")
    calls = ts_after["ts_inference_requests_total"] - ts_before["ts_inference_requests_total"]
    print(f"\nTorchServe's own metrics over the conversion: {calls:.0f} requests,")
    for key, label in (
        ("ts_inference_latency_microseconds", "inference (handler, in its worker)"),
        ("ts_queue_latency_microseconds", "waiting in TorchServe's queue"),
    ):
        mean_ms = (ts_after[key] - ts_before[key]) / 1000 / max(1.0, calls)
        print(f"- {label}: {mean_ms:.1f} ms per request on average")
    for name, out, _ in spies:
        if out.exists():
            print(f"\n### {name}: own time by function (py-spy samples, idle excluded)\n")
            for function, share in top_functions(out):
                print(f"- {100 * share:.1f} % {function}")
    plain_cpu, plain_audio = piper_plain_cpu(plain)
    print(
        f"| plain piper-tts, same text, one process (for scale) | {plain_cpu:.2f} | "
        f"{1000 * plain_cpu / segments:.1f} |"
    )
    print(f"\n(plain piper-tts spoke {plain_audio:.1f} s of audio for the same text)")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
