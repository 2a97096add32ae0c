"""Voice directories: what a ``.mar`` (or the embedded mode) holds, and loading a back-end from it.

A voice directory has a ``voice.json`` manifest:

- Piper: ``{"name": "joe", "family": "piper", "model": "model.onnx", "config": "model.onnx.json"}``
- transformers VITS: ``{"name": "mms-eng", "family": "transformers", "path": "hf"}`` where ``hf/``
  is a ``save_pretrained`` directory (model and tokenizer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.backends.base import Backend

MANIFEST = "voice.json"
# The handler option ``threads: adaptive`` (see load_backend).
ADAPTIVE_THREADS = "adaptive"
FAMILIES = ("piper", "transformers")


class VoiceError(ValueError):
    """A voice directory that cannot be loaded; the message says what is missing."""


@dataclass(frozen=True)
class VoiceManifest:
    """What ``voice.json`` says."""

    name: str
    family: str
    files: dict[str, str]

    @classmethod
    def read(cls, voice_dir: Path) -> VoiceManifest:
        """Read and check the manifest of ``voice_dir``."""
        path = voice_dir / MANIFEST
        if not path.is_file():
            raise VoiceError(
                f"{voice_dir} has no {MANIFEST}; build voices with 'voxmill build-mar'"
            )
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        family = raw.get("family")
        if family not in FAMILIES:
            raise VoiceError(f"{path}: 'family' must be one of {FAMILIES}, got {family!r}")
        files = {k: str(v) for k, v in raw.items() if k not in {"name", "family"}}
        return cls(name=str(raw.get("name", voice_dir.name)), family=family, files=files)

    def write(self, voice_dir: Path) -> None:
        """Write the manifest into ``voice_dir``."""
        body = {"name": self.name, "family": self.family, **self.files}
        (voice_dir / MANIFEST).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def load_backend(
    voice_dir: Path,
    *,
    gpu_id: int | None = None,
    threads: int | str = 0,
    precision: str = "fp16",
) -> Backend:
    """Load the voice in ``voice_dir`` with the back-end its family needs.

    Args:
        voice_dir: A directory with ``voice.json``.
        gpu_id: TorchServe's GPU for this worker, or ``None`` for the CPU.
        threads: Intra-op threads for the CPU (0: the runtime's default), or ``"adaptive"``:
            for a Piper voice, all cores for a call that runs alone on the machine and one beside
            other calls (:mod:`handlers.cores`); one thread for a ``transformers`` voice, whose
            torch thread count is per process.
        precision: GPU precision of ``transformers`` voices (``fp32``, ``fp16``, ``bf16``);
            Piper voices run the ONNX graph as exported.
    """
    manifest = VoiceManifest.read(voice_dir)
    adaptive = threads == ADAPTIVE_THREADS
    if not adaptive and not (isinstance(threads, int) or str(threads).isdigit()):
        raise VoiceError(f"threads must be a number or {ADAPTIVE_THREADS!r}, got {threads!r}")
    count = 1 if adaptive else int(threads)
    if manifest.family == "piper":
        from handlers.backends.piper_onnx import PiperOnnxBackend
        from handlers.cores import CoreShare

        return PiperOnnxBackend.load(
            voice_dir / manifest.files["model"],
            voice_dir / manifest.files["config"],
            gpu_id=gpu_id,
            threads=count,
            share=CoreShare() if adaptive else None,
        )
    from handlers.backends.hf_vits import HfVitsBackend

    return HfVitsBackend.load(
        voice_dir / manifest.files.get("path", "."),
        gpu_id=gpu_id,
        threads=count,
        precision=precision,
    )
