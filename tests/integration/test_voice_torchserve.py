"""Voices as managed models against a real TorchServe with its management API on (token auth,
loopback, registration limited to its own model store), Postgres, RabbitMQ and a real worker.

One TorchServe and one API serve the whole module; the tests run in order and build on each other
(upload, v2, switch, roll back, conversions), as an operator would. TorchServe is never
restarted: its process is the same at the end as at the start.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
from voicekit import SAMPLE_TEXT, hostile_zip, joe_files, tiny_vits, wav_stats, zip_dir

from contract.settings import Mode, Settings

pytestmark = pytest.mark.integration

ADMIN = "admin-key-for-voices-0123456789"
USER = "user-key-for-voices-0123456789"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}
AS_USER = {"Authorization": f"Bearer {USER}"}
# Registering a voice loads its workers; on a busy 2-core machine that takes a while.
SLOW = 600.0


def _port_block(size: int = 5) -> int:
    port = 21000 + (os.getpid() % 300) * 10
    while port < 60000:
        try:
            for offset in range(size):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            port += size
    raise RuntimeError("no free port block")


@dataclass
class Stack:
    """The module's TorchServe, API and the settings both sides use."""

    ts: Any
    url: str
    settings: Settings
    store: Path

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        kwargs.setdefault("headers", AS_USER)
        kwargs.setdefault("timeout", SLOW)
        return httpx.request(method, self.url + path, **kwargs)

    def management(self, path: str) -> Any:
        headers = {"Authorization": f"Bearer {self.ts.key('management')}"}
        return httpx.get(self.ts.management_url + path, headers=headers, timeout=30).json()

    def predictions_log(self) -> str:
        log = self.ts.workdir / "logs" / "access_log.log"
        return log.read_text() if log.exists() else ""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, joe_mar: Path, pg_database_url: str, rabbitmq_url: str
) -> Iterator[Stack]:
    import uvicorn

    from api.main import create_app
    from devtools.torchserve_local import LocalTorchServe, start, stop
    from messaging.topology import delete_topology

    root = tmp_path_factory.mktemp("voices-ts")
    store = root / "model-store"
    store.mkdir()
    os.symlink(joe_mar, store / "joe.mar")
    port = _port_block()
    ts = LocalTorchServe(root / "ts", port, port + 1, port + 2)
    start(ts, model_store=store, timeout_s=SLOW)
    settings = Settings(
        mode=Mode.DISTRIBUTED,
        environment="test",
        database_url=pg_database_url,
        broker_url=rabbitmq_url,
        queue_prefix=f"test-voices-{uuid.uuid4().hex[:8]}",
        data_dir=root / "data",
        model_store=store,
        torchserve_url=ts.inference_url,
        torchserve_key_file=ts.key_file,
        torchserve_management_url=ts.management_url,
        torchserve_metrics_url=f"http://127.0.0.1:{ts.metrics_port}",
        api_keys=[USER, f"{ADMIN}:admin"],
        outbox_poll_s=0.2,
        delivery_limit=3,
        task_retries=1,
        task_backoff_s=0.05,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        api_port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=api_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.1)
    assert server.started, "the API did not start"
    try:
        yield Stack(ts, f"http://127.0.0.1:{api_port}", settings, store)
    finally:
        server.should_exit = True
        thread.join(30)
        stop(ts)
        connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
        try:
            delete_topology(connection.channel(), settings)
        finally:
            connection.close()


def _upload(stack: Stack, name: str, files: dict[str, Any], **fields: str) -> httpx.Response:
    data = {"name": name, "language": "en-US", "sample_text": SAMPLE_TEXT, **fields}
    return stack.call("POST", "/v1/voices", data=data, files=files, headers=AS_ADMIN)


def _piper_files() -> dict[str, Any]:
    model, config = joe_files()
    return {
        "model": ("copy.onnx", model.read_bytes(), "application/octet-stream"),
        "config": ("copy.onnx.json", config.read_bytes(), "application/json"),
    }


def _speak(stack: Stack, voice: str, text: str = "Hello from a managed voice.") -> httpx.Response:
    return stack.call("POST", "/v1/audio/speech", json={"voice": voice, "input": text})


def test_a_renamed_copy_of_joe_is_registered_and_speaks_without_a_restart(stack: Stack) -> None:
    pid_before = stack.ts.pid_file.read_text()

    response = _upload(stack, "joecopy", _piper_files(), gender="male", description="joe again")

    assert response.status_code == 201, response.text
    voice = response.json()
    assert voice["default_version"] == "1" and voice["pool"] == "cpu"
    assert (stack.store / "joecopy.v1.mar").is_file()
    registered = stack.management("/models/joecopy/all")
    assert [m["modelVersion"] for m in registered] == ["1"]
    assert registered[0]["modelUrl"] == "joecopy.v1.mar"
    spoken = _speak(stack, "joecopy")
    assert spoken.status_code == 200, spoken.text
    rate, samples, rms = wav_stats(spoken.content)
    assert rate == 22050 and samples > 22050 // 2 and rms > 100
    sample = stack.call("GET", voice["versions"][0]["sample_url"])
    assert sample.status_code == 200 and wav_stats(sample.content)[2] > 100
    assert stack.ts.pid_file.read_text() == pid_before  # the same TorchServe process


