"""The fault suite: during a conversion, a voice-server outage (the stand-in server, and a real
TorchServe ``kill -9``-ed and started again with a new key), a Postgres restart and a ``kill -9``
of the API; after each, every segment is ``done`` exactly once with its audio, no task or result
is left in RabbitMQ and the dead-letter queue is empty. (A worker ``kill -9`` and a RabbitMQ
restart are in test_pipeline.py and test_pipeline_rabbitmq_restart.py.)

Each test prints how long the pipeline took to finish once the fault was over ("recovery"),
the figures in bench/README.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from sqlalchemy import create_engine, func, select

from api.models import Conversion, Segment, SegmentStatus
from contract.settings import Settings
from messaging.topology import topology_for

pytestmark = pytest.mark.integration

TIMEOUT = 180.0
SENTENCES = 30
ROOT = Path(__file__).resolve().parents[2]


def text(n: int = SENTENCES) -> str:
    return " ".join(f"Sentence number {i} keeps going." for i in range(n))


def start(http: httpx.Client, n: int = SENTENCES, document: str | None = None) -> dict[str, Any]:
    project = http.post("/v1/projects", json={"name": "faults"}).json()
    body = {"text": text(n) if document is None else document}
    response = http.post(f"/v1/projects/{project['id']}/documents", json=body)
    assert response.status_code == 201, response.text
    conversion: dict[str, Any] = http.post(f"/v1/projects/{project['id']}/conversions").json()
    return conversion


def finished(http: httpx.Client, conversion_id: int) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        try:
            body: dict[str, Any] = http.get(f"/v1/conversions/{conversion_id}").json()
        except (httpx.HTTPError, ValueError):
            return None  # the API is down or restarting
        return body if body.get("state") == "finished" else None

    return check


def assert_all_done_once(settings: Settings, conversion: dict[str, Any], n: int) -> None:
    """Every segment done with one stored audio, counted once; nothing left in RabbitMQ."""
    engine = create_engine(settings.database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as db:
            rows = db.execute(
                select(Segment.status, func.length(Segment.audio), Segment.num_samples).where(
                    Segment.project_id == conversion["project_id"]
                )
            ).all()
            counters = db.execute(
                select(Conversion.total, Conversion.done, Conversion.failed).where(
                    Conversion.id == conversion["id"]
                )
            ).one()
    finally:
        engine.dispose()
    assert len(rows) == n
    assert all(status == SegmentStatus.DONE and size and samples for status, size, samples in rows)
    # The counters move only when a result is applied: done == total means once per segment.
    assert tuple(counters) == (n, n, 0)
    topology = topology_for(settings)
    connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url))
    try:
        channel = connection.channel()
        for queue in (topology.tasks, topology.results, topology.tasks_dead, topology.results_dead):
            assert channel.queue_declare(queue, passive=True).method.message_count == 0, queue
    finally:
        connection.close()


def test_a_voice_server_down_for_15_s_delays_segments_and_fails_none(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.1
    api = start_api(pipeline_settings)
    worker = start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = start(http)
        wait_for(lambda: api.runtime.result_stats.applied >= 3, timeout=TIMEOUT, what="work")
        stub_torchserve.go_down()
        time.sleep(15)  # the fault itself: TorchServe is away for 15 s
        reached_while_down = stub_torchserve.count()
        stub_torchserve.come_back()
        back = time.monotonic()
        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")
        recovery = time.monotonic() - back
    worker.stop()
    print(f"\nrecovery after a 15 s TorchServe outage: {recovery:.1f} s")
    assert (progress["done"], progress["failed"]) == (SENTENCES, 0)
    log = Path(worker.log).read_text()
    assert "circuit breaker open" in log  # the worker stopped taking tasks meanwhile
    assert "circuit breaker closed" in log
    # Nothing was cycled through the server while it was down: the requests it got before the
    # outage plus the sentences left after it (and at most a worker's prefetch being redone).
    assert stub_torchserve.count() <= reached_while_down + SENTENCES
    assert_all_done_once(pipeline_settings, conversion, SENTENCES)


# Few sentences keep the real voice's share of the suite small; long enough that the voice is
# still speaking them when TorchServe is killed (the test checks that it was).
REAL_SENTENCES = 8


def real_text(n: int = REAL_SENTENCES) -> str:
    return " ".join(
        f"Sentence number {i} is long enough that the voice takes a moment to speak all of it, "
        "word after word, until the very end."
        for i in range(n)
    )


def test_kill_9_of_torchserve_and_a_new_key_mid_conversion_fail_no_segment(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    own_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    from devtools.torchserve_local import kill
    from devtools.torchserve_local import start as start_torchserve

    ts = own_torchserve
    old_key = ts.key()
    api = start_api(pipeline_settings)
    worker = start_worker(
        pipeline_settings,
        VOXMILL_TORCHSERVE_URL=ts.inference_url,
        VOXMILL_TORCHSERVE_KEY_FILE=str(ts.key_file),
        VOXMILL_TORCHSERVE_TIMEOUT_S="60",
    )
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = start(http, document=real_text())
        assert conversion["total"] == REAL_SENTENCES
        wait_for(lambda: api.runtime.result_stats.applied >= 1, timeout=TIMEOUT, what="work")
        kill(ts)  # the frontend and its model workers, mid-request
        time.sleep(15)  # the fault itself: TorchServe is away for 15 s
        during = http.get(f"/v1/conversions/{conversion['id']}").json()
        # The outage hit the conversion (else this test would prove nothing).
        assert during["state"] != "finished" and during["done"] < REAL_SENTENCES, during
        restarted = time.monotonic()
        start_torchserve(ts, model_store=ROOT / "model-store")  # returns once the voice is ready
        start_up = time.monotonic() - restarted
        assert ts.key() != old_key  # a restarted TorchServe 0.12 issues a new inference key
        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")
        recovery = time.monotonic() - restarted
    # Stopped before counting, so a task or result still unacknowledged would be back in its queue.
    worker.stop()
    api.stop()
    print(
        f"\nrecovery after kill -9 of TorchServe, 15 s down, restarted with a new key: "
        f"{recovery:.1f} s (its start-up {start_up:.1f} s included)"
    )
    assert (progress["done"], progress["failed"]) == (REAL_SENTENCES, 0)
    log = Path(worker.log).read_text()
    assert "circuit breaker open" in log  # the worker stopped taking tasks meanwhile
    assert f"re-read the TorchServe inference key from {ts.key_file}: it changed" in log
    assert "circuit breaker closed" in log
    assert_all_done_once(pipeline_settings, conversion, REAL_SENTENCES)


class ApiProcess:
    """``python -m api.main`` in the distributed mode: an API that can be ``kill -9``-ed."""

    def __init__(self, settings: Settings, port: int, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
        env.update(
            VOXMILL_MODE="distributed",
            VOXMILL_ENVIRONMENT="test",
            VOXMILL_DATABASE_URL=settings.database_url,
            VOXMILL_BROKER_URL=settings.broker_url,
            VOXMILL_QUEUE_PREFIX=settings.queue_prefix,
            VOXMILL_DELIVERY_LIMIT=str(settings.delivery_limit),
            VOXMILL_PREFETCH=str(settings.prefetch),
            VOXMILL_OUTBOX_POLL_S="0.2",
            VOXMILL_DATA_DIR=str(settings.data_dir),
            VOXMILL_MODEL_STORE=str(settings.model_store),
        )
        self.url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.main", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[list[ApiProcess]]:
    processes: list[ApiProcess] = []
    yield processes
    for process in processes:
        process.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kill_9_of_the_api_mid_conversion_loses_nothing(
    pipeline_settings: Settings,
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    api_processes: list[ApiProcess],
    tmp_path: Path,
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.1
    port = free_port()
    first = ApiProcess(pipeline_settings, port, tmp_path / "api-1.log")
    api_processes.append(first)
    wait_for(first.ready, timeout=60, what="the API")
    worker = start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    with httpx.Client(base_url=first.url, timeout=10) as http:
        conversion = start(http)
        wait_for(lambda: stub_torchserve.count() >= 5, timeout=TIMEOUT, what="work in flight")
        first.kill()  # results in its hands unacked, maybe an outbox batch half-published
        second = ApiProcess(pipeline_settings, port, tmp_path / "api-2.log")
        api_processes.append(second)
        back = time.monotonic()
        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")
        recovery = time.monotonic() - back
    worker.stop()
    second.stop()
    print(f"\nrecovery after kill -9 of the API (restart included): {recovery:.1f} s")
    assert (progress["done"], progress["failed"]) == (SENTENCES, 0)
    assert_all_done_once(pipeline_settings, conversion, SENTENCES)


def _pg_cluster() -> list[str]:
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        version, name, port, *_ = line.split()
        if port == "5432":
            return [version, name]
    pytest.fail("no Postgres cluster on port 5432 (pg_lsclusters)")


@pytest.mark.service_restart
def test_a_postgres_restart_mid_conversion_loses_nothing(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    cluster = _pg_cluster()
    stub_torchserve.delay_s = 0.1
    api = start_api(pipeline_settings)
    worker = start_worker(pipeline_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    with httpx.Client(base_url=api.url, timeout=10) as http:
        conversion = start(http)
        wait_for(lambda: api.runtime.result_stats.applied >= 3, timeout=TIMEOUT, what="work")
        ctl = ["pg_ctlcluster", "--skip-systemctl-redirect", *cluster]
        try:
            subprocess.run([*ctl, "stop", "-m", "fast"], check=True, timeout=60)
            # Results keep arriving and wait for the database; none may be dead-lettered.
            time.sleep(10)
        finally:
            subprocess.run([*ctl, "start"], check=True, timeout=60)
        back = time.monotonic()
        progress = wait_for(finished(http, conversion["id"]), timeout=TIMEOUT, what="the end")
        recovery = time.monotonic() - back
    worker.stop()
    print(f"\nrecovery after a 10 s Postgres outage: {recovery:.1f} s")
    assert (progress["done"], progress["failed"]) == (SENTENCES, 0)
    assert api.runtime.result_stats.applied == SENTENCES
    assert_all_done_once(pipeline_settings, conversion, SENTENCES)
