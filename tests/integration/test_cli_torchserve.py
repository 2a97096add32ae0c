"""``voxmill synth`` against a running TorchServe, and the same audio as in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.integration


def synth(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "synth", "Same audio in both modes.", "-o", str(out)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_synth_through_torchserve_matches_in_process(torchserve: object, tmp_path: Path) -> None:
    remote, local = tmp_path / "remote.wav", tmp_path / "local.wav"
    done = synth(
        remote,
        VOXMILL_TORCHSERVE_URL=torchserve.inference_url,  # type: ignore[attr-defined]
        VOXMILL_TORCHSERVE_KEY_FILE=str(torchserve.key_file),  # type: ignore[attr-defined]
    )
    assert done.returncode == 0, done.stderr
    assert synth(local, VOXMILL_DATA_DIR=str(tmp_path)).returncode == 0
    a, rate_a = sf.read(str(remote), dtype="int16")
    b, rate_b = sf.read(str(local), dtype="int16")
    assert rate_a == rate_b == 22050
    # Default noise is random, so the audio differs sample by sample; the length may
    # differ by the stochastic durations too, but stays close.
    assert abs(len(a) - len(b)) < 0.25 * len(b)
    assert np.abs(a).max() > 5000


def test_wrong_token_is_a_one_line_error(torchserve: object, tmp_path: Path) -> None:
    done = synth(
        tmp_path / "x.wav",
        VOXMILL_TORCHSERVE_URL=torchserve.inference_url,  # type: ignore[attr-defined]
        VOXMILL_TORCHSERVE_TOKEN="not-the-token",
    )
    assert done.returncode != 0
    assert "token" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_both_modes_give_identical_audio_without_noise(torchserve: object, tmp_path: Path) -> None:
    from contract.messages import SynthesisParams
    from contract.settings import Settings
    from synthesis.inprocess import InProcessSynthesizer
    from synthesis.torchserve import TorchServeSynthesizer

    settings = Settings(
        torchserve_url=torchserve.inference_url,  # type: ignore[attr-defined]
        torchserve_key_file=torchserve.key_file,  # type: ignore[attr-defined]
    )
    params = SynthesisParams(noise_scale=0.0, noise_w=0.0)
    text = "Embedded and distributed modes must sound the same."
    remote_synth = TorchServeSynthesizer(settings)
    local_synth = InProcessSynthesizer(Path("model-store"), tmp_path)
    remote = remote_synth.synthesize("joe", text, params)
    local = local_synth.synthesize("joe", text, params)
    assert remote.sample_rate == local.sample_rate
    assert np.array_equal(remote.samples, local.samples)
    # What a conversion stores: the handler's FLAC, byte for byte the same in both modes.
    stored_remote = remote_synth.synthesize_encoded("joe", text, params)
    stored_local = local_synth.synthesize_encoded("joe", text, params)
    assert stored_remote.data[:4] == b"fLaC"
    assert stored_remote == stored_local
    assert stored_remote.num_samples == len(remote.samples)