class Load:
    """Speech requests to a voice, back to back from several threads, until stopped."""

    def __init__(self, stack: Stack, voice: str, threads: int = 3) -> None:
        self.stack = stack
        self.voice = voice
        self.results: list[int] = []
        self.errors: list[str] = []
        self.in_flight = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self.in_flight += 1
            try:
                status = _speak(self.stack, self.voice, "In flight during the switch.").status_code
            except httpx.HTTPError as e:
                status = 0
                self.errors.append(repr(e))
            with self._lock:
                self.in_flight -= 1
                self.results.append(status)

    def count(self) -> int:
        with self._lock:
            return len(self.results)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(SLOW)


def _wait(condition: Callable[[], Any], what: str, timeout: float = SLOW) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_v2_then_switch_default_and_roll_back_while_requests_are_in_flight(stack: Stack) -> None:
    response = _upload(stack, "joecopy", _piper_files(), sample_text="Version two speaking.")
    assert response.status_code == 201, response.text
    assert [v["version"] for v in response.json()["versions"]] == ["1", "2"]
    assert response.json()["default_version"] == "1"

    with Load(stack, "joecopy") as load:
        _wait(lambda: load.count() >= 3, "requests before the switch")
        assert load.in_flight > 0  # the switch happens under requests in flight
        switched = stack.call(
            "PUT", "/v1/voices/joecopy/default", json={"version": "2"}, headers=AS_ADMIN
        )
        assert switched.status_code == 200, switched.text
        assert stack.management("/models/joecopy")[0]["modelVersion"] == "2"
        after_switch = load.count()
        _wait(lambda: load.count() >= after_switch + 3, "requests after the switch")
        assert load.in_flight > 0
        rolled = stack.call("POST", "/v1/voices/joecopy/rollback", headers=AS_ADMIN)
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["default_version"] == "1"
        assert stack.management("/models/joecopy")[0]["modelVersion"] == "1"
        after_rollback = load.count()
        _wait(lambda: load.count() >= after_rollback + 3, "requests after the roll-back")

    assert load.results and set(load.results) == {200}, (load.results, load.errors)
    log = stack.predictions_log()
    assert "/predictions/joecopy" in log
    listed = stack.call("GET", "/v1/voices/joecopy").json()
    assert [(v["version"], v["is_default"]) for v in listed["versions"]] == [
        ("1", True),
        ("2", False),
    ]
    assert all(v["created_by"].startswith("key-") and v["created_at"] for v in listed["versions"])


def test_a_tiny_transformers_vits_voice_is_registered_and_speaks(
    stack: Stack, tmp_path: Path
) -> None:
    folder = tiny_vits(tmp_path / "tiny-vits")
    archive = zip_dir(folder, tmp_path / "tiny.zip")

    response = _upload(
        stack, "tinyvits", {"archive": ("tiny.zip", archive.read_bytes(), "application/zip")}
    )

    assert response.status_code == 201, response.text
    assert response.json()["versions"][0]["family"] == "transformers"
    spoken = _speak(stack, "tinyvits", "hello there")
    assert spoken.status_code == 200, spoken.text
    assert wav_stats(spoken.content)[0] == 16000


def test_hostile_archives_and_user_keys_are_refused(stack: Stack, tmp_path: Path) -> None:
    for kind in ("traversal", "symlink", "pickle"):
        archive = hostile_zip(tmp_path / f"{kind}.zip", kind)
        response = _upload(stack, f"bad-{kind}", {"archive": (f"{kind}.zip", archive.read_bytes())})
        assert 400 <= response.status_code < 500, (kind, response.text)
    as_user = stack.call(
        "POST",
        "/v1/voices",
        data={"name": "nope", "language": "en", "sample_text": "Hi."},
        files=_piper_files(),
    )
    assert as_user.status_code == 403
    assert stack.call("POST", "/v1/voices/joecopy/rollback").status_code == 403
    names = [m["modelName"] for m in stack.management("/models")["models"]]
    assert not any(n.startswith("bad-") for n in names)


