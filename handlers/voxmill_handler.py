"""TorchServe custom handler for Voxmill voices: a thin adapter over :mod:`handlers.speech`.

Life cycle as TorchServe expects: ``initialize`` once per worker, then ``handle`` per batch
(``preprocess`` → ``inference`` → ``postprocess``). A bad item gets its own 4xx status and a JSON
error; the rest of the batch is synthesized as usual.

Request body: ``{"text": "...", "speed": 1.0, "noise_scale"?, "noise_w"?,
"format": "wav"|"flac"|"pcm"}``; the text is plain, SSML or a spoken form, or ``"pieces"`` take its
place (``[{"text"|"ipa": "...", "rate"?}, {"break_ms": 500}]``; see
:func:`handlers.speech.parse_request`). Response: 16-bit mono audio in that format (encoded here,
once, by :func:`audio.codecs.encode`), with ``X-Sample-Rate`` (Hz) and ``X-Audio-Samples`` (its
length in samples) set, so callers hand the bytes on without decoding them, and ``X-Timings``
(the word and sentence times from the voice's duration predictor, :class:`contract.timings.Timings`
as ASCII JSON) when the voice gives durations.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from pathlib import Path
from typing import Any

from audio.codecs import as_int16, encode, media_type
from handlers.speech import (
    RequestError,
    ServiceOptions,
    SpeechService,
    SynthesisRequest,
    Timed,
    parse_request,
)
from handlers.voices import load_backend

logger = logging.getLogger(__name__)

SAMPLE_RATE_HEADER = "X-Sample-Rate"
SAMPLES_HEADER = "X-Audio-Samples"
TIMINGS_HEADER = "X-Timings"


class VoxmillHandler:
    """Text-to-speech with one voice per model (one ``.mar``)."""

    def __init__(self) -> None:
        self.service: SpeechService | None = None
        self.initialized = False

    def initialize(self, context: Any) -> None:
        """Load the voice from the extracted archive onto this worker's device."""
        props = context.system_properties
        config = getattr(context, "model_yaml_config", None) or {}
        options = dict(config.get("handler", {}) or {})
        gpu_id = props.get("gpu_id")
        backend = load_backend(
            Path(props["model_dir"]),
            gpu_id=int(gpu_id) if gpu_id is not None else None,
            threads=options.pop("threads", 0),
            precision=str(options.pop("precision", "fp16")),
        )
        self.service = SpeechService(backend, ServiceOptions.from_mapping(options))
        self.initialized = True

    def preprocess(self, data: list[dict[str, Any]]) -> list[SynthesisRequest | RequestError]:
        """Validate each item on its own, so one bad item cannot fail the batch."""
        assert self.service is not None
        limit = self.service.options.max_text_chars
        parsed: list[SynthesisRequest | RequestError] = []
        for row in data:
            raw = row.get("body") if row.get("body") is not None else row.get("data")
            try:
                parsed.append(parse_request(raw, max_text_chars=limit))
            except RequestError as e:
                parsed.append(e)
            except UnicodeDecodeError:
                parsed.append(RequestError("request body is not UTF-8 text"))
        return parsed

    def inference(self, requests: list[SynthesisRequest | RequestError]) -> list[Any]:
        """Synthesize all valid items of the batch together."""
        assert self.service is not None
        return self.service.synthesize_timed(requests)

    def postprocess(
        self,
        outputs: list[Any],
        requests: list[SynthesisRequest | RequestError],
        context: Any = None,
    ) -> list[bytes]:
        """Encode each item and set its status and headers on ``context`` (TorchServe's, or a
        :class:`~handlers.local_context.LocalContext` of the in-process caller's own)."""
        assert self.service is not None
        rate = self.service.sample_rate
        replies: list[bytes] = []
        for idx, (output, request) in enumerate(zip(outputs, requests, strict=True)):
            timings = output.timings if isinstance(output, Timed) else None
            if isinstance(output, Timed):
                output = output.audio
            if not isinstance(output, RequestError):
                assert isinstance(request, SynthesisRequest)
                samples = as_int16(output)
                try:
                    data = encode(samples, rate, request.format)
                except ValueError as e:  # no audio at all: FLAC cannot hold zero samples
                    output = RequestError(f"the voice produced no usable audio: {e}", status=422)
            if isinstance(output, RequestError):
                _respond(context, idx, output.status, "application/json")
                replies.append(json.dumps({"error": str(output), "code": output.status}).encode())
                continue
            assert isinstance(request, SynthesisRequest)
            _respond(context, idx, 200, media_type(request.format, rate))
            replies.append(data)
            if context is not None:
                context.set_response_header(idx, SAMPLE_RATE_HEADER, str(rate))
                context.set_response_header(idx, SAMPLES_HEADER, str(len(samples)))
                if timings is not None:
                    context.set_response_header(idx, TIMINGS_HEADER, timings.to_header())
        return replies

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        """TorchServe's entry point for one batch."""
        requests = self.preprocess(data)
        return self.postprocess(self.inference(requests), requests, context)


def _respond(context: Any, idx: int, status: int, content_type: str) -> None:
    if context is None:
        return
    context.set_response_content_type(idx, content_type)
    if status != 200:
        context.set_response_status(status, HTTPStatus(status).phrase, idx)
