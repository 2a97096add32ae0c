"""One segment task in, one result out: the worker's work, with no queue in sight."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_not_exception_type,
    stop_after_attempt,
)

from contract.messages import ResultMessage, TaskMessage
from contract.retry import RetryPolicy
from synthesis.base import (
    EncodedAudio,
    PermanentSynthesisError,
    SynthesisError,
    Synthesizer,
    TransientSynthesisError,
)

log = logging.getLogger(__name__)

# What the API stores: lossless, about half the size of WAV, encoded once by the voice handler.
STORED_FORMAT = "flac"


class RetryAbandoned(Exception):
    """Raised by the ``sleep`` of :func:`process_task` to stop retrying (the worker is stopping);
    it passes through :func:`process_task` to its caller."""


def worker_name() -> str:
    """``hostname-pid``: which worker produced a result, for the logs and the UI."""
    return f"{socket.gethostname()}-{os.getpid()}"


def process_task(
    task: TaskMessage,
    synthesizer: Synthesizer,
    *,
    policy: RetryPolicy,
    give_up_on_transient: bool = True,
    worker: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ResultMessage:
    """Synthesize one segment and describe the outcome as a :class:`ResultMessage`.

    Transient failures (busy or restarting TorchServe, timeouts, dropped connections) are retried
    up to ``policy.synthesis_attempts`` calls with ``policy.synthesis_backoff``. Anything unexpected
    is treated as transient too: a crash that repeats still ends the segment ``failed`` once the
    attempts run out. The audio is the voice handler's FLAC, passed on without decoding.

    Args:
        task: The segment task.
        synthesizer: Where the audio comes from.
        policy: The retry policy (see :mod:`contract.retry`).
        give_up_on_transient: When the attempts are spent on transient errors, return a ``failed``
            result (``True``) or re-raise the last error so the caller can requeue the task for
            another worker (``False``).
        worker: Name recorded in the result (default ``hostname-pid``).
        sleep: Injected for tests; may raise :class:`RetryAbandoned` to stop retrying (a worker
            shutting down), which passes through.

    Returns:
        ``done`` with the FLAC audio, or ``failed`` with the error a user can read.

    Raises:
        TransientSynthesisError: Only with ``give_up_on_transient=False``, after the attempts.
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

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info("task %s: %s; retrying in %.1fs", task.task_id, error, state.upcoming_sleep)

    attempts = max(1, policy.synthesis_attempts)
    retrying = Retrying(
        retry=retry_if_not_exception_type(PermanentSynthesisError),
        stop=stop_after_attempt(attempts),
        wait=policy.synthesis_backoff.wait,
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        audio: EncodedAudio = retrying(_synthesize, task, synthesizer)
    except PermanentSynthesisError as e:
        log.warning("task %s failed: %s", task.task_id, e)
        return result(status="failed", error=str(e))
    except RetryAbandoned:
        raise
    except Exception as e:
        error = e if isinstance(e, SynthesisError) else _unexpected(e)
        message = f"{error} (gave up after {attempts} attempts)"
        if not give_up_on_transient:
            raise TransientSynthesisError(message) from e
        log.warning("task %s failed: %s", task.task_id, message)
        return result(status="failed", error=message)
    if audio.num_samples == 0:
        return result(status="failed", error="the voice produced no audio for this text")
    return result(
        status="done",
        audio=audio.data,
        audio_format=audio.format,
        sample_rate=audio.sample_rate,
        num_samples=audio.num_samples,
        timings=audio.timings,
    )


def _synthesize(task: TaskMessage, synthesizer: Synthesizer) -> EncodedAudio:
    return synthesizer.synthesize_encoded(
        task.voice, task.text, task.params, fmt=STORED_FORMAT, **task.voice_target()
    )


def _unexpected(error: Exception) -> TransientSynthesisError:
    log.error("unexpected synthesis error", exc_info=error)
    return TransientSynthesisError(f"unexpected error: {type(error).__name__}: {error}")