def test_workers_scale_and_health_reports_them(stack: Stack) -> None:
    changed = stack.call("PATCH", "/v1/voices/joecopy", json={"workers": 2}, headers=AS_ADMIN)

    assert changed.status_code == 200, changed.text
    described = stack.management("/models/joecopy/1")[0]
    assert len(described["workers"]) == 2
    health = stack.call("GET", "/v1/voices/joecopy/health").json()
    assert health["healthy"] is True
    by_version = {v["version"]: v for v in health["serving"]["versions"]}
    assert by_version["1"]["ready_workers"] == 2 and by_version["2"]["workers"] == 1
    assert health["metrics"]["api"]  # the speech requests of the earlier tests were counted
    # TorchServe's own counters for the voice (requests that named no version count as
    # "default", those of a pinned version under its number).
    torchserve = health["metrics"]["torchserve"]
    requests = [v for k, v in torchserve.items() if k.startswith("ts_inference_requests_total")]
    assert sum(requests) > 0, torchserve


def test_a_conversion_records_each_segments_version_and_resynthesis_keeps_it(
    stack: Stack, start_worker: Callable[..., Any]
) -> None:
    start_worker(
        stack.settings,
        VOXMILL_TORCHSERVE_URL=stack.ts.inference_url,
        VOXMILL_TORCHSERVE_KEY_FILE=str(stack.ts.key_file),
    )
    project = stack.call(
        "POST", "/v1/projects", json={"name": "Old book", "voice": "joecopy"}
    ).json()
    text = '# One\n\nThe narrator speaks first.\n\n# Two\n\n"I speak second," she said.'
    stack.call(
        "POST", f"/v1/projects/{project['id']}/documents", json={"text": text, "format": "markdown"}
    )
    detail = stack.call("GET", f"/v1/projects/{project['id']}").json()
    second = detail["chapters"][1]["id"]
    chose = stack.call("PUT", f"/v1/chapters/{second}/voice", json={"voice": "tinyvits"})
    assert chose.status_code == 200, chose.text
    stack.call("POST", f"/v1/projects/{project['id']}/conversions")

    def finished() -> bool:
        counts = stack.call("GET", f"/v1/projects/{project['id']}").json()["counts"]
        return counts["done"] + counts["failed"] == counts["total"]

    _wait(finished, "the conversion")
    segments = _segments(stack, detail)
    assert {(s["voice"], s["voice_version"], s["status"]) for s in segments} == {
        ("joecopy", "1", "done"),
        ("tinyvits", "1", "done"),
    }
    assert "/predictions/joecopy/1 " in stack.predictions_log()
    # Narrator at 22050 Hz and a second voice at 16000 Hz: one file, at the higher rate.
    exported = stack.call("GET", f"/v1/projects/{project['id']}/audio")
    assert exported.status_code == 200 and wav_stats(exported.content)[0] == 22050

    # The book was made with version 1; the voice moves on to version 2.
    stack.call("PUT", "/v1/voices/joecopy/default", json={"version": "2"}, headers=AS_ADMIN)
    narrator = next(s for s in segments if s["voice"] == "joecopy")
    _resynthesize(stack, narrator["id"], {})
    assert stack.call("GET", f"/v1/segments/{narrator['id']}").json()["voice_version"] == "1"
    _resynthesize(stack, narrator["id"], {"latest_voice": True})
    assert stack.call("GET", f"/v1/segments/{narrator['id']}").json()["voice_version"] == "2"
    assert "/predictions/joecopy/2 " in stack.predictions_log()
    # The quoted speaker keeps its own voice through re-synthesis.
    speaker = next(s for s in segments if s["voice"] == "tinyvits")
    _resynthesize(stack, speaker["id"], {})
    assert stack.call("GET", f"/v1/segments/{speaker['id']}").json()["voice"] == "tinyvits"


def _segments(stack: Stack, detail: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for chapter in detail["chapters"]:
        body = stack.call("GET", f"/v1/chapters/{chapter['id']}").json()
        out += [s for block in body["blocks"] for s in block["segments"]]
    return out


def _resynthesize(stack: Stack, segment_id: int, body: dict[str, Any]) -> None:
    response = stack.call("POST", f"/v1/segments/{segment_id}/resynthesize", json=body)
    assert response.status_code == 202, response.text
    _wait(
        lambda: stack.call("GET", f"/v1/segments/{segment_id}").json()["status"] == "done",
        "the re-synthesis",
    )


def test_the_voice_sync_sidecar_finds_torchserve_in_line_with_the_catalog(stack: Stack) -> None:
    """What each Kubernetes pod's ``voxmill voice-sync`` does, against the real TorchServe: the
    catalog the API wrote describes exactly what TorchServe serves now."""
    from voices.management import ManagementClient
    from voices.sync import read_catalog, sync_once

    client = ManagementClient(stack.ts.management_url, lambda: stack.ts.key("management"))
    try:
        catalog = {spec.name: spec for spec in read_catalog(stack.store)}
        assert catalog["joecopy"].default_version == "2"
        assert [v.version for v in catalog["joecopy"].versions] == ["1", "2"]
        assert sync_once(client, stack.store, "cpu") == []
        assert sync_once(client, stack.store, "gpu") == []  # no voice of that pool here
    finally:
        client.close()
