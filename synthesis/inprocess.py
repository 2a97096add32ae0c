"""The embedded mode's synthesizer: the TorchServe handler loaded in this process.

It serves the same ``.mar`` archives TorchServe serves (extracted once under the data
directory) through the same handler code, so both modes produce the same audio.
"""

from __future__ import annotations

import logging
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from contract.messages import SynthesisParams
from handlers.local_context import LocalContext
from handlers.speech import RequestError, SpeechRequest, to_int16
from handlers.voxmill_handler import VoxmillHandler
from synthesis.base import Audio, PermanentSynthesisError, UnknownVoiceError

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
        """Synthesize ``text`` with ``voice`` (no length limit beyond the handler's)."""
        params = params or SynthesisParams()
        handler = self.handler(voice)
        body = {"text": text, "speed": params.speed}
        if params.noise_scale is not None:
            body["noise_scale"] = params.noise_scale
        if params.noise_w is not None:
            body["noise_w"] = params.noise_w
        requests = handler.preprocess([{"body": body}])
        if isinstance(requests[0], RequestError):
            raise PermanentSynthesisError(str(requests[0]))
        assert isinstance(requests[0], SpeechRequest)
        (result,) = handler.inference(requests)
        if isinstance(result, RequestError):
            raise PermanentSynthesisError(str(result))
        samples: np.ndarray = to_int16(result)
        assert handler.service is not None
        return Audio(samples=samples, sample_rate=handler.service.sample_rate)
