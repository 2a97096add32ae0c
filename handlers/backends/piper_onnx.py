"""Piper VITS voices: an ONNX graph run by onnxruntime, espeak-ng phonemes.

Piper's exported graph takes a padded batch but returns only padded waveforms; the per-item
length lives inside the graph (the clipped sum of the ceiled durations). We expose that tensor as
an extra output, so each item can be trimmed to exactly what it would be alone.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handlers.backends.base import VoiceParams, pad_batch
from handlers.cores import CoreShare
from handlers.phonemize import BOS, EOS, PAD, phonemes_to_ids, phonemize
from handlers.timings import Group, groups_of

logger = logging.getLogger(__name__)

LENGTHS_OUTPUT = "output_frames"
WORD_SEPARATOR = " "


def expose_output_lengths(model: Any) -> Any:
    """Add the graph's per-item output length (in frames) as the output ``output_frames``.

    The length is the ``Cast`` that follows ``Clip(ReduceSum(Ceil(durations)))`` in the VITS
    graph: the same value the decoder uses to size each item. The model is changed in place.

    Args:
        model: An ``onnx.ModelProto`` of a Piper voice.

    Returns:
        The same model, for chaining.

    Raises:
        ValueError: The graph does not have the expected shape (not a Piper VITS export).
    """
    import onnx

    if any(o.name == LENGTHS_OUTPUT for o in model.graph.output):
        return model
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def follow(tensor: str, op: str) -> str | None:
        for node in consumers.get(tensor, []):
            if node.op_type == op:
                return str(node.output[0])
        return None

    for node in model.graph.node:
        if node.op_type != "Ceil":
            continue
        tensor: str | None = node.output[0]
        for op in ("ReduceSum", "Clip", "Cast"):
            tensor = follow(tensor, op) if tensor else None
        if tensor:
            model.graph.node.append(
                onnx.helper.make_node("Identity", [tensor], [LENGTHS_OUTPUT], name="voxmill_len")
            )
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(LENGTHS_OUTPUT, onnx.TensorProto.INT64, [None])
            )
            return model
    raise ValueError("not a Piper VITS graph: no Ceil -> ReduceSum -> Clip -> Cast length chain")


def patch_model_file(src: Path, dst: Path) -> None:
    """Write ``src`` to ``dst`` with the length output exposed (done once, at archive time)."""
    import onnx

    model = onnx.load(str(src))
    onnx.save(expose_output_lengths(model), str(dst))


@dataclass
class PiperOnnxBackend:
    """A Piper voice ready to synthesize."""

    session: Any
    config: dict[str, Any]
    sample_rate: int
    hop_length: int
    espeak_voice: str
    id_map: dict[str, list[int]]
    defaults: VoiceParams
    durations_output: str = ""
    sessions: dict[int, Any] = field(default_factory=dict)
    """With a :class:`CoreShare`: a session per intra-op thread count a call may be given."""
    share: CoreShare | None = None

    @classmethod
    def load(
        cls,
        model_path: Path,
        config_path: Path,
        *,
        gpu_id: int | None = None,
        threads: int = 0,
        share: CoreShare | None = None,
    ) -> PiperOnnxBackend:
        """Load a voice from its ONNX file and JSON config.

        Args:
            model_path: The ``.onnx`` export; patched in memory if it lacks the length output.
            config_path: Piper's ``.onnx.json``.
            gpu_id: CUDA device to run on, or ``None`` for the CPU.
            threads: onnxruntime intra-op threads (0: one per core); ignored with ``share``.
            share: Choose the threads per call (all cores alone, one beside other calls): two
                sessions of the same graph are loaded, one per thread count.
        """
        import onnxruntime as ort

        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
        model_bytes, durations_output = _model_with_lengths(Path(model_path))
        providers: list[Any] = ["CPUExecutionProvider"]
        if gpu_id is not None and "CUDAExecutionProvider" in ort.get_available_providers():
            providers = [("CUDAExecutionProvider", {"device_id": gpu_id}), "CPUExecutionProvider"]

        def session_with(intra_op: int) -> Any:
            options = ort.SessionOptions()
            options.intra_op_num_threads = intra_op
            return ort.InferenceSession(model_bytes, sess_options=options, providers=providers)

        sessions: dict[int, Any] = {}
        if share is not None and len(providers) == 1:  # the CPU: a GPU call needs no share
            sessions = {n: session_with(n) for n in sorted({1, share.cores})}
            session = sessions[1]
        else:
            share = None
            session = session_with(threads)
        inference = config.get("inference", {})
        logger.info("loaded Piper voice %s on %s", model_path.name, session.get_providers()[0])
        return cls(
            session=session,
            config=config,
            sample_rate=int(config["audio"]["sample_rate"]),
            hop_length=int(config.get("hop_length", 256)),
            espeak_voice=str(config["espeak"]["voice"]),
            id_map=config["phoneme_id_map"],
            defaults=VoiceParams(
                speed=1.0,
                noise_scale=float(inference.get("noise_scale", 0.667)),
                noise_w=float(inference.get("noise_w", 0.8)),
            ),
            durations_output=durations_output,
            sessions=sessions,
            share=share,
        )

    def prepare(self, text: str) -> list[list[int]]:
        """Phonemize with espeak-ng and map to ids, one sequence per sentence."""
        return [phonemes_to_ids(s, self.id_map) for s in phonemize(text, self.espeak_voice)]

    def prepare_ipa(self, ipa: str) -> list[int]:
        """IPA phonemes (an SSML ``<phoneme>`` or a lexicon entry) straight to ids through the
        voice's ``phoneme_id_map``: espeak-ng is not involved; unknown symbols are skipped."""
        return phonemes_to_ids(list(unicodedata.normalize("NFD", ipa.strip())), self.id_map)

    def infer(self, batch: list[list[int]], params: VoiceParams) -> list[np.ndarray]:
        """Synthesize the batch in one call and trim each item to its own length."""
        return [wave for wave, _ in self.infer_timed(batch, params)]

    def infer_timed(
        self, batch: list[list[int]], params: VoiceParams
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """As :meth:`infer`, with each item's samples per input id (the duration predictor's
        frames times the hop length; they sum to the item's length)."""
        ids, lengths = pad_batch(batch)
        base_length = float(self.config.get("inference", {}).get("length_scale", 1.0))
        noise = self.defaults.noise_scale if params.noise_scale is None else params.noise_scale
        noise_w = self.defaults.noise_w if params.noise_w is None else params.noise_w
        scales = np.array([noise, base_length / params.speed, noise_w], dtype=np.float32)
        feeds: dict[str, np.ndarray] = {"input": ids, "input_lengths": lengths, "scales": scales}
        if int(self.config.get("num_speakers", 1)) > 1:
            feeds["sid"] = np.zeros(len(batch), dtype=np.int64)
        outputs = ["output", LENGTHS_OUTPUT, self.durations_output]
        if self.share is None:
            audio, frames, durations = self.session.run(outputs, feeds)
        else:
            with self.share.claim() as threads:
                session = self.sessions.get(threads, self.session)
                audio, frames, durations = session.run(outputs, feeds)
        audio = audio.reshape(len(batch), -1)
        durations = durations.reshape(len(batch), -1)
        return [
            (
                audio[i, : int(frames[i]) * self.hop_length].astype(np.float32),
                durations[i, : len(batch[i])].astype(np.int64) * self.hop_length,
            )
            for i in range(len(batch))
        ]

    def groups(self, ids: list[int], id_samples: np.ndarray, offset: int) -> list[Group]:
        """The word groups of one input (see :func:`handlers.timings.groups_of`)."""
        return groups_of(
            ids,
            id_samples,
            separators=frozenset(self.id_map.get(WORD_SEPARATOR, [])),
            silent=_silent_ids(self.id_map),
            padding=frozenset(self.id_map.get(PAD, [])),
            offset=offset,
        )

    def word_lengths(self, words: list[str]) -> list[int]:
        """Each word's phoneme count when espeak-ng speaks it alone (for the word alignment)."""
        silent = {*_silent_ids(self.id_map), *self.id_map.get(PAD, [])}
        out = []
        for word in words:
            ids = [
                i
                for s in phonemize(word, self.espeak_voice)
                for i in phonemes_to_ids(s, self.id_map)
            ]
            out.append(
                sum(
                    1
                    for i in ids
                    if i not in silent and i not in self.id_map.get(WORD_SEPARATOR, [])
                )
            )
        return out


def _model_with_lengths(path: Path) -> tuple[bytes, str]:
    """The model with its per-item lengths and per-id durations as outputs, and the name of
    the durations output (the duration predictor's ``Ceil``, in frames; piper-tts' own
    ``add_alignment_output`` marks it)."""
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    model = expose_output_lengths(onnx.load(str(path)))
    ceil = next(node.output[0] for node in model.graph.node if node.op_type == "Ceil")
    if not any(o.name == ceil for o in model.graph.output):
        add_alignment_output(model, ceil)
    return bytes(model.SerializeToString()), str(ceil)


def _silent_ids(id_map: dict[str, list[int]]) -> frozenset[int]:
    """Ids that are never speech: the begin/end markers and punctuation (Unicode P*/S*)."""
    silent = {*id_map.get(BOS, []), *id_map.get(EOS, [])}
    for symbol, ids in id_map.items():
        if symbol not in (PAD, WORD_SEPARATOR) and all(
            unicodedata.category(ch)[0] in "PS" for ch in symbol
        ):
            silent.update(ids)
    return frozenset(silent)
