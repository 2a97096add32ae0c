"""TorchServe for the GPU benchmark: start one server, register model variants, drive load.

The benchmark registers the same archive several times through the management API with different
``batch_size`` / ``max_batch_delay`` / worker counts instead of restarting TorchServe for each
(a restart costs tens of seconds of scarce GPU time). That API is on for this benchmark server
only, on loopback, with token authorization off; the shipped ``model-store/config.properties``
keeps it off.

Load comes from several client processes (one asyncio loop with httpx each): one Python process
tops out at a few hundred requests per second, below what a GPU voice serves.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

CONFIG = """\
inference_address=http://127.0.0.1:{port}
management_address=http://127.0.0.1:{mport}
metrics_address=http://127.0.0.1:{xport}
grpc_inference_address=127.0.0.1
grpc_management_address=127.0.0.1
grpc_inference_port={gport}
grpc_management_port={gmport}
disable_token_authorization=true
enable_model_api=true
model_store={store}
load_models=
max_response_size=104857600
max_request_size=1048576
job_queue_size=4096
number_of_netty_threads=16
netty_client_threads=16
default_response_timeout=300
install_py_dep_per_model=false
disable_system_metrics=true
async_logging=true
vmargs=-Xmx4g -XX:-UseContainerSupport -Djava.io.tmpdir={tmp}
"""


@dataclass
class Server:
    """A TorchServe started by :func:`start_server`."""

    process: subprocess.Popen[bytes]
    workdir: Path
    port: int

    @property
    def inference(self) -> str:
        """Inference API base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def management(self) -> str:
        """Management API base URL."""
        return f"http://127.0.0.1:{self.port + 1}"


def start_server(
    store: Path, workdir: Path, *, port: int = 28080, timeout_s: float = 120
) -> Server:
    """Start TorchServe on loopback with the model API on; wait until it answers /ping."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "tmp").mkdir(exist_ok=True)
    config = workdir / "config.properties"
    config.write_text(
        CONFIG.format(
            port=port,
            mport=port + 1,
            xport=port + 2,
            gport=port + 3,
            gmport=port + 4,
            store=store.resolve(),
            tmp=workdir / "tmp",
        )
    )
    env = {
        **os.environ,
        "LOG_LOCATION": str(workdir / "logs"),
        "METRICS_LOCATION": str(workdir / "logs"),
        "TMPDIR": str(workdir / "tmp"),
    }
    beside = str(Path(sys.executable).parent)
    binary = shutil.which("torchserve", path=beside) or shutil.which("torchserve") or "torchserve"
    command = [binary, "--foreground", "--ncs", "--model-store", str(store.resolve())]
    command += ["--ts-config", str(config)]
    with (workdir / "console.log").open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, workdir, port)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{server.inference}/ping", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(server)
    tail = (workdir / "console.log").read_text()[-3000:]
    raise RuntimeError(f"TorchServe did not start; console tail:\n{tail}")


def stop_server(server: Server) -> None:
    """Stop the server's process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.process.wait(20)
            return
        except subprocess.TimeoutExpired:
            continue


def register(
    server: Server, mar: str, name: str, *, workers: int, batch_size: int, delay_ms: int
) -> float:
    """Register ``mar`` as ``name`` with the given batching and workers; seconds it took."""
    t0 = time.perf_counter()
    answer = httpx.post(
        f"{server.management}/models",
        params={
            "url": mar,
            "model_name": name,
            "batch_size": batch_size,
            "max_batch_delay": delay_ms,
            "initial_workers": workers,
            "synchronous": "true",
            "response_timeout": 300,
        },
        timeout=600,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"registering {name}: HTTP {answer.status_code}: {answer.text}")
    return time.perf_counter() - t0


def unregister(server: Server, name: str) -> None:
    """Unregister a model (its workers stop and free their GPU memory)."""
    httpx.delete(f"{server.management}/models/{name}", timeout=120)


def gpu_memory_mib() -> int | None:
    """Used GPU memory of device 0 as nvidia-smi reports it (all processes)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _client(url: str, texts: list[str], concurrency: int, seconds: float, queue: mp.Queue) -> None:
    """One load process: ``concurrency`` requests in flight for ``seconds``; puts
    (requests, samples, errors, latencies) on ``queue``."""

    async def run() -> tuple[int, int, int, list[float]]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        stats = [0, 0, 0]
        latencies: list[float] = []
        end = time.perf_counter() + seconds
        async with httpx.AsyncClient(timeout=300, limits=limits) as client:

            async def loop(start: int) -> None:
                i = start
                while time.perf_counter() < end:
                    text = texts[i % len(texts)]
                    i += concurrency
                    t0 = time.perf_counter()
                    try:
                        answer = await client.post(url, json={"text": text, "format": "pcm"})
                    except httpx.HTTPError:
                        stats[2] += 1
                        continue
                    if answer.status_code != 200:
                        stats[2] += 1
                        continue
                    latencies.append(time.perf_counter() - t0)
                    stats[0] += 1
                    stats[1] += len(answer.content) // 2

            await asyncio.gather(*(loop(k) for k in range(concurrency)))
        return stats[0], stats[1], stats[2], latencies

    queue.put(asyncio.run(run()))


@dataclass
class Load:
    """What a load run achieved."""

    requests: int
    audio_s: float
    errors: int
    wall_s: float
    p50_s: float
    p95_s: float

    @property
    def audio_per_s(self) -> float:
        """Audio seconds served per wall second."""
        return self.audio_s / self.wall_s


def drive(
    url: str,
    texts: list[str],
    *,
    concurrency: int,
    seconds: float,
    sample_rate: int,
    processes: int = 8,
) -> Load:
    """Keep ``concurrency`` requests in flight against ``url`` for ``seconds``."""
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    per = max(1, concurrency // processes)
    procs = [
        ctx.Process(target=_client, args=(url, texts[k::processes] or texts, per, seconds, queue))
        for k in range(min(processes, concurrency))
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    latencies = sorted(x for r in results for x in r[3])
    return Load(
        requests=sum(r[0] for r in results),
        audio_s=sum(r[1] for r in results) / sample_rate,
        errors=sum(r[2] for r in results),
        wall_s=wall,
        p50_s=statistics.median(latencies) if latencies else float("nan"),
        p95_s=latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
    )


def first_audio_latency(url: str, text: str, count: int = 20) -> tuple[float, float]:
    """p50 and p95 seconds of ``count`` sequential one-sentence requests."""
    times = []
    with httpx.Client(timeout=120) as client:
        client.post(url, json={"text": text, "format": "pcm"})
        for _ in range(count):
            t0 = time.perf_counter()
            client.post(url, json={"text": text, "format": "pcm"}).raise_for_status()
            times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


if __name__ == "__main__":  # pragma: no cover - imported by measure.py
    sys.exit("run bench/gpu/measure.py")
