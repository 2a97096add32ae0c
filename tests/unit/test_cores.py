"""Threads per model call: every core for a call alone on the machine, one beside other calls."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest

from handlers.backends.base import VoiceParams
from handlers.backends.piper_onnx import PiperOnnxBackend
from handlers.cores import CoreShare
from handlers.local_context import LocalContext
from handlers.voices import VoiceError, load_backend
from handlers.voxmill_handler import VoxmillHandler
from synthesis.inprocess import extract_mar


def test_a_call_alone_gets_every_core(tmp_path: Path) -> None:
    share = CoreShare(cores=4, directory=tmp_path)
    with share.claim() as threads:
        assert threads == 4
        assert share.running() == 1
    assert share.running() == 0


def test_a_call_beside_another_in_the_same_process_gets_one_thread(tmp_path: Path) -> None:
    share = CoreShare(cores=2, directory=tmp_path)
    inside = threading.Event()
    leave = threading.Event()
    seen: list[int] = []

    def other_call() -> None:
        with share.claim() as threads:
            seen.append(threads)
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other_call)
    thread.start()
    try:
        assert inside.wait(10)
        with share.claim() as threads:
            assert threads == 1
            assert share.running() == 2
    finally:
        leave.set()
        thread.join()
    assert seen == [2]


def _hold(directory: str, started: multiprocessing.synchronize.Event, leave: object) -> None:
    share = CoreShare(cores=2, directory=Path(directory))
    with share.claim():
        started.set()
        leave.wait(10)  # type: ignore[attr-defined]


def test_a_call_in_another_process_counts(tmp_path: Path) -> None:
    # TorchServe's model workers are separate processes on the same cores.
    ctx = multiprocessing.get_context("spawn")
    started, leave = ctx.Event(), ctx.Event()
    child = ctx.Process(target=_hold, args=(str(tmp_path), started, leave))
    child.start()
    try:
        assert started.wait(60)
        with CoreShare(cores=2, directory=tmp_path).claim() as threads:
            assert threads == 1
    finally:
        leave.set()
        child.join(30)
    with CoreShare(cores=2, directory=tmp_path, quiet_s=0).claim() as threads:
        assert threads == 2


def test_a_call_that_starts_while_another_caller_is_between_calls_gets_one_thread(
    tmp_path: Path,
) -> None:
    share = CoreShare(cores=2, directory=tmp_path, quiet_s=60)
    with share.claim(), share.claim():
        pass  # two callers' calls just ended; under load each is about to send its next one
    with share.claim() as threads:
        assert threads == 1
    with CoreShare(cores=2, directory=tmp_path, quiet_s=0).claim() as threads:
        assert threads == 2  # once the quiet time has passed, the machine is idle again


def test_one_caller_calling_again_and_again_keeps_every_core(tmp_path: Path) -> None:
    share = CoreShare(cores=2, directory=tmp_path, quiet_s=60)
    for _ in range(3):
        with share.claim() as threads:
            assert threads == 2


def test_threads_must_be_a_number_or_adaptive(tmp_path: Path) -> None:
    (tmp_path / "voice.json").write_text('{"family": "piper", "model": "m", "config": "c"}')
    with pytest.raises(VoiceError, match="adaptive"):
        load_backend(tmp_path, threads="many")


def test_an_adaptive_voice_speaks_the_same_audio_alone_and_beside_another_call(
    joe_mar: Path, tmp_path: Path
) -> None:
    model_dir = tmp_path / "joe"
    config = extract_mar(joe_mar, model_dir)
    assert config["handler"]["threads"] == "adaptive"  # the shipped CPU profile
    handler = VoxmillHandler()
    handler.initialize(LocalContext(model_dir, config))
    assert handler.service is not None
    backend = handler.service.backend
    assert isinstance(backend, PiperOnnxBackend)
    assert backend.share is not None
    assert sorted(backend.sessions) == sorted({1, backend.share.cores})
    backend.share = CoreShare(cores=2, directory=tmp_path / "slots")
    backend.sessions = {1: backend.sessions[1], 2: backend.sessions[max(backend.sessions)]}
    params = VoiceParams(noise_scale=0.0, noise_w=0.0)
    ids = backend.prepare("The quick brown fox jumps over the lazy dog.")
    (alone,) = backend.infer(ids[:1], params)
    with backend.share.claim():  # another call holds a slot: this one runs on one thread
        (beside,) = backend.infer(ids[:1], params)
    assert len(alone) == len(beside) > 22050
    assert np.max(np.abs(alone - beside)) < 1e-3
