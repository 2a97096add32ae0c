"""The embedded mode's synthesizer: the TorchServe handler loaded in this process.

It serves the same ``.mar`` archives TorchServe serves (extracted once under the data
directory) through the same handler code, so both modes produce the same audio.
"""

from __future__ import annotations

import json
import logging
import threading
import zipfile
from pathlib import Path
from typing import Any

import yaml

from contract.messages import SynthesisParams
from handlers.local_context import LocalContext
from handlers.voxmill_handler import SAMPLE_RATE_HEADER, SAMPLES_HEADER, VoxmillHandler
from synthesis.base import (
    Audio,
    EncodedAudio,
    PermanentSynthesisError,
    UnknownVoiceError,
    handler_request,
)

logger = logging.getLogger(__name__)


def extract_mar(mar: Path, dest: Path) -> dict[str, Any]:
    """Unpack a ``.mar`` (a zip) into ``dest`` unless already current; return its model config."""
    stamp = dest / ".source-mtime"
    current = str(mar.stat().st_mtime_ns)
    if not (stamp.exists() and stamp.read_text() == current):
        with zipfile.ZipFile(mar) as archive:
            for member in archive.namelist():
                target = (dest / member).resolve()
                if not target.is_relative_to(dest.resolve()):
                    raise PermanentSynthesisError(f"{mar}: archive member escapes its folder")
            archive.extractall(dest)
        stamp.write_text(current)
    configs = sorted(dest.glob("*.yaml"))
    return yaml.safe_load(configs[0].read_text()) if configs else {}


class InProcessSynthesizer:
    """Voices from a model store, each run by the handler inside this process."""

    def __init__(self, model_store: Path, work_dir: Path) -> None:
        self.model_store = model_store
        self.work_dir = work_dir
        self._handlers: dict[str, VoxmillHandler] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[str]:
        """Every ``.mar`` in the model store."""
        return sorted(p.stem for p in self.model_store.glob("*.mar"))

    def handler(self, voice: str) -> VoxmillHandler:
        """The loaded handler for ``voice`` (loaded on first use)."""
        with self._lock:
            if voice not in self._handlers:
                mar = self.model_store / f"{voice}.mar"
                if not mar.is_file():
                    known = ", ".join(self.voices()) or "none (run 'make mar')"
                    raise UnknownVoiceError(f"unknown voice '{voice}'; available: {known}")
                model_dir = self.work_dir / "voices" / voice
                model_dir.mkdir(parents=True, exist_ok=True)
                config = extract_mar(mar, model_dir)
                handler = VoxmillHandler()
                handler.initialize(LocalContext(model_dir, config, model_name=voice))
                self._handlers[voice] = handler
            return self._handlers[voice]

    def synthesize(self, voice: str, text: str, params: SynthesisParams | None = None) -> Audio:
        """Synthesize ``text`` with ``voice`` to samples (the handler's raw PCM)."""
        encoded = self.synthesize_encoded(voice, text, params, fmt="pcm")
        return Audio.from_pcm(encoded.data, encoded.sample_rate)

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        """Synthesize ``text`` with ``voice`` through the handler's own pre-processing,
        inference and encoding, as TorchServe runs them; the same bytes as over HTTP.

        Raises:
            UnknownVoiceError: No ``<voice>.mar`` in the model store.
            PermanentSynthesisError: The handler refused the text (its message).
        """
        handler = self.handler(voice)
        # A context per call: the handler is shared by the embedded worker threads.
        context = LocalContext(self.work_dir)
        requests = handler.preprocess([{"body": handler_request(text, params, fmt)}])
        (data,) = handler.postprocess(handler.inference(requests), requests, context)
        headers = context.headers.get(0, {})
        if context.status(0) != 200:
            raise PermanentSynthesisError(_handler_error(data))
        return EncodedAudio(
            data=data,
            format=fmt,
            sample_rate=int(headers[SAMPLE_RATE_HEADER]),
            num_samples=int(headers[SAMPLES_HEADER]),
        )


def _handler_error(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace")[:500]
