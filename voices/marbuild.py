"""Turn a voice on disk into a TorchServe ``.mar`` (``voxmill build-mar``).

A voice is staged as a directory with ``voice.json`` (see :mod:`handlers.voices`) next to a copy
of the packages the handler runs on (:data:`HANDLER_PACKAGES`), so the archive is self-contained:
TorchServe needs nothing of Voxmill installed beyond their third-party dependencies.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from handlers.voices import VoiceManifest

logger = logging.getLogger(__name__)

HANDLER_FILE = "voxmill_handler.py"
# What the handler imports of ours: it and the leaf packages below it (docs/architecture.md).
HANDLER_PACKAGES = ("handlers", "text_processing", "audio", "contract")
VERSION = "1.0"


class BuildError(RuntimeError):
    """The voice could not be archived; the message says why."""


def stage_piper(name: str, model: Path, config: Path, dest: Path) -> None:
    """Stage a Piper voice (ONNX + JSON), with the batch-length output exposed in the graph."""
    from handlers.backends.piper_onnx import patch_model_file

    if not model.is_file():
        raise BuildError(f"Piper model not found: {model}")
    if not config.is_file():
        raise BuildError(
            f"Piper config not found: {config} (expected next to the .onnx as .onnx.json)"
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        patch_model_file(model, dest / "model.onnx")
    except ValueError as e:
        raise BuildError(f"{model}: {e}") from e
    shutil.copy2(config, dest / "model.onnx.json")
    VoiceManifest(name, "piper", {"model": "model.onnx", "config": "model.onnx.json"}).write(dest)


def stage_transformers(name: str, model_dir: Path, dest: Path) -> None:
    """Stage a ``transformers`` VITS directory written by ``save_pretrained``."""
    if not (model_dir / "config.json").is_file():
        raise BuildError(f"{model_dir} is not a save_pretrained directory (no config.json)")
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("*.bin")):
        raise BuildError(f"{model_dir} has no model weights (*.safetensors or *.bin)")
    if not (model_dir / "vocab.json").is_file():
        raise BuildError(f"{model_dir} has no tokenizer (vocab.json); save the tokenizer too")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model_dir, dest / "hf", dirs_exist_ok=True)
    VoiceManifest(name, "transformers", {"path": "hf"}).write(dest)


def _copy_handler_packages(dest: Path) -> None:
    for name in HANDLER_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None, f"package {name} is not installed"
        shutil.copytree(
            Path(spec.origin).parent,
            dest / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )


def archive(
    name: str, voice_dir: Path, model_config: Path, export_dir: Path, *, version: str = VERSION
) -> Path:
    """Run ``torch-model-archiver`` over a staged voice.

    Args:
        name: The model name TorchServe registers (``/predictions/<name>``).
        voice_dir: A staged voice directory (``voice.json`` and its files).
        model_config: The ``model-config.yaml`` (batching, workers, handler options).
        export_dir: Where ``<name>.mar`` is written (replaced if present).
        version: The model version in the archive's manifest (``/predictions/<name>/<version>``).

    Returns:
        The path of the archive.
    """
    if not model_config.is_file():
        raise BuildError(f"model config not found: {model_config}")
    export_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="voxmill-mar-") as tmp:
        extra = Path(tmp) / "extra"
        shutil.copytree(voice_dir, extra)
        _copy_handler_packages(extra)
        command = [
            sys.executable,
            "-m",
            "model_archiver.model_packaging",
            "--model-name",
            name,
            "--version",
            version,
            "--handler",
            str(extra / "handlers" / HANDLER_FILE),
            "--extra-files",
            str(extra),
            "--config-file",
            str(model_config),
            "--export-path",
            str(export_dir),
            "--force",
        ]
        # torch-model-archiver stages files in $TMPDIR/<model name>: a private TMPDIR keeps two
        # builds of the same voice (two checkouts on one machine) from mixing their files.
        env = {**os.environ, "TMPDIR": tmp}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        if done.returncode != 0:
            raise BuildError(f"torch-model-archiver failed: {done.stderr.strip() or done.stdout}")
    path = export_dir / f"{name}.mar"
    logger.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def build(
    name: str,
    *,
    export_dir: Path,
    model_config: Path,
    piper_model: Path | None = None,
    piper_config: Path | None = None,
    hf_dir: Path | None = None,
) -> Path:
    """Stage one voice and archive it; exactly one of Piper files or ``hf_dir`` is given."""
    if (piper_model is None) == (hf_dir is None):
        raise BuildError("give either a Piper voice (--piper MODEL.onnx) or --transformers DIR")
    with tempfile.TemporaryDirectory(prefix="voxmill-voice-") as tmp:
        staged = Path(tmp) / name
        if piper_model is not None:
            config = piper_config or Path(f"{piper_model}.json")
            stage_piper(name, piper_model, config, staged)
        else:
            assert hf_dir is not None
            stage_transformers(name, hf_dir, staged)
        return archive(name, staged, model_config, export_dir)
