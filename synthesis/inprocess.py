"""The embedded mode's synthesizer: the TorchServe handler loaded in this process.

It serves the same ``.mar`` archives TorchServe serves (extracted once under the data
directory) through the same handler code, so both modes produce the same audio.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import zipfile
from pathlib import Path
from typing import Any

import yaml

from contract.messages import SynthesisParams
from handlers.local_context import LocalContext
from handlers.voxmill_handler import (
    SAMPLE_RATE_HEADER,
    SAMPLES_HEADER,
    TIMINGS_HEADER,
    VoxmillHandler,
)
from synthesis.base import (
    Audio,
    EncodedAudio,
    PermanentSynthesisError,
    UnknownVoiceError,
    handler_request,
    refusal,
    timings_from_header,
)

# The store key of an uploaded voice version (see voices/store.py; synthesis may not import it).
_VERSIONED = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\.v[0-9]{1,6}\.mar$")


def is_versioned_archive(file_name: str) -> bool:
    """Whether ``file_name`` is an uploaded voice version rather than a built-in voice."""
    return bool(_VERSIONED.match(file_name))


def _version_order(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (1 << 30, version)


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
    """Voices from a model store, each run by the handler inside this process.

    Built-in voices are the store's ``<name>.mar``; registered (uploaded) voices are announced with
    :meth:`set_voice` and served by version, like TorchServe does with its management API. Only
    archives in the model store are ever loaded.
    """

    def __init__(self, model_store: Path, work_dir: Path) -> None:
        self.model_store = model_store
        self.work_dir = work_dir
        self._handlers: dict[tuple[str, str | None], VoxmillHandler] = {}
        self._registered: dict[str, dict[str, str]] = {}  # voice -> version -> archive key
        self._defaults: dict[str, str] = {}
        self._lock = threading.Lock()

    def voices(self) -> list[str]:
        """Every built-in ``.mar`` in the model store, and every registered voice."""
        builtin = {
            p.stem for p in self.model_store.glob("*.mar") if not is_versioned_archive(p.name)
        }
        return sorted(builtin | set(self._registered))

    def set_voice(self, name: str, archives: dict[str, str], default: str | None) -> None:
        """Serve a registered voice: its versions' archive keys and the default version.

        Takes effect for the next request; syntheses in progress finish on the version they
        started with (their handler stays loaded).
        """
        with self._lock:
            self._registered[name] = dict(archives)
            if default is not None:
                self._defaults[name] = default

    def loaded_versions(self, name: str) -> list[str]:
        """The versions of ``name`` loaded in this process (for the voice's health)."""
        with self._lock:
            return sorted((v or "") for n, v in self._handlers if n == name)

    def default_version(self, name: str) -> str | None:
        """The version a request without one gets (``None`` for a built-in voice)."""
        return self._defaults.get(name)

    def handler(self, voice: str, version: str | None = None) -> VoxmillHandler:
        """The loaded handler for ``voice`` (``version`` of a registered voice), loaded on first
        use."""
        with self._lock:
            if voice in self._registered:
                version = version or self._defaults.get(voice)
                key = self._registered[voice].get(version or "")
                if key is None:
                    known = ", ".join(sorted(self._registered[voice], key=_version_order))
                    raise UnknownVoiceError(
                        f"voice '{voice}' has no version {version!r}; versions: {known}"
                    )
                mar = self.model_store / key
                folder = f"{voice}.v{version}"
            else:
                if version is not None:
                    raise UnknownVoiceError(f"voice '{voice}' is built in and has no versions")
                mar = self.model_store / f"{voice}.mar"
                folder = voice
            if (voice, version) not in self._handlers:
                if not mar.is_file():
                    known = ", ".join(self.voices()) or "none (run 'make mar')"
                    raise UnknownVoiceError(f"unknown voice '{voice}'; available: {known}")
                model_dir = self.work_dir / "voices" / folder
                model_dir.mkdir(parents=True, exist_ok=True)
                config = extract_mar(mar, model_dir)
                handler = VoxmillHandler()
                handler.initialize(LocalContext(model_dir, config, model_name=voice))
                self._handlers[(voice, version)] = handler
            return self._handlers[(voice, version)]

    def synthesize(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        version: str | None = None,
        pool: str | None = None,
    ) -> Audio:
        """Synthesize ``text`` with ``voice`` (``version`` of a registered voice) to samples (the
        handler's raw PCM); ``pool`` means nothing in-process."""
        encoded = self.synthesize_encoded(voice, text, params, fmt="pcm", version=version)
        return Audio.from_pcm(encoded.data, encoded.sample_rate, encoded.timings)

    def synthesize_encoded(
        self,
        voice: str,
        text: str,
        params: SynthesisParams | None = None,
        *,
        fmt: str = "flac",
        version: str | None = None,
        pool: str | None = None,
    ) -> EncodedAudio:
        """Synthesize ``text`` with ``voice`` through the handler's own pre-processing,
        inference and encoding, as TorchServe runs them; the same bytes as over HTTP.

        ``version`` pins a version of a registered voice (default: its default version);
        ``pool`` means nothing in-process.

        Raises:
            UnknownVoiceError: No ``<voice>.mar`` in the model store, or no such version.
            PermanentSynthesisError: The handler refused the text (its message).
        """
        handler = self.handler(voice, version)
        # A context per call: the handler is shared by the embedded worker threads.
        context = LocalContext(self.work_dir)
        requests = handler.preprocess([{"body": handler_request(text, params, fmt)}])
        (data,) = handler.postprocess(handler.inference(requests), requests, context)
        headers = context.headers.get(0, {})
        if context.status(0) != 200:
            raise refusal(_handler_error(data))
        return EncodedAudio(
            data=data,
            format=fmt,
            sample_rate=int(headers[SAMPLE_RATE_HEADER]),
            num_samples=int(headers[SAMPLES_HEADER]),
            timings=timings_from_header(headers.get(TIMINGS_HEADER)),
        )


def _handler_error(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace")[:500]
