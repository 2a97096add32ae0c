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
        with torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                attention_mask=mask.long(),
                speaking_rate=cfg.speaking_rate * params.speed,
            )
        wave = out.waveform.float().cpu().numpy()
        seq = out.sequence_lengths.cpu().numpy()
        return [wave[i, : int(seq[i])].astype(np.float32) for i in range(len(batch))]
