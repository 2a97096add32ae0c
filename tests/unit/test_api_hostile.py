"""Hostile uploads against a real server (uvicorn on loopback, the embedded app): each gets an
answer within seconds while a parallel health-check loop never waits more than a second, and
the API process's memory stays flat (the documents are read in the pool's processes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import psutil
import pytest
import uvicorn
from test_api_routes import FakeVoice

from api.main import create_app
from contract.settings import Settings

# The 250-byte upload: a bracket of 24 three-digit numbers after a sentence's period,
# then a lower-case word, sent pysbd's numbered-reference regex into catastrophic backtracking.
BRACKET = " ".join(str(101 * i)[:3] for i in range(1, 25))
BACKTRACKING_TXT = (
    f"It is listed in the appendix.[{BRACKET}] and they were checked twice.\n".encode()
)
FIVE_MB = 5_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Watch:
    """A /healthz loop in a thread: the slowest answer and the process's peak RSS."""

    base_url: str
    slowest_s: float = 0.0
    failures: list[str] = field(default_factory=list)
    peak_rss: int = 0
    checks: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        me = psutil.Process()
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    client.get(f"{self.base_url}/healthz").raise_for_status()
                except httpx.HTTPError as e:
                    self.failures.append(repr(e))
                self.slowest_s = max(self.slowest_s, time.monotonic() - began)
                self.peak_rss = max(self.peak_rss, me.memory_info().rss)
                self.checks += 1
                self.stop.wait(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("hostile"), outbox_poll_s=0.05)
    app = create_app(settings, synthesizer=FakeVoice())
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield base
    uv.should_exit = True
    thread.join(timeout=30)


def _upload(base: str, project: int, name: str, data: bytes) -> tuple[int, str, float]:
    began = time.monotonic()
    with httpx.Client(timeout=120.0) as client:
        r = client.post(f"{base}/v1/projects/{project}/documents", files={"file": (name, data)})
    return r.status_code, r.text, time.monotonic() - began


@pytest.fixture
def watch(server: str) -> Iterator[Watch]:
    w = Watch(server)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    yield w
    # A fast answer may come before many checks ran: let a few more run before judging the loop.
    deadline = time.monotonic() + 10
    while w.checks <= 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    w.stop.set()
    thread.join(timeout=10)
    assert w.checks > 3
    assert not w.failures, w.failures
    # The bound a load balancer's health check would give it (2 s, as in the outage).
    assert w.slowest_s < 2.0, f"a health check waited {w.slowest_s:.2f} s"


def _project(base: str) -> int:
    return int(httpx.post(f"{base}/v1/projects", json={"name": "hostile"}).json()["id"])


def test_the_backtracking_upload_is_answered_at_once(server: str, watch: Watch) -> None:
    assert len(BACKTRACKING_TXT) <= 260
    status, body, took = _upload(server, _project(server), "appendix.txt", BACKTRACKING_TXT)
    assert status == 201, body
    assert took < 10, f"took {took:.1f} s"


def test_five_megabytes_of_emphasis_markers(server: str, watch: Watch) -> None:
    status, body, took = _upload(server, _project(server), "stars.md", (b"*a " * FIVE_MB)[:FIVE_MB])
    assert status == 413 and "line 1: a paragraph of" in body, body
    assert took < 10, f"took {took:.1f} s"
    # Half of the limit is read, not refused, and still within seconds.
    half = (b"*a " * FIVE_MB)[:250_000]
    status, body, took = _upload(server, _project(server), "stars.md", half)
    assert status == 201, body
    assert took < 30, f"took {took:.1f} s"


def test_four_parallel_uploads_of_five_megabytes_of_sentences(server: str, watch: Watch) -> None:
    project = _project(server)
    before = psutil.Process().memory_info().rss
    data = (b"Go. " * FIVE_MB)[:FIVE_MB]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: _upload(server, project, f"go{n}.txt", data), range(4)))
    for status, body, took in results:
        assert status == 413 and "line 1: a paragraph of" in body, body[:300]
        assert took < 10, f"took {took:.1f} s"
    # One sentence per line: refused by its line count at once.
    lines = (b"Go.\n" * FIVE_MB)[:FIVE_MB]
    status, body, took = _upload(server, project, "lines.txt", lines)
    assert status == 413 and "1250000 lines, over the limit" in body, body[:300]
    assert took < 10, f"took {took:.1f} s"
    # Within the line limit, the sentence limit is reached while splitting, not after.
    status, body, took = _upload(server, project, "more.txt", b"Go.\n" * 30_000)
    assert status == 413 and "more than 20000 sentences" in body, body[:300]
    assert took < 30, f"took {took:.1f} s"
    grown = (watch.peak_rss - before) / 2**20
    assert grown < 300, f"the API process grew by {grown:.0f} MB"
