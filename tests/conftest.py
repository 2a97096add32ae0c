"""Fixtures shared by every test folder: the real joe voice and a real TorchServe."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_STORE = ROOT / "model-store"


def free_port_block(size: int = 5, start: int = 18080) -> int:
    """The first port of ``size`` consecutive free loopback ports at or above ``start``."""
    port = start + (os.getpid() % 200) * 10
    while port < 60000:
        try:
            for offset in range(size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            port += size
    raise RuntimeError("no free port block")


@pytest.fixture(scope="session")
def joe_mar() -> Path:
    """The built default voice archive (``make mar``); CI builds it before the suite."""
    mar = MODEL_STORE / "joe.mar"
    if not mar.is_file():
        pytest.fail("model-store/joe.mar is missing: run 'make mar' (make test does)")
    return mar


@pytest.fixture(scope="session")
def torchserve(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real TorchServe on loopback serving every archive in model-store/ (token auth on)."""
    from devtools.torchserve_local import LocalTorchServe, start, stop

    if shutil.which("java") is None:
        pytest.fail("java is not installed: TorchServe's frontend needs Java 17")
    port = free_port_block()
    target = LocalTorchServe(tmp_path_factory.mktemp("torchserve"), port, port + 1, port + 2)
    start(target, model_store=MODEL_STORE)
    try:
        yield target
    finally:
        stop(target)
