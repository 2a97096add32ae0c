"""One segment task in, one result out: the worker's work, with no queue in sight."""

from __future__ import annotations

import base64
import io
import logging
import os
import socket
import time
from collections.abc import Callable

import soundfile as sf

from contract.messages import ResultMessage, TaskMessage
from messaging.types import backoff_delay
from synthesis.base import (
    Audio,
    PermanentSynthesisError,
    SynthesisError,
    Synthesizer,
    TransientSynthesisError,
)

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 30.0


def worker_name() -> str:
    """``hostname-pid``: which worker produced a result, for the logs and the UI."""
    return f"{socket.gethostname()}-{os.getpid()}"


def encode_flac(audio: Audio) -> bytes:
    """16-bit mono FLAC bytes of ``audio`` (lossless, about half the size of WAV)."""
    buffer = io.BytesIO()
    sf.write(buffer, audio.samples, audio.sample_rate, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def process_task(
    task: TaskMessage,
    synthesizer: Synthesizer,
    *,
    retries: int,
    backoff: float,
    give_up_on_transient: bool = True,
    worker: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ResultMessage:
    """Synthesize one segment and describe the outcome as a :class:`ResultMessage`.

    Transient failures (busy or restarting TorchServe, timeouts, dropped connections) are retried
    up to ``retries`` times with exponential back-off and jitter. Anything unexpected is treated as
    transient too: a crash that repeats still ends the segment ``failed`` once the attempts run out.

    Args:
        task: The segment task.
        synthesizer: Where the audio comes from.
        retries: Extra attempts after the first for transient failures.
        backoff: The first back-off delay in seconds; doubles per retry (capped at 30 s).
        give_up_on_transient: When the retries are spent on transient errors, return a ``failed``
            result (``True``) or re-raise the last error so the caller can requeue the task for
            another worker (``False``).
        worker: Name recorded in the result (default ``hostname-pid``).
        sleep: Injected for tests.

    Returns:
        ``done`` with base64 FLAC audio, or ``failed`` with the error a user can read.

    Raises:
        TransientSynthesisError: Only with ``give_up_on_transient=False``, after the retries.
    """
    started = time.monotonic()
    name = worker or worker_name()

    def result(**fields: object) -> ResultMessage:
        return ResultMessage.model_validate(
            {
                "task_id": task.task_id,
                "segment_id": task.segment_id,
                "project_id": task.project_id,
                "worker": name,
                "elapsed_ms": round(1000 * (time.monotonic() - started)),
                **fields,
            }
        )

    attempts = max(0, retries) + 1
    for attempt in range(attempts):
        try:
            audio = synthesizer.synthesize(task.voice, task.text, task.params)
        except PermanentSynthesisError as e:
            log.warning("task %s failed: %s", task.task_id, e)
            return result(status="failed", error=str(e))
        except Exception as e:
            error = e if isinstance(e, SynthesisError) else _unexpected(e)
            if attempt + 1 >= attempts:
                message = f"{error} (gave up after {attempts} attempts)"
                if not give_up_on_transient:
                    raise TransientSynthesisError(message) from e
                log.warning("task %s failed: %s", task.task_id, message)
                return result(status="failed", error=message)
            delay = backoff_delay(attempt, base=backoff, cap=BACKOFF_CAP_S)
            log.info("task %s: %s; retrying in %.1fs", task.task_id, error, delay)
            sleep(delay)
            continue
        if len(audio.samples) == 0:
            return result(status="failed", error="the voice produced no audio for this text")
        return result(
            status="done",
            audio=base64.b64encode(encode_flac(audio)).decode("ascii"),
            sample_rate=audio.sample_rate,
            duration_ms=audio.duration_ms,
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _unexpected(error: Exception) -> TransientSynthesisError:
    log.error("unexpected synthesis error", exc_info=error)
    return TransientSynthesisError(f"unexpected error: {type(error).__name__}: {error}")
