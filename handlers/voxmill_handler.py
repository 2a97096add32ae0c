"""TorchServe custom handler for Voxmill voices: a thin adapter over :mod:`handlers.speech`.

Life cycle as TorchServe expects: ``initialize`` once per worker, then ``handle`` per batch
(``preprocess`` → ``inference`` → ``postprocess``). A bad item gets its own 4xx status and a JSON
error; the rest of the batch is synthesized as usual.

Request body: ``{"text": "...", "speed": 1.0, "noise_scale"?, "noise_w"?, "format": "wav"|"pcm"}``.
Response: 16-bit mono WAV (or raw little-endian PCM), with ``X-Sample-Rate`` set.
"""

from __future__ import annotations

import io
import json
import logging
import wave
from http import HTTPStatus
from pathlib import Path
from typing import Any

import numpy as np

from handlers.speech import (
    RequestError,
    ServiceOptions,
    SpeechRequest,
    SpeechService,
    parse_request,
    to_int16,
)
from handlers.voices import load_backend

logger = logging.getLogger(__name__)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit mono WAV of ``samples`` (int16)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


class VoxmillHandler:
    """Text-to-speech with one voice per model (one ``.mar``)."""

    def __init__(self) -> None:
        self.service: SpeechService | None = None
        self.initialized = False
        self.context: Any = None

    def initialize(self, context: Any) -> None:
        """Load the voice from the extracted archive onto this worker's device."""
        props = context.system_properties
        config = getattr(context, "model_yaml_config", None) or {}
        options = dict(config.get("handler", {}) or {})
        gpu_id = props.get("gpu_id")
        backend = load_backend(
            Path(props["model_dir"]),
            gpu_id=int(gpu_id) if gpu_id is not None else None,
            threads=int(options.pop("threads", 0)),
            precision=str(options.pop("precision", "fp16")),
        )
        self.service = SpeechService(backend, ServiceOptions.from_mapping(options))
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> list[SpeechRequest | RequestError]:
        """Validate each item on its own, so one bad item cannot fail the batch."""
        assert self.service is not None
        limit = self.service.options.max_text_chars
        parsed: list[SpeechRequest | RequestError] = []
        for row in data:
            raw = row.get("body") if row.get("body") is not None else row.get("data")
            try:
                parsed.append(parse_request(raw, max_text_chars=limit))
            except RequestError as e:
                parsed.append(e)
            except UnicodeDecodeError:
                parsed.append(RequestError("request body is not UTF-8 text"))
        return parsed

    def inference(self, requests: list[SpeechRequest | RequestError]) -> list[Any]:
        """Synthesize all valid items of the batch together."""
        assert self.service is not None
        return self.service.synthesize_each(requests)

    def postprocess(
        self, outputs: list[Any], requests: list[SpeechRequest | RequestError]
    ) -> list[bytes]:
        """Encode each item and set its status and headers."""
        assert self.service is not None
        rate = self.service.sample_rate
        replies: list[bytes] = []
        for idx, (output, request) in enumerate(zip(outputs, requests, strict=True)):
            if isinstance(output, RequestError):
                self._respond(idx, output.status, "application/json")
                replies.append(json.dumps({"error": str(output), "code": output.status}).encode())
                continue
            assert isinstance(request, SpeechRequest)
            samples = to_int16(output)
            if request.format == "pcm":
                self._respond(idx, 200, f"audio/L16; rate={rate}; channels=1")
                replies.append(samples.astype("<i2").tobytes())
            else:
                self._respond(idx, 200, "audio/wav")
                replies.append(wav_bytes(samples, rate))
            if self.context is not None:
                self.context.set_response_header(idx, "X-Sample-Rate", str(rate))
                self.context.set_response_header(idx, "X-Audio-Samples", str(len(samples)))
        return replies

    def _respond(self, idx: int, status: int, content_type: str) -> None:
        if self.context is None:
            return
        self.context.set_response_content_type(idx, content_type)
        if status != 200:
            self.context.set_response_status(status, HTTPStatus(status).phrase, idx)

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        """TorchServe's entry point for one batch."""
        self.context = context
        requests = self.preprocess(data)
        return self.postprocess(self.inference(requests), requests)
