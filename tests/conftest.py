"""Fixtures shared by every test folder: the real joe voice and a real TorchServe."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODEL_STORE = ROOT / "model-store"

# Tests marked with this stop and start a service every test session on the machine shares
# (RabbitMQ, Postgres). They run after all other tests of their session, and the session takes
# the machine-wide test lock exclusively (see pytest_collection_finish).
SERVICE_RESTART = "service_restart"
SERVICE_LOCK = Path(os.environ.get("VOXMILL_TEST_LOCK", "/tmp/voxmill-test-services.lock"))
_LOCK_KEY = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{SERVICE_RESTART}: stops and starts a shared service (RabbitMQ, Postgres); runs last",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Restarting a shared service disturbs every test that talks to it at the time: run those
    # tests after all others (a stable sort keeps the rest in order).
    items.sort(key=lambda item: item.get_closest_marker(SERVICE_RESTART) is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Take the machine-wide lock on the shared services for the length of the session.

    Sessions that only use RabbitMQ and Postgres share it; a session that restarts one of them
    takes it alone, so two test sessions on one machine (two checkouts, say) never see each
    other's restarts. Unit-only sessions take no lock.
    """
    items = session.items
    if not any(i.get_closest_marker("integration") or i.get_closest_marker("e2e") for i in items):
        return
    exclusive = any(i.get_closest_marker(SERVICE_RESTART) for i in items)
    mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    handle = SERVICE_LOCK.open("a+")
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"waiting for another test session to release {SERVICE_LOCK}")
        fcntl.flock(handle, mode)
    session.config.stash[_LOCK_KEY] = handle


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


@contextlib.contextmanager
def _local_torchserve(workdir: Path) -> Iterator[object]:
    from devtools.torchserve_local import LocalTorchServe, start, stop

    if shutil.which("java") is None:
        pytest.fail("java is not installed: TorchServe's frontend needs Java 17")
    port = free_port_block()
    target = LocalTorchServe(workdir, port, port + 1, port + 2)
    start(target, model_store=MODEL_STORE)
    try:
        yield target
    finally:
        stop(target)


@pytest.fixture(scope="session")
def torchserve(joe_mar: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real TorchServe on loopback serving every archive in model-store/ (token auth on)."""
    with _local_torchserve(tmp_path_factory.mktemp("torchserve")) as target:
        yield target


@pytest.fixture
def own_torchserve(joe_mar: Path, tmp_path: Path) -> Iterator[object]:
    """Like ``torchserve``, but this test's alone: for a test that kills and restarts it
    (``devtools.torchserve_local.kill`` / ``start`` on the same workdir and ports)."""
    with _local_torchserve(tmp_path / "torchserve") as target:
        yield target
