"""process_task: one task in, one result out, with retries for transient failures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from audio.codecs import encode
from contract.messages import ResultMessage, SynthesisParams, TaskMessage
from contract.retry import Backoff, RetryPolicy
from synthesis.base import (
    Audio,
    EncodedAudio,
    PermanentSynthesisError,
    TransientSynthesisError,
    UnknownVoiceError,
)
from worker.task import RetryAbandoned, process_task

RATE = 22050


def tone(seconds: float = 0.5) -> Audio:
    t = np.arange(int(RATE * seconds)) / RATE
    return Audio(samples=(8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16), sample_rate=RATE)


class ScriptedSynth:
    """Raises the scripted errors in order, then returns the audio."""

    def __init__(self, *outcomes: Exception | Audio) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[str, str, SynthesisParams | None]] = []

    def synthesize_encoded(
        self, voice: str, text: str, params: SynthesisParams | None = None, *, fmt: str = "flac"
    ) -> EncodedAudio:
        self.calls.append((voice, text, params))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        data = encode(outcome.samples, outcome.sample_rate, fmt) if len(outcome.samples) else b""
        return EncodedAudio(data, fmt, outcome.sample_rate, len(outcome.samples))

    def voices(self) -> list[str]:
        return ["joe"]


def task() -> TaskMessage:
    return TaskMessage(
        task_id="t-1",
        project_id=7,
        segment_id=42,
        voice="joe",
        text="Hello there.",
        params=SynthesisParams(speed=1.2),
    )


def policy(retries: int, backoff: float = 0.0) -> RetryPolicy:
    return RetryPolicy(synthesis_attempts=retries + 1, synthesis_backoff=Backoff(backoff, 30.0))


def decode(result: ResultMessage) -> tuple[np.ndarray, int]:
    assert result.audio is not None
    data, rate = sf.read(io.BytesIO(result.audio), dtype="int16")
    return data, rate


def test_success_passes_the_voice_flac_on_with_its_metadata() -> None:
    audio = tone(0.5)
    synth = ScriptedSynth(audio)

    result = process_task(task(), synth, policy=policy(3, 0.0), worker="w-1")

    assert result.status == "done"
    assert (result.task_id, result.segment_id, result.project_id) == ("t-1", 42, 7)
    assert result.sample_rate == RATE
    assert result.num_samples == len(audio.samples)
    assert result.duration_ms == 500
    assert result.audio == encode(audio.samples, RATE, "flac"), "the handler's bytes, untouched"
    assert result.worker == "w-1"
    assert result.error is None
    samples, rate = decode(result)
    assert rate == RATE
    np.testing.assert_array_equal(samples, audio.samples)
    assert synth.calls == [("joe", "Hello there.", SynthesisParams(speed=1.2))]


def test_default_worker_name_is_host_and_pid() -> None:
    import os

    result = process_task(task(), ScriptedSynth(tone()), policy=policy(0, 0.0))
    assert result.worker.endswith(f"-{os.getpid()}")


def test_transient_then_success_retries_with_growing_backoff() -> None:
    synth = ScriptedSynth(
        TransientSynthesisError("HTTP 503"), TransientSynthesisError("timed out"), tone()
    )
    sleeps: list[float] = []

    result = process_task(task(), synth, policy=policy(3, 1.0), sleep=sleeps.append)

    assert result.status == "done"
    assert len(synth.calls) == 3
    # Jittered exponential back-off: attempt n waits between half and all of base * 2**n.
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0


def test_permanent_error_fails_at_once_with_the_error() -> None:
    synth = ScriptedSynth(PermanentSynthesisError("text has no speakable characters"))
    sleeps: list[float] = []

    result = process_task(task(), synth, policy=policy(3, 1.0), sleep=sleeps.append)

    assert result.status == "failed"
    assert result.error == "text has no speakable characters"
    assert result.audio is None
    assert len(synth.calls) == 1
    assert sleeps == []


def test_unknown_voice_is_permanent() -> None:
    result = process_task(
        task(), ScriptedSynth(UnknownVoiceError("voice 'zed' is not served")), policy=policy(3, 0)
    )
    assert result.status == "failed"
    assert "zed" in (result.error or "")


def test_retries_exhausted_fail_with_the_last_error() -> None:
    synth = ScriptedSynth(TransientSynthesisError("HTTP 503: no worker"))
    sleeps: list[float] = []

    result = process_task(task(), synth, policy=policy(2, 0.01), sleep=sleeps.append)

    assert result.status == "failed"
    assert result.error == "HTTP 503: no worker (gave up after 3 attempts)"
    assert len(synth.calls) == 3
    assert len(sleeps) == 2


def test_retries_exhausted_can_reraise_for_requeueing() -> None:
    synth = ScriptedSynth(TransientSynthesisError("connection reset"))

    with pytest.raises(TransientSynthesisError, match="connection reset"):
        process_task(
            task(), synth, policy=policy(1, 0.0), give_up_on_transient=False, sleep=lambda _: None
        )
    assert len(synth.calls) == 2


def test_unexpected_exception_is_retried_then_reported() -> None:
    synth = ScriptedSynth(ValueError("boom"), tone())
    assert process_task(task(), synth, policy=policy(1, 0.0)).status == "done"

    result = process_task(task(), ScriptedSynth(ValueError("boom")), policy=policy(1, 0.0))
    assert result.status == "failed"
    assert "ValueError: boom" in (result.error or "")


def test_empty_audio_is_a_failure() -> None:
    empty = Audio(samples=np.zeros(0, dtype=np.int16), sample_rate=RATE)
    result = process_task(task(), ScriptedSynth(empty), policy=policy(0, 0.0))
    assert result.status == "failed"
    assert "no audio" in (result.error or "")


def test_result_round_trips_the_wire_format() -> None:
    result = process_task(task(), ScriptedSynth(tone(0.1)), policy=policy(0, 0.0))
    wire = result.to_wire()
    assert wire.body == result.audio and wire.content_type == "audio/flac"
    again = ResultMessage.from_wire(wire.body, wire.headers)
    assert again == result


def test_an_abandoned_retry_passes_through() -> None:
    def stopping(_delay: float) -> None:
        raise RetryAbandoned

    synth = ScriptedSynth(TransientSynthesisError("HTTP 503"))
    with pytest.raises(RetryAbandoned):
        process_task(task(), synth, policy=policy(3, 1.0), sleep=stopping)
    assert len(synth.calls) == 1
