"""Batch jobs through the distributed stack (Postgres, RabbitMQ, worker processes, a stub voice
server) against a real S3 server process on loopback (moto's server mode, see tests/s3kit.py):
bucket ingest exactly once under duplicate events and a killed worker, the poller, signed and
retried callbacks, and cancel mid-job."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest
import soundfile as sf
from s3kit import S3Server
from sqlalchemy import func, select
from standardwebhooks import Webhook

from api.audio_store import sweep_orphans
from api.models import Job, Segment
from contract.settings import Settings

pytestmark = pytest.mark.integration

TIMEOUT = 90.0
SECRET = "whsec_" + base64.b64encode(b"voxmill-test-webhook-secret-32b!").decode()
TOKEN = "ingest-token-for-tests"


def sentences(n: int) -> str:
    return " ".join(f"This is sentence number {i} of the book." for i in range(n))


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def buckets(s3: S3Server) -> dict[str, str]:
    client = boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name="us-east-1",
        aws_access_key_id=s3.ACCESS_KEY,
        aws_secret_access_key=s3.SECRET_KEY,
    )
    tag = uuid.uuid4().hex[:8]
    names = {role: f"voxmill-{role}-{tag}" for role in ("audio", "in", "out")}
    for name in names.values():
        client.create_bucket(Bucket=name)
    return names


@pytest.fixture
def s3_client(s3: S3Server) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.url,
        region_name="us-east-1",
        aws_access_key_id=s3.ACCESS_KEY,
        aws_secret_access_key=s3.SECRET_KEY,
    )


@pytest.fixture
def job_settings(pipeline_settings: Settings, s3: S3Server, buckets: dict[str, str]) -> Settings:
    return pipeline_settings.model_copy(
        update={
            "audio_store": "objects",
            "object_store": "s3",
            "s3_endpoint_url": s3.url,
            "s3_access_key_id": s3.ACCESS_KEY,
            "s3_secret_access_key": s3.SECRET_KEY,
            "audio_bucket": buckets["audio"],
            "job_buckets": [buckets["in"], buckets["out"]],
            "ingest_bucket": buckets["in"],
            "ingest_prefix": "in/",
            "ingest_output_bucket": buckets["out"],
            "ingest_output_prefix": "out/",
            "ingest_subtitles": ["srt"],
            "ingest_token": TOKEN,
            "webhook_secret": SECRET,
            "webhook_allow_networks": ["127.0.0.0/8"],
            "webhook_backoff_s": 0.2,
            "job_poll_s": 0.2,
        }
    )


def keys(s3_client: Any, bucket: str, prefix: str = "") -> list[str]:
    answer = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in answer.get("Contents", []))


def event_for(bucket: str, key: str) -> dict[str, Any]:
    return {
        "eventType": "com.oraclecloud.objectstorage.createobject",
        "cloudEventsVersion": "0.1",
        "eventTypeVersion": "2.0",
        "source": "ObjectStorage",
        "eventID": str(uuid.uuid4()),
        "contentType": "application/json",
        "data": {
            "resourceName": key,
            "additionalDetails": {"bucketName": bucket, "namespace": "ns", "eTag": "oci-etag"},
        },
    }


def job_status(http: httpx.Client, job_id: str, *wanted: str) -> Callable[[], Any]:
    def check() -> Any:
        body = http.get(f"/v1/jobs/{job_id}").json()
        return body if body["status"] in wanted else None

    return check


def jobs_for(api: Any, source_ref: str) -> int:
    with api.runtime.session_factory() as session:
        return int(
            session.scalar(select(func.count(Job.id)).where(Job.source_ref == source_ref)) or 0
        )


def test_a_dropped_document_becomes_audio_and_subtitles_once(
    job_settings: Settings,
    buckets: dict[str, str],
    s3_client: Any,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.2
    api = start_api(job_settings)
    first = start_worker(job_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    s3_client.put_object(Bucket=buckets["in"], Key="in/shelf/book.txt", Body=sentences(10))
    event = event_for(buckets["in"], "in/shelf/book.txt")
    auth = ("voxmill", TOKEN)
    with httpx.Client(base_url=api.url, timeout=30) as http:
        assert http.post("/v1/ingest/events", json=event).status_code == 401
        one = http.post("/v1/ingest/events", json=event, auth=auth)
        two = http.post("/v1/ingest/events", json=event, auth=auth)  # delivered twice
        assert (one.status_code, two.status_code) == (202, 202), (one.text, two.text)
        assert one.json()["created"] and not two.json()["created"]
        job_id = one.json()["job_id"]
        assert two.json()["job_id"] == job_id

        # A worker dies inside a synthesis call; another takes over its unacked tasks.
        wait_for(lambda: stub_torchserve.count() >= 3, timeout=TIMEOUT, what="work in flight")
        first.kill()
        start_worker(job_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
        job = wait_for(job_status(http, job_id, "completed", "failed"), timeout=TIMEOUT)
        assert job["status"] == "completed", job
        again = http.post("/v1/ingest/events", json=event, auth=auth)  # a late redelivery
        assert again.status_code == 202 and not again.json()["created"]

    folder = f"out/shelf/{job_id}"
    assert keys(s3_client, buckets["out"]) == [f"{folder}/book.flac", f"{folder}/book.srt"]
    flac = s3_client.get_object(Bucket=buckets["out"], Key=f"{folder}/book.flac")["Body"].read()
    samples, rate = sf.read(io.BytesIO(flac))
    assert rate == stub_torchserve.RATE and len(samples) > 10 * 80 * 30
    srt = s3_client.get_object(Bucket=buckets["out"], Key=f"{folder}/book.srt")["Body"].read()
    assert srt.decode().count(" --> ") == 10
    assert jobs_for(api, f"s3://{buckets['in']}/in/shelf/book.txt") == 1
    # The presigned URL downloads the same object without credentials.
    audio = next(o for o in job["outputs"] if o["kind"] == "audio")
    assert httpx.get(audio["url"]).content == flac
    # Segment audio is in the audio bucket under content keys; the rows hold only the keys.
    with api.runtime.session_factory() as session:
        rows = session.execute(
            select(Segment.audio, Segment.audio_key).where(Segment.project_id == job["project_id"])
        ).all()
    assert len(rows) == 10 and all(data is None and key for data, key in rows)
    stored = set(keys(s3_client, buckets["audio"]))
    assert {key for _, key in rows} <= stored
    # An object written but never committed (a crash in between) is swept; referenced ones stay.
    orphan = api.runtime.audio_store.put(b"fLaC never committed")
    assert sweep_orphans(api.runtime.session_factory, api.runtime.audio_store, grace_s=0) >= 1
    left = set(keys(s3_client, buckets["audio"]))
    assert orphan not in left and {key for _, key in rows} <= left


def test_the_poller_starts_one_job_per_object_version(
    job_settings: Settings,
    buckets: dict[str, str],
    s3_client: Any,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    settings = job_settings.model_copy(update={"ingest_poll_s": 0.3, "ingest_subtitles": []})
    api = start_api(settings)
    start_worker(settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    ref = f"s3://{buckets['in']}/in/notes.md"
    s3_client.put_object(Bucket=buckets["in"], Key="in/notes.md", Body="# Notes\n\nShort one.")
    s3_client.put_object(Bucket=buckets["in"], Key="elsewhere/skip.txt", Body="Not watched.")
    wait_for(lambda: jobs_for(api, ref) == 1, timeout=TIMEOUT, what="the poller's job")
    wait_for(lambda: keys(s3_client, buckets["out"]), timeout=TIMEOUT, what="out")
    # The same content again has the same ETag: no new job. New content is a new version.
    s3_client.put_object(Bucket=buckets["in"], Key="in/notes.md", Body="# Notes\n\nShort one.")
    s3_client.put_object(Bucket=buckets["in"], Key="in/notes.md", Body="# Notes\n\nLonger, now.")
    wait_for(lambda: jobs_for(api, ref) == 2, timeout=TIMEOUT, what="the new version's job")
    poller = next(s for s in api.runtime.jobs.others if s.thread_name == "bucket-poller")
    done = poller.created
    wait_for(lambda: poller.created == done and jobs_for(api, ref) == 2, what="quiet")
    # Each version's job has outputs of its own: the new one does not replace the old one's.
    both = wait_for(
        lambda: len(k := keys(s3_client, buckets["out"])) == 2 and k, timeout=TIMEOUT, what="2"
    )
    assert all(re.fullmatch(r"out/[0-9a-f-]{36}/notes\.flac", k) for k in both), both
    assert jobs_for(api, f"s3://{buckets['in']}/elsewhere/skip.txt") == 0


class Receiver:
    """A webhook receiver on loopback that answers 500 to the first request, then 204."""

    def __init__(self) -> None:
        receiver = self
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.requests.append((dict(self.headers), body))
                    first = len(receiver.requests) == 1
                self.send_response(500 if first else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/voxmill"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_job_calls_back_signed_and_retries_after_a_500(
    job_settings: Settings,
    buckets: dict[str, str],
    receiver: Receiver,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    api = start_api(job_settings)
    start_worker(job_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    body = {
        "text": sentences(3),
        "filename": "memo.txt",
        "format": "mp3",
        "output": {"bucket": buckets["out"], "prefix": "memos"},
        "callback_url": receiver.url,
    }
    with httpx.Client(base_url=api.url, timeout=30) as http:
        created = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": "memo-1"})
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        wait_for(lambda: len(receiver.requests) >= 2, timeout=TIMEOUT, what="the retried call")
        job = wait_for(
            lambda: (j := http.get(f"/v1/jobs/{job_id}").json())["deliveries"][1:] and j,
            timeout=TIMEOUT,
            what="both attempts recorded",
        )
    hook = Webhook(SECRET)
    payloads = [hook.verify(raw, headers) for headers, raw in receiver.requests]
    assert payloads[0] == payloads[1]
    assert receiver.requests[0][0]["webhook-id"] == receiver.requests[1][0]["webhook-id"]
    event = payloads[1]
    assert event["type"] == "job.completed" and event["data"]["id"] == job_id
    assert [o["key"] for o in event["data"]["outputs"]] == [f"memos/{job_id}/memo.mp3"]
    assert [(d["attempt"], d["status_code"]) for d in job["deliveries"]] == [(1, 500), (2, 204)]
    assert len(receiver.requests) == 2  # delivered: no further attempts


def test_cancel_mid_job_leaves_no_output(
    job_settings: Settings,
    buckets: dict[str, str],
    s3_client: Any,
    start_api: Callable[..., Any],
    start_worker: Callable[..., Any],
    stub_torchserve: Any,
    wait_for: Callable[..., Any],
) -> None:
    stub_torchserve.delay_s = 0.3
    api = start_api(job_settings)
    start_worker(job_settings, VOXMILL_TORCHSERVE_URL=stub_torchserve.url)
    body = {"text": sentences(12), "filename": "long.txt", "output": {"bucket": buckets["out"]}}
    with httpx.Client(base_url=api.url, timeout=30) as http:
        job_id = http.post("/v1/jobs", json=body).json()["id"]
        wait_for(lambda: stub_torchserve.count() >= 2, timeout=TIMEOUT, what="work in flight")
        cancelled = http.delete(f"/v1/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        stats = api.runtime.result_stats
        # Results of work already taken by the worker arrive and change nothing.
        wait_for(lambda: stats.ignored >= 1, timeout=TIMEOUT, what="an ignored late result")
        final = http.get(f"/v1/jobs/{job_id}").json()
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 409
    assert final["status"] == "cancelled" and final["outputs"] == []
    assert final["progress"]["done"] < 12
    assert keys(s3_client, buckets["out"]) == []
    assert json.loads(cancelled.text)["error"] == "cancelled"
