"""API memory over many maximum-size uploads: does it stay flat?

Starts the API (embedded mode, its own SQLite and data folder) as a child process, then sends
``--uploads`` documents of ``VOXMILL_MAX_UPLOAD_BYTES`` (5 MiB of ``Go. `` repeated, the input of
issue 16 that took the API from 271 to 2,588 MB), ``--parallel`` at a time, and prints the API
process's resident memory (its own, and with its document-reader children) after every batch,
with the answer statuses. A benchmark, not a timed test: no thresholds, read the table.

There is no ``piper-tts`` counterpart: the library has no upload path to compare with.

Usage: ``.venv/bin/python bench/upload_memory_bench.py [--uploads 200] [--parallel 4]``
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from contract import limits

ROOT = Path(__file__).resolve().parents[1]


def rss_mb(process: psutil.Process) -> tuple[float, float]:
    """Resident MiB of the process alone, and with its children."""
    own = process.memory_info().rss
    children = 0
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            children += child.memory_info().rss
    return own / 2**20, (own + children) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--port", type=int, default=18731)
    args = parser.parse_args()

    document = (b"Go. " * (limits.MAX_UPLOAD_BYTES // 4))[: limits.MAX_UPLOAD_BYTES]
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
        env.update(VOXMILL_DATA_DIR=data, VOXMILL_CLIENT_RATE_PER_MINUTE="0")
        server = subprocess.Popen(
            [sys.executable, "-m", "api.main", "--mode", "embedded", "--port", str(args.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{args.port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the API did not start")
                time.sleep(0.5)
            api = psutil.Process(server.pid)
            with httpx.Client(base_url=url, timeout=120) as http:
                project = http.post("/v1/projects", json={"name": "memory"}).json()
                target = f"/v1/projects/{project['id']}/documents"

                def upload(_i: int) -> int:
                    files = {"file": ("go.txt", document, "text/plain")}
                    return http.post(target, files=files).status_code

                own, total = rss_mb(api)
                print("| uploads | statuses | API RSS MiB | with readers MiB | wall s |")
                print("|---:|---|---:|---:|---:|")
                print(f"| 0 | - | {own:.0f} | {total:.0f} | 0 |")
                started = time.monotonic()
                statuses: Counter[int] = Counter()
                done = 0
                with ThreadPoolExecutor(args.parallel) as pool:
                    step = max(args.parallel, args.uploads // 10)
                    while done < args.uploads:
                        batch = min(step, args.uploads - done)
                        statuses.update(pool.map(upload, range(batch)))
                        done += batch
                        own, total = rss_mb(api)
                        seen = ", ".join(f"{k}x{v}" for k, v in sorted(statuses.items()))
                        wall = time.monotonic() - started
                        print(f"| {done} | {seen} | {own:.0f} | {total:.0f} | {wall:.0f} |")
        finally:
            server.terminate()
            server.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
