"""The ``voxmill`` command: synth in-process, and one-line errors with a non-zero exit."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]


def voxmill(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_synth_in_process_writes_a_wav(joe_mar: Path, tmp_path: Path) -> None:
    out = tmp_path / "hello.wav"
    done = voxmill(
        "synth", "Hello there. This is Voxmill.", "-o", str(out), VOXMILL_DATA_DIR=str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    info = sf.info(str(out))
    assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16"
    assert 1.0 < info.duration < 6.0


def test_synth_to_flac_by_suffix(joe_mar: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.flac"
    done = voxmill("synth", "Lossless.", "-o", str(out), VOXMILL_DATA_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert sf.info(str(out)).format == "FLAC"


@pytest.mark.parametrize(("extra", "container"), [([], "WAV"), (["--format", "flac"], "FLAC")])
def test_synth_dash_writes_the_audio_to_stdout_and_nothing_else(
    joe_mar: Path, tmp_path: Path, extra: list[str], container: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "synth", "Hello.", "-o", "-", *extra],
        cwd=tmp_path,
        env={
            **clean,
            "VOXMILL_DATA_DIR": str(tmp_path),
            "VOXMILL_MODEL_STORE": str(joe_mar.parent),
        },
        capture_output=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr
    info = sf.info(io.BytesIO(done.stdout))  # the whole of stdout is one audio file
    assert info.format == container and 0.3 < info.duration < 4.0
    assert not (tmp_path / "-").exists(), "no file named '-'"
    assert done.stderr.decode().startswith(f"wrote {container.lower()} to stdout: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth", "   ", "-o", "x.wav"], "no text given"),
        (["synth", "Hi.", "-o", "x.aiff"], "unsupported output format 'aiff'"),
        (["synth", "Hi.", "-o", "x.wav", "--voice", "nobody"], "unknown voice 'nobody'"),
        (["synth", "Hi.", "-o", "x.wav", "--speed", "9"], "--speed must be between"),
        (["synth", "x" * 2500, "-o", "x.wav"], "the limit is 2000"),
        (["build-mar", "--piper", "missing.onnx"], "--name is required"),
        (["build-mar", "--name", "v", "--piper", "missing.onnx"], "Piper model not found"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    joe_mar: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = voxmill(*args, cwd=tmp_path, VOXMILL_MODEL_STORE=str(ROOT / "model-store"))
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("command", "option"),
    [("api", "--mode"), ("worker", "--health-port"), ("migrate", "--url"), ("convert", "--voice")],
)
def test_service_commands_take_their_own_options(command: str, option: str) -> None:
    done = voxmill(command, "--help")
    assert done.returncode == 0, done.stderr
    assert option in done.stdout


def test_convert_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    done = voxmill("convert", str(tmp_path / "nope.md"), "-o", str(tmp_path / "x.wav"))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_normalize_prints_the_spoken_form() -> None:
    done = voxmill("normalize", "Dr. Smith paid $3.50 on 03/04/2025 for **Chapter IV**.")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "Doctor Smith paid three dollars and fifty cents on March fourth, twenty twenty five "
        "for Chapter four."
    )
    bad = voxmill("normalize", '<break time="soon"/>')
    assert bad.returncode == 2 and "line 1" in bad.stderr and "Traceback" not in bad.stderr


def test_normalize_applies_a_pls_lexicon(tmp_path: Path) -> None:
    from text_processing.lexicon import Entry, write_pls

    pls = tmp_path / "names.pls"
    pls.write_bytes(write_pls([Entry("Nguyen", alias="win")]))
    done = voxmill("normalize", "Nguyen won 3-2.", "--lexicon", str(pls))
    assert done.stdout.strip() == "win won three to two."
