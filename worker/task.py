"""One segment task in, one result out: the worker's work, with no queue in sight."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_not_exception_type

from contract.messages import ResultMessage, TaskMessage
from contract.retry import RetryPolicy
from synthesis.base import (
    EncodedAudio,
    PermanentSynthesisError,
    SynthesisError,
    Synthesizer,
    TransientSynthesisError,
    VoiceServerAuthError,
    VoiceServerUnavailable,
)
from worker.breaker import VoiceBreaker

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
    breaker: VoiceBreaker | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ResultMessage:
    """Synthesize one segment and describe the outcome as a :class:`ResultMessage`.

    Two kinds of transient failure, two limits (``contract.retry.RetryPolicy``):

    - The voice server is *unavailable* (refused connection, 502/503/504): the task waits for it,
      with back-off, for up to ``policy.synthesis_budget_s`` seconds, and completes when it comes
      back. With a ``breaker``, repeated outages open it: the task then waits for the breaker's
      probe to find the server again instead of calling it.
    - Any other transient failure of a server that answers (a handler crash, a read timeout,
      something unexpected) is retried up to ``policy.synthesis_attempts`` calls.

    A refused key (:class:`~synthesis.base.VoiceServerAuthError`) is the worker's problem: the
    breaker opens loudly and the task waits for a key that works, then is handed back
    (re-raised) if the budget passes first; it never becomes the segment's failure.

    Args:
        task: The segment task.
        synthesizer: Where the audio comes from.
        policy: The retry policy (see :mod:`contract.retry`).
        give_up_on_transient: When the attempts are spent on transient errors of a server that
            answers, return a ``failed`` result (``True``) or re-raise the last error so the
            caller can requeue the task for another worker (``False``). An unavailable server
            past the budget always gives a ``failed`` result.
        worker: Name recorded in the result (default ``hostname-pid``).
        sleep: Injected for tests; may raise :class:`RetryAbandoned` to stop retrying (a worker
            shutting down), which passes through.
        breaker: The worker's circuit breaker (``None``: no breaker, e.g. in-process voices).
        clock: Monotonic seconds (injected for tests).

    Returns:
        ``done`` with the FLAC audio, or ``failed`` with the error a user can read.

    Raises:
        TransientSynthesisError: Only with ``give_up_on_transient=False``, after the attempts.
        VoiceServerAuthError: The key was still refused when the budget ran out.
    """
    started = clock()
    name = worker or worker_name()
    budget = policy.synthesis_budget_s
    attempts = max(1, policy.synthesis_attempts)
    failed_attempts = 0  # failures of a server that answered (not outages)

    def result(**fields: object) -> ResultMessage:
        return ResultMessage.model_validate(
            {
                "task_id": task.task_id,
                "segment_id": task.segment_id,
                "project_id": task.project_id,
                "worker": name,
                "elapsed_ms": round(1000 * (clock() - started)),
                **fields,
            }
        )

    def remaining() -> float:
        return budget - (clock() - started)

    def attempt() -> EncodedAudio:
        if breaker is not None and breaker.is_open and not breaker.wait_closed(remaining()):
            if breaker.refused_key:
                raise VoiceServerAuthError(breaker.reason)
            raise _Waited(breaker.reason)
        try:
            audio = _synthesize(task, synthesizer)
        except VoiceServerUnavailable as e:
            if breaker is not None:
                breaker.record_unavailable(e)
            raise
        except VoiceServerAuthError as e:
            if breaker is not None:
                breaker.open(f"{e}", loud=True)
            raise
        if breaker is not None:
            breaker.record_success()
        return audio

    def outage(error: BaseException | None) -> bool:
        return isinstance(error, (VoiceServerUnavailable, VoiceServerAuthError, _Waited))

    def stop(state: RetryCallState) -> bool:
        nonlocal failed_attempts
        error = state.outcome.exception() if state.outcome else None
        if outage(error):
            return remaining() <= 0
        failed_attempts += 1
        return failed_attempts >= attempts

    def wait(state: RetryCallState) -> float:
        delay = policy.synthesis_backoff.wait(state)
        error = state.outcome.exception() if state.outcome else None
        if outage(error):
            # Never sleep past the budget; an open breaker makes the next attempt wait for it.
            return max(0.0, min(delay, remaining()))
        return delay

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log.info("task %s: %s; retrying in %.1fs", task.task_id, error, state.upcoming_sleep)

    retrying = Retrying(
        retry=retry_if_not_exception_type((PermanentSynthesisError, RetryAbandoned)),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        audio: EncodedAudio = retrying(attempt)
    except PermanentSynthesisError as e:
        log.warning("task %s failed: %s", task.task_id, e)
        return result(status="failed", error=str(e))
    except RetryAbandoned:
        raise
    except VoiceServerAuthError:
        raise
    except (VoiceServerUnavailable, _Waited) as e:
        message = _budget_spent(budget, str(e))
        log.warning("task %s failed: %s", task.task_id, message)
        return result(status="failed", error=message)
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


class _Waited(TransientSynthesisError):
    """The breaker stayed open for the rest of the task's budget."""


def _budget_spent(budget_s: float, error: str) -> str:
    return (
        f"the voice server stayed unavailable for {_duration(budget_s)} ({error}); "
        "resynthesize the segment once it is back"
    )


def _duration(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def _synthesize(task: TaskMessage, synthesizer: Synthesizer) -> EncodedAudio:
    return synthesizer.synthesize_encoded(
        task.voice, task.text, task.params, fmt=STORED_FORMAT, **task.voice_target()
    )


def _unexpected(error: Exception) -> TransientSynthesisError:
    log.error("unexpected synthesis error", exc_info=error)
    return TransientSynthesisError(f"unexpected error: {type(error).__name__}: {error}")
