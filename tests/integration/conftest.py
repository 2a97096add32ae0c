"""Shared fixtures for integration tests against the real services on this machine.

RabbitMQ (127.0.0.1:5672, guest/guest): every test gets its own ``queue_prefix`` so tests never
see each other's messages (or anyone else's), and the prefix's queues and exchanges are deleted
afterwards. The RabbitMQ service itself is shared: never restart it from a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from contract.settings import Mode, Settings
from messaging.topology import delete_topology

BROKER_URL = os.environ.get("VOXMILL_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

WaitFor = Callable[..., Any]


def _wait_for(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition", interval=0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def wait_for() -> WaitFor:
    """``wait_for(condition, timeout=10, what="...")``: poll until truthy (returns the value)."""
    return _wait_for


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The broker URL, after checking that RabbitMQ answers (``make services`` starts it)."""
    try:
        pika.BlockingConnection(pika.URLParameters(BROKER_URL)).close()
    except pika.exceptions.AMQPError as e:
        pytest.fail(f"RabbitMQ is not reachable at {BROKER_URL} ({e!r}); run `make services`")
    return BROKER_URL


@pytest.fixture
def rabbit_settings(rabbitmq_url: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings for the distributed mode with a unique queue prefix; its topology is deleted after
    the test. Small limits and fast back-offs keep the tests quick. The model store and data
    directory are the test's own: an API writes the voice catalog of its database (which the
    session's tests share) into its model store, never into the repository's."""
    settings = Settings(
        mode=Mode.DISTRIBUTED,
        environment="test",
        data_dir=tmp_path / "data",
        model_store=tmp_path / "model-store",
        broker_url=rabbitmq_url,
        queue_prefix=f"test-{uuid.uuid4().hex[:12]}",
        delivery_limit=3,
        prefetch=2,
        heartbeat_s=5,
        blocked_timeout_s=10,
        task_retries=1,
        task_backoff_s=0.01,
    )
    yield settings
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        delete_topology(connection.channel(), settings)
    finally:
        connection.close()


@pytest.fixture
def amqp_channel(rabbitmq_url: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """A plain pika channel for a test to inspect queues with."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


def _rabbitmqctl(*args: str) -> str:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


@pytest.fixture(scope="session")
def rabbitmqctl() -> Callable[..., str]:
    """Run ``rabbitmqctl -q ARGS`` (needs root on these machines; skips the test otherwise)."""
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed")
    try:
        _rabbitmqctl("list_vhosts")
    except (subprocess.SubprocessError, OSError) as e:
        pytest.skip(f"rabbitmqctl is not usable here (root needed?): {e}")
    return _rabbitmqctl


@pytest.fixture
def queue_info(rabbitmqctl: Callable[..., str]) -> Callable[[str], dict[str, dict[str, Any]]]:
    """``queue_info(prefix)``: RabbitMQ's view of the queues whose names start with ``prefix``:
    ``{name: {"type", "durable", "arguments": {...}}}``.

    Message counts are left out on purpose: ``list_queues`` reports them for quorum queues only
    every few seconds. Count with a passive ``queue_declare`` instead (answered by the queue).
    """

    def info(prefix: str) -> dict[str, dict[str, Any]]:
        out = rabbitmqctl(
            "list_queues", "name", "type", "durable", "arguments", "--formatter", "json"
        )
        rows = {}
        for row in json.loads(out):
            if row["name"].startswith(prefix):
                row["arguments"] = {k: v for k, _type, v in row["arguments"]}
                rows[row["name"]] = row
        return rows

    return info


@pytest.fixture
def close_connections(rabbitmqctl: Callable[..., str]) -> Callable[[str], int]:
    """``close_connections(fragment)``: force-close (as a broker restart would) every connection
    whose ``connection_name`` contains ``fragment``; returns how many were closed."""

    def close(fragment: str) -> int:
        rows = rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
        pids = [line.split("\t", 1)[0] for line in rows.splitlines() if fragment in line]
        for pid in pids:
            rabbitmqctl("close_connection", pid, "closed by a Voxmill test")
        return len(pids)

    return close


# ---------------------------------------------------------------------------------------------
# The API and the conversion pipeline (api/): a Postgres database per test session, the API
# served by uvicorn in a thread, worker processes, and a stub TorchServe for tests that need to
# control timing or failures.

PG_ADMIN_URL = os.environ.get(
    "VOXMILL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@contextlib.contextmanager
def _fresh_database() -> Iterator[str]:
    """A new, migrated Postgres database, dropped on exit."""
    import psycopg

    from api.db import migrate

    name = f"voxmill_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    except psycopg.Error as e:
        pytest.fail(f"Postgres is not reachable at {PG_ADMIN_URL} ({e}); run `make services`")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh, migrated Postgres database for this test session (dropped afterwards)."""
    with _fresh_database() as url:
        yield url


@pytest.fixture
def own_database_url() -> Iterator[str]:
    """A database of this test alone: for tests that look at every row (the stuck sweep), where
    other tests' unfinished conversions in the session's database would count."""
    with _fresh_database() as url:
        yield url


@pytest.fixture
def pipeline_settings(rabbit_settings: Settings, pg_database_url: str) -> Settings:
    """Distributed-mode settings on the session's database and a unique queue prefix."""
    return rabbit_settings.model_copy(
        update={"database_url": pg_database_url, "outbox_poll_s": 0.2, "sse_heartbeat_s": 1.0}
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ApiServer:
    """The API app served by uvicorn in a thread (real HTTP, so SSE works as for a browser)."""

    def __init__(self, app: Any) -> None:
        import threading

        import uvicorn

        self.app = app
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, name="api-server", daemon=True)

    @property
    def runtime(self) -> Any:
        """The app's :class:`api.runtime.Runtime`."""
        return self.app.state.runtime

    def start(self, timeout: float = 30.0) -> ApiServer:
        self._thread.start()
        _wait_for(
            lambda: self._server.started or not self._thread.is_alive(),
            timeout=timeout,
            what="the API to start",
        )
        if not self._server.started:
            raise RuntimeError("the API failed to start (see the log above)")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)


@pytest.fixture
def start_api() -> Iterator[Callable[..., ApiServer]]:
    """``start_api(settings, **create_app_kwargs)``: a running API; stopped after the test."""
    from api.main import create_app

    servers: list[ApiServer] = []

    def start(settings: Settings, **kwargs: Any) -> ApiServer:
        server = ApiServer(create_app(settings, **kwargs))
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.stop()


class WorkerProcess:
    """A ``python -m worker.main`` process (the real worker, as ``voxmill worker`` runs it)."""

    def __init__(self, settings: Settings, log: str, **env: str) -> None:
        import sys

        variables = {
            "VOXMILL_MODE": "distributed",
            "VOXMILL_ENVIRONMENT": "test",
            "VOXMILL_BROKER_URL": settings.broker_url,
            "VOXMILL_QUEUE_PREFIX": settings.queue_prefix,
            "VOXMILL_DELIVERY_LIMIT": str(settings.delivery_limit),
            "VOXMILL_PREFETCH": str(settings.prefetch),
            "VOXMILL_HEARTBEAT_S": str(settings.heartbeat_s),
            "VOXMILL_TASK_RETRIES": str(settings.task_retries),
            "VOXMILL_TASK_BACKOFF_S": str(settings.task_backoff_s),
            **env,
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker.main", "--health-port", "0"],
                cwd=_REPO,
                env={**clean, **variables},
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no chance to settle anything (as a crashed node)."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(tmp_path: Any) -> Iterator[Callable[..., WorkerProcess]]:
    """``start_worker(settings, VOXMILL_TORCHSERVE_URL=..., ...)``: a worker process."""
    workers: list[WorkerProcess] = []

    def start(settings: Settings, **env: str) -> WorkerProcess:
        log = str(tmp_path / f"worker-{len(workers)}.log")
        worker = WorkerProcess(settings, log, **env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


class StubTorchServe:
    """A stand-in voice server: ``POST /predictions/<voice>`` answers a tone of 80 samples per
    character after ``delay_s``, in the format asked for and described by the handler's headers;
    text containing ``reject`` gets TorchServe's 400."""

    RATE = 22050

    def __init__(self, *, delay_s: float = 0.0, reject: str = "POISON") -> None:
        import threading
        from http.server import BaseHTTPRequestHandler

        stub = self
        self.delay_s = delay_s
        self.reject = reject
        self.requests: list[str] = []
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # TorchServe's health check, which a worker's circuit breaker probes.
                if self.path.split("?", 1)[0] == "/ping":
                    self._send(200, b'{"status": "Healthy"}')
                else:
                    self._send(404, b'{"code": 404, "message": "not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length))
                text, fmt = body.get("text", ""), body.get("format", "wav")
                with stub._lock:
                    stub.requests.append(text)
                time.sleep(stub.delay_s)
                if stub.reject and stub.reject in text:
                    self._send(400, b'{"error": "the text has nothing to speak", "code": 400}')
                    return
                described = {
                    "X-Sample-Rate": str(stub.RATE),
                    "X-Audio-Samples": str(stub.samples_for(text)),
                }
                self._send(200, stub.audio(text, fmt), f"audio/{fmt}", described)

            def _send(
                self,
                status: int,
                body: bytes,
                kind: str = "application/json",
                headers: dict[str, str] | None = None,
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the worker was killed mid-request: that is the point of some tests

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._handler = Handler
        self._serve(0)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _serve(self, port: int) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def go_down(self) -> None:
        """Stop listening, as a killed TorchServe: connections are refused until
        :meth:`come_back`."""
        self._port = int(self._server.server_address[1])
        self.close()

    def come_back(self) -> None:
        """Listen again on the same port, as a restarted TorchServe."""
        self._serve(self._port)

    @classmethod
    def samples_for(cls, text: str) -> int:
        return 80 * len(text)

    def audio(self, text: str, fmt: str = "wav") -> bytes:
        import numpy as np

        from audio.codecs import encode

        n = self.samples_for(text)
        tone = (6000 * np.sin(np.arange(n) * 2 * np.pi * 220 / self.RATE)).astype(np.int16)
        return encode(tone, self.RATE, fmt)

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def stub_torchserve() -> Iterator[StubTorchServe]:
    """A :class:`StubTorchServe` for this test."""
    stub = StubTorchServe()
    yield stub
    stub.close()
