"""A `transformers` VITS voice of MMS-TTS size with random weights, written with save_pretrained.

The model hub is out of reach, so the benchmark cannot download ``facebook/mms-tts-eng``. A
``VitsConfig()`` with its defaults *is* that model's architecture (36 M parameters: hidden size
192, 6 text-encoder layers, the HiFi-GAN decoder with upsample rates 8-8-2-2 at 16 kHz), so a
randomly initialised one costs the same compute per input token and per output frame. What random
weights do not give is realistic durations, and the decoder's work grows with the audio length. So
:func:`write_voice` measures how many characters per second the untrained duration predictor
speaks and stores the ``speaking_rate`` that brings it to a narrator's pace (14 characters per
second, about 170 words per minute): a sentence then yields as many audio seconds, and as much
decoder work, as a trained voice gives it.
"""

from __future__ import annotations

import json
from pathlib import Path

# The characters of the MMS English tokenizer (lower-case letters, space, a few marks).
SYMBOLS = ["<pad>", *" abcdefghijklmnopqrstuvwxyz'.,?!-"]
TARGET_CHARS_PER_S = 14.0
_CALIBRATION = (
    "it was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief."
)


# A toy size for rehearsing the benchmark on a machine without a GPU (seconds, not minutes).
TINY = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "ffn_dim": 32,
    "flow_size": 16,
    "spectrogram_bins": 33,
    "upsample_initial_channel": 16,
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3]],
    "prior_encoder_num_flows": 1,
    "prior_encoder_num_wavenet_layers": 1,
    "duration_predictor_num_flows": 1,
    "duration_predictor_filter_channels": 16,
    "posterior_encoder_num_wavenet_layers": 1,
    "depth_separable_num_layers": 1,
}


def write_voice(folder: Path, *, seed: int = 0, device: str = "cpu", tiny: bool = False) -> float:
    """Write an MMS-size random VitsModel and its tokenizer into ``folder``.

    Args:
        folder: Created if missing; gets ``config.json``, ``model.safetensors``, ``vocab.json``
            and the tokenizer files.
        seed: torch seed for the random weights.
        device: Where to run the calibration pass (``cuda`` on the GPU machine).
        tiny: A toy model instead of the MMS size (rehearsals without a GPU).

    Returns:
        The stored ``speaking_rate`` (1.0 would be the untrained predictor's own pace).
    """
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(SYMBOLS)}))
    tokenizer = transformers.VitsTokenizer(
        str(folder / "vocab.json"), phonemize=False, pad_token="<pad>", unk_token="<pad>"
    )
    config = transformers.VitsConfig(vocab_size=len(SYMBOLS), **(TINY if tiny else {}))
    torch.manual_seed(seed)
    model = transformers.VitsModel(config).to(device).eval()
    # The duration predictor is stochastic: measure the pace at the default noise, averaged.
    ids = torch.tensor([tokenizer(_CALIBRATION)["input_ids"]] * 4, device=device)
    with torch.inference_mode():
        samples = float(model(input_ids=ids).sequence_lengths.float().mean())
    chars_per_s = len(_CALIBRATION) / (samples / config.sampling_rate)
    model.config.speaking_rate = TARGET_CHARS_PER_S / chars_per_s
    model.to("cpu").save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return float(model.config.speaking_rate)
