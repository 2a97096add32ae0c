"""Hugging Face ``transformers`` VITS voices (``VitsModel``: MMS-TTS and fine-tunes of it).

Loaded from a local ``save_pretrained`` directory (the model hub is never contacted) and run with
torch: on the GPU in the configured precision (fp16 by default) when TorchServe gives us one, else
on the CPU in fp32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from handlers.backends.base import VoiceParams, pad_batch
from handlers.timings import Group, groups_of

logger = logging.getLogger(__name__)


# Precisions a GPU worker may run in (``handler: precision:`` in model-config.yaml). The CPU always
# runs fp32: half precision is slower there and loses accuracy for nothing.
PRECISIONS = ("fp32", "fp16", "bf16")


def select_device(gpu_id: int | None) -> Any:
    """TorchServe's ``gpu_id`` to a torch device; the CPU when no GPU is present."""
    import torch

    if gpu_id is not None and torch.cuda.is_available():
        return torch.device(f"cuda:{gpu_id}")
    return torch.device("cpu")


def keep_durations_in_fp32(model: Any) -> None:
    """Run a half-precision VitsModel's duration predictor in fp32, and its durations too.

    Two things break in half precision, both measured on an H200 with an MMS-size model:

    - the stochastic duration predictor's rational-quadratic spline computes a discriminant
      ``b² - 4ac`` that rounds below zero in fp16 and transformers then raises "Discriminant has
      negative values" for the whole batch;
    - the frame alignment is built from ``cumsum(durations)`` and ``arange(frames)`` in the
      durations' dtype, and fp16 counts exactly only up to 2,048 frames (33 s of 16 kHz audio).

    The predictor is a small part of the compute (the HiFi-GAN decoder dominates), so it runs in
    fp32: its inputs are cast up by a forward pre-hook, and its fp32 output makes the durations,
    their running sum and the alignment indices fp32 as well.

    Args:
        model: A ``VitsModel`` already cast to fp16 or bf16; changed in place.
    """
    import torch

    predictor = model.duration_predictor
    predictor.float()

    def cast_up(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        def up(value: Any) -> Any:
            return value.float() if torch.is_tensor(value) and value.is_floating_point() else value

        return tuple(up(a) for a in args), {k: up(v) for k, v in kwargs.items()}

    predictor.register_forward_pre_hook(cast_up, with_kwargs=True)


@dataclass
class HfVitsBackend:
    """A ``VitsModel`` with its tokenizer."""

    model: Any
    tokenizer: Any
    device: Any
    sample_rate: int
    pad_id: int

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        gpu_id: int | None = None,
        threads: int = 0,
        precision: str = "fp16",
    ) -> HfVitsBackend:
        """Load from a directory written by ``save_pretrained`` (model and tokenizer).

        Args:
            model_dir: The ``save_pretrained`` directory.
            gpu_id: CUDA device, or ``None`` for the CPU.
            threads: torch intra-op threads on the CPU (0: torch's default).
            precision: ``fp32``, ``fp16`` or ``bf16`` on a GPU (ignored on the CPU).

        Raises:
            ValueError: An unknown precision.
        """
        import torch

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if threads > 0:
            torch.set_num_threads(threads)
        from transformers import AutoTokenizer, VitsModel

        device = select_device(gpu_id)
        dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        dtype = dtypes[precision] if device.type == "cuda" else torch.float32
        model = VitsModel.from_pretrained(str(model_dir), local_files_only=True, dtype=dtype)
        model.to(device).eval()
        if dtype != torch.float32:
            keep_durations_in_fp32(model)
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        logger.info("loaded transformers VITS voice %s on %s (%s)", model_dir, device, dtype)
        return cls(model, tokenizer, device, int(model.config.sampling_rate), int(pad_id))

    def prepare(self, text: str) -> list[list[int]]:
        """Tokenize; the whole chunk is one sequence (the caller already split sentences)."""
        ids = self.tokenizer(text)["input_ids"]
        return [list(ids)] if ids else []

    def infer(self, batch: list[list[int]], params: VoiceParams) -> list[np.ndarray]:
        """One padded forward pass; ``sequence_lengths`` trims each waveform."""
        return [wave for wave, _ in self.infer_timed(batch, params)]

    def infer_timed(
        self, batch: list[list[int]], params: VoiceParams
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """As :meth:`infer`, with each item's samples per input id.

        ``VitsModel`` returns no durations, so the duration predictor's output (log durations)
        is caught with a forward hook and turned into frames exactly as the model does it
        (``ceil(exp(log_duration) * mask / speaking_rate)``, transformers'
        ``VitsModel.forward``), times the decoder's upsampling (samples per frame).
        """
        import torch

        ids, lengths = pad_batch(batch, self.pad_id)
        input_ids = torch.from_numpy(ids).to(self.device)
        mask = (torch.arange(ids.shape[1])[None, :] < torch.from_numpy(lengths)[:, None]).to(
            self.device
        )
        cfg = self.model.config
        self.model.noise_scale = (
            cfg.noise_scale if params.noise_scale is None else params.noise_scale
        )
        self.model.noise_scale_duration = (
            cfg.noise_scale_duration if params.noise_w is None else params.noise_w
        )
        caught: list[Any] = []
        hook = self.model.duration_predictor.register_forward_hook(
            lambda _m, _a, output: caught.append(output)
        )
        rate = cfg.speaking_rate * params.speed
        try:
            with torch.inference_mode():
                out = self.model(
                    input_ids=input_ids, attention_mask=mask.long(), speaking_rate=rate
                )
        finally:
            hook.remove()
        wave = out.waveform.float().cpu().numpy()
        seq = out.sequence_lengths.cpu().numpy()
        frames = torch.ceil(torch.exp(caught[-1].float()) * mask[:, None, :].float() / rate)
        hop = int(np.prod(cfg.upsample_rates))
        samples = (frames[:, 0, :].cpu().numpy().astype(np.int64)) * hop
        return [
            (wave[i, : int(seq[i])].astype(np.float32), samples[i, : len(batch[i])])
            for i in range(len(batch))
        ]

    def _special_ids(self) -> tuple[frozenset[int], frozenset[int]]:
        """The space ids (word separators) and the ids that are never speech (punctuation)."""
        vocab: dict[str, int] = self.tokenizer.get_vocab()
        spaces = frozenset(i for tok, i in vocab.items() if tok.isspace() or tok == "|")
        silent = (
            frozenset(i for tok, i in vocab.items() if tok and not any(ch.isalnum() for ch in tok))
            - spaces
        )
        return spaces, silent

    def groups(self, ids: list[int], id_samples: np.ndarray, offset: int) -> list[Group]:
        """The word groups of one input (characters between spaces; the blank between
        characters is padding)."""
        spaces, silent = self._special_ids()
        return groups_of(
            ids,
            id_samples,
            separators=spaces,
            silent=silent - {self.pad_id},
            padding=frozenset({self.pad_id}),
            offset=offset,
        )

    def word_lengths(self, words: list[str]) -> list[int]:
        """Each word's count of speech characters as the tokenizer keeps them."""
        spaces, silent = self._special_ids()
        skip = spaces | silent | {self.pad_id}
        return [
            sum(1 for i in self.tokenizer(word)["input_ids"] if i not in skip) for word in words
        ]
