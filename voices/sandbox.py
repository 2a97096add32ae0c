"""Try an uploaded voice in a separate, limited process before it is archived.

The voice is loaded with the same handler code TorchServe runs (:mod:`handlers`), asked to speak
the sample text, and judged on the result: the sample rate must be a usual one and the audio must
not be silent. Loading a model is the riskiest thing an upload can make us do, so it happens in a
child process with a wall-clock timeout, address-space, CPU-time, file-size and open-file limits,
offline Hugging Face settings and a bare environment; whatever goes wrong there becomes an
:class:`~voices.unpack.UploadError`, never a crash of the API.

Run as ``python -m voices.sandbox VOICE_DIR OUT_WAV`` with the sample text on stdin; it prints one
JSON line: ``{"sample_rate", "samples", "rms", "peak"}`` or ``{"error"}``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from contract.limits import VOICE_VALIDATE_MEMORY_MB, VOICE_VALIDATE_TIMEOUT_S
from voices.unpack import UploadError

log = logging.getLogger(__name__)

SAMPLE_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)
# RMS of int16 audio below this is silence (about -60 dBFS).
SILENCE_RMS = 33.0
_MAX_OUTPUT_BYTES = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """What the validation process may use."""

    timeout_s: float = VOICE_VALIDATE_TIMEOUT_S
    memory_mb: int = VOICE_VALIDATE_MEMORY_MB
    cpu_s: int = 600
    file_mb: int = 256
    open_files: int = 512


@dataclass(frozen=True)
class SampleReport:
    """What the voice produced for the sample text."""

    sample_rate: int
    samples: int
    rms: float
    peak: int

    @property
    def duration_ms(self) -> int:
        """Length of the sample in milliseconds."""
        return round(1000 * self.samples / self.sample_rate)


def _apply_limits(limits: Limits) -> None:  # pragma: no cover - runs in the child
    """Limit this process (the child calls it first thing, before importing any model code).

    Set by the child on itself rather than with ``preexec_fn``, which is unsafe in the API's
    multi-threaded process.
    """
    import resource

    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    size = limits.file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child_env(work: Path) -> dict[str, str]:
    """A bare environment: no credentials, no proxies, the Hugging Face hub switched off."""
    keep = ("PATH", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "LD_LIBRARY_PATH")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        HOME=str(work),
        TMPDIR=str(work),
        HF_HOME=str(work / "hf-home"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        OMP_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def validate_voice(
    voice_dir: Path, sample_text: str, out_flac: Path, limits: Limits
) -> SampleReport:
    """Load the staged voice in a limited child process and check what it says.

    Args:
        voice_dir: A staged voice (``voice.json`` and its files, see :mod:`handlers.voices`).
        sample_text: What the voice must say.
        out_flac: Where the child writes the sample: the FLAC file the voice's handler encoded
            (what is stored and played back).
        limits: The child's limits.

    Returns:
        The sample's report (the FLAC is at ``out_flac``).

    Raises:
        UploadError: The voice did not load, crashed, ran out of time or memory, produced silence
            or an unusual sample rate.
    """
    work = out_flac.parent
    command = [
        sys.executable,
        "-m",
        "voices.sandbox",
        str(voice_dir),
        str(out_flac),
        json.dumps(limits.__dict__),
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=work,
        env=_child_env(work),
        start_new_session=True,  # its own process group, killed whole on a timeout
    )
    try:
        stdout, stderr = process.communicate(sample_text.encode(), timeout=limits.timeout_s)
    except subprocess.TimeoutExpired as e:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise UploadError(
            f"the voice did not finish speaking the sample within {limits.timeout_s:.0f} s"
        ) from e
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    lines = done.stdout[-_MAX_OUTPUT_BYTES:].decode(errors="replace").strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        report = {}
    if done.returncode != 0 or "error" in report or not report:
        reason = report.get("error") or _crash_reason(done.returncode, done.stderr)
        log.info("voice validation failed: %s", reason)
        raise UploadError(f"the voice could not be loaded or did not speak: {reason}")
    result = SampleReport(
        sample_rate=int(report["sample_rate"]),
        samples=int(report["samples"]),
        rms=float(report["rms"]),
        peak=int(report["peak"]),
    )
    if result.sample_rate not in SAMPLE_RATES:
        raise UploadError(
            f"the voice speaks at {result.sample_rate} Hz; expected one of {SAMPLE_RATES}"
        )
    if result.samples == 0 or result.rms < SILENCE_RMS:
        raise UploadError(
            "the voice produced silence for the sample text: check that the weights were saved "
            "after training and that the sample text is in the voice's language"
        )
    return result


def _crash_reason(code: int, stderr: bytes) -> str:
    tail = stderr[-2000:].decode(errors="replace").strip().splitlines()
    last = tail[-1] if tail else ""
    if code < 0:
        return f"the loader was killed by signal {-code} (over the memory or CPU limit?) {last}"
    if "MemoryError" in last or "std::bad_alloc" in last:
        return "the loader ran out of memory (VOXMILL_VOICE_VALIDATE_MEMORY_MB)"
    return last or f"exit status {code}"


def _main(argv: list[str]) -> int:  # pragma: no cover - exercised through validate_voice
    _apply_limits(Limits(**json.loads(argv[2])))
    import numpy as np

    from audio.codecs import decode
    from handlers.local_context import LocalContext
    from handlers.voxmill_handler import SAMPLE_RATE_HEADER, VoxmillHandler

    voice_dir, out_flac = Path(argv[0]), Path(argv[1])
    text = sys.stdin.read()
    try:
        handler = VoxmillHandler()
        handler.initialize(LocalContext(voice_dir, {"handler": {"threads": 1}}))
        # The handler's own life cycle and encoder, as TorchServe will run it.
        context = LocalContext(voice_dir)
        (data,) = handler.handle([{"body": {"text": text, "format": "flac"}}], context)
        if context.status(0) != 200:
            raise ValueError(json.loads(data).get("error", "the handler refused the sample"))
        rate = int(context.headers[0][SAMPLE_RATE_HEADER])
        samples, _ = decode(data)
    except Exception as e:  # report any failure of the untrusted model as data
        print(json.dumps({"error": f"{type(e).__name__}: {e}"[:500]}))
        return 0
    out_flac.write_bytes(data)
    wide = samples.astype(np.float64)
    report = {
        "sample_rate": int(rate),
        "samples": len(samples),
        "rms": float(np.sqrt(np.mean(wide**2))) if len(samples) else 0.0,
        "peak": int(np.abs(wide).max()) if len(samples) else 0,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig(level=logging.WARNING)
    raise SystemExit(_main(sys.argv[1:]))
