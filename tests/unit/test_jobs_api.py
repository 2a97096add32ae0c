"""Batch jobs in the embedded mode (SQLite, in-process queue, the local-directory object store)
with a stand-in voice: what a client of ``/v1/jobs`` sees, and where the outputs land."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from voicekit import GatedVoice

from api.main import create_app
from api.models import Conversion, Job, Project, Segment, WebhookMessage
from contract import limits
from contract.settings import Settings

RATE = 22050
BUCKET = "voxmill-out"
DOC = """# One

First sentence here. Second sentence here.

Another paragraph.

# Two

The end.
"""


@pytest.fixture
def voice() -> GatedVoice:
    return GatedVoice()


@pytest.fixture
def client(tmp_path: Path, voice: GatedVoice) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        outbox_poll_s=0.05,
        job_poll_s=0.05,
        audio_store="objects",
        object_store="local",
        job_buckets=[BUCKET, "voxmill-in"],
    )
    with TestClient(create_app(settings, synthesizer=voice)) as c:
        yield c


def wait_status(client: TestClient, job_id: str, *wanted: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body["status"] in wanted:
            return body
        assert time.monotonic() < deadline, f"job not {wanted}: {body}"
        time.sleep(0.05)


def new_job(client: TestClient, key: str | None = None, **fields: Any) -> Any:
    body = {"text": DOC, "text_format": "markdown", "output": {"bucket": BUCKET}, **fields}
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/v1/jobs", json=body, headers=headers)


def test_a_job_writes_audio_and_subtitles_to_the_output_prefix(
    client: TestClient, tmp_path: Path
) -> None:
    r = new_job(
        client,
        filename="book.md",
        format="flac",
        timings=["srt", "vtt"],
        output={"bucket": BUCKET, "prefix": "audiobooks/"},
    )
    assert r.status_code == 202, r.text
    job = wait_status(client, r.json()["id"], "completed", "failed")
    assert job["status"] == "completed", job
    assert job["progress"] == {"total": 6, "done": 6, "failed": 0, "fraction": 1.0}
    keys = {o["format"]: o["key"] for o in job["outputs"]}
    folder = f"audiobooks/{job['id']}"
    assert keys == {
        "flac": f"{folder}/book.flac",
        "srt": f"{folder}/book.srt",
        "vtt": f"{folder}/book.vtt",
    }
    root = tmp_path / "objects" / BUCKET / folder
    samples, rate = sf.read(io.BytesIO((root / "book.flac").read_bytes()))
    sentences = ["First sentence here.", "Second sentence here.", "Another paragraph.", "The end."]
    spoken = sum(100 * len(s) for s in sentences) + 100 * len("One") + 100 * len("Two")
    assert rate == RATE and len(samples) > spoken  # every sentence plus the pauses between
    srt = (root / "book.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert all(s in srt for s in sentences)
    assert (root / "book.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> ")
    # The last cue ends where the audio ends.
    last_end = srt.strip().splitlines()[-2].split(" --> ")[1]
    h, m, rest = last_end.split(":")
    s, ms = rest.split(",")
    end_ms = ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)
    assert abs(end_ms - len(samples) * 1000 / RATE) <= 1
    # Downloads stream the stored object.
    download = client.get(f"/v1/jobs/{job['id']}/outputs/flac")
    assert download.content == (root / "book.flac").read_bytes()
    assert job["outputs"][0]["url"] is None  # the local directory has no presigned URLs


def test_jobs_with_the_same_prefix_keep_their_own_outputs(
    client: TestClient, tmp_path: Path
) -> None:
    out = {"bucket": BUCKET, "prefix": "t/"}
    first = new_job(client, text="Hello job. Second sentence.", format="mp3", output=out)
    first_job = wait_status(client, first.json()["id"], "completed")
    second = new_job(
        client, text="A longer, other text. With more words in it.", format="mp3", output=out
    )
    second_job = wait_status(client, second.json()["id"], "completed")
    keys = [first_job["outputs"][0]["key"], second_job["outputs"][0]["key"]]
    assert keys == [f"t/{first_job['id']}/document.mp3", f"t/{second_job['id']}/document.mp3"]
    for job in (first_job, second_job):
        stored = (tmp_path / "objects" / BUCKET / job["outputs"][0]["key"]).read_bytes()
        assert job["outputs"][0]["bytes"] == len(stored)
        download = client.get(f"/v1/jobs/{job['id']}/outputs/mp3")
        assert download.status_code == 200
        assert download.content == stored
        assert download.headers["content-length"] == str(len(stored))


def test_an_output_replaced_or_deleted_in_the_bucket_is_not_served(
    client: TestClient, tmp_path: Path
) -> None:
    job = wait_status(client, new_job(client, format="wav").json()["id"], "completed")
    path = tmp_path / "objects" / BUCKET / job["outputs"][0]["key"]
    url = f"/v1/jobs/{job['id']}/outputs/wav"
    path.write_bytes(b"RIFF another writer")  # the bucket is shared; anyone may write to it
    r = client.get(url)
    assert r.status_code == 409 and "replaced" in r.json()["detail"]
    path.unlink()
    r = client.get(url)
    assert r.status_code == 404 and "no longer in the store" in r.json()["detail"]


def test_an_output_recorded_without_an_etag_is_checked_by_size(
    client: TestClient, tmp_path: Path
) -> None:
    job = wait_status(client, new_job(client, format="wav").json()["id"], "completed")
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:  # as jobs finished before ETags were recorded
        row = session.get(Job, job["id"])
        assert row is not None and row.outputs is not None
        outputs = json.loads(row.outputs)
        del outputs[0]["etag"]
        row.outputs = json.dumps(outputs)
        session.commit()
    url = f"/v1/jobs/{job['id']}/outputs/wav"
    assert client.get(url).status_code == 200
    (tmp_path / "objects" / BUCKET / outputs[0]["key"]).write_bytes(b"RIFF shorter")
    r = client.get(url)
    assert r.status_code == 409 and "replaced" in r.json()["detail"]


def test_segment_audio_lives_in_the_store_under_content_keys(
    client: TestClient, tmp_path: Path
) -> None:
    job = wait_status(client, new_job(client).json()["id"], "completed")
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        rows = session.execute(
            select(Segment.audio, Segment.audio_key).where(Segment.project_id == job["project_id"])
        ).all()
    assert rows and all(data is None and key for data, key in rows)
    for _, key in rows:
        stored = tmp_path / "objects" / "voxmill-audio" / key
        assert stored.read_bytes()[:4] == b"fLaC"
        assert key.endswith(".flac") and key.startswith("segments/")
    # The project download reads them back from the store.
    r = client.get(f"/v1/projects/{job['project_id']}/audio?format=wav")
    assert r.status_code == 200 and len(r.content) > 44


def test_the_same_idempotency_key_returns_the_same_job(client: TestClient) -> None:
    first = new_job(client, key="order-42")
    again = new_job(client, key="order-42")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    other = new_job(client, key="order-42", text="A different document.")
    assert other.status_code == 422
    assert "Idempotency-Key was already used" in other.json()["detail"]


def test_cancel_discards_the_work_in_flight_and_writes_no_output(
    client: TestClient, voice: GatedVoice, tmp_path: Path
) -> None:
    voice.gate.clear()  # the workers hold their first sentences
    r = new_job(client, filename="never.md")
    job_id = r.json()["id"]
    assert r.json()["status"] == "running"
    deadline = time.monotonic() + 20
    while not voice.entered:
        assert time.monotonic() < deadline, "no sentence reached the voice"
        time.sleep(0.02)
    cancelled = client.delete(f"/v1/jobs/{job_id}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    voice.gate.set()
    # The sentences the workers held finish; their results must change nothing.
    stats = client.app.state.runtime.result_stats  # type: ignore[attr-defined]
    deadline = time.monotonic() + 20
    while stats.ignored < len(voice.entered) or len(voice.calls) < len(voice.entered):
        assert time.monotonic() < deadline, (stats, voice.calls)
        time.sleep(0.02)
    assert stats.applied == 0
    body = client.get(f"/v1/jobs/{job_id}").json()
    assert body["status"] == "cancelled" and body["outputs"] == []
    # The job's conversion is cancelled, so workers skip its tasks still in the queue.
    factory = client.app.state.runtime.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.conversion_id is not None
        conversion = session.get(Conversion, job.conversion_id)
        assert conversion is not None and conversion.stopped == "cancelled"
    assert not (tmp_path / "objects" / BUCKET).exists() or not list(
        (tmp_path / "objects" / BUCKET).rglob("never*")
    )
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 409


def hold_a_running_job(client: TestClient, voice: GatedVoice) -> Any:
    voice.gate.clear()  # the workers hold their first sentences
    job = new_job(client).json()
    deadline = time.monotonic() + 20
    while not voice.entered:
        assert time.monotonic() < deadline, "no sentence reached the voice"
        time.sleep(0.02)
    return job


def test_a_running_jobs_project_cannot_be_deleted_until_the_job_is_cancelled(
    client: TestClient, voice: GatedVoice
) -> None:
    job = hold_a_running_job(client, voice)
    r = client.delete(f"/v1/projects/{job['project_id']}")
    assert r.status_code == 409, r.text
    assert f"DELETE /v1/jobs/{job['id']}" in r.json()["detail"]
    project = client.get(f"/v1/projects/{job['project_id']}")
    assert project.status_code == 200
    document = f"/v1/projects/{job['project_id']}/documents/{project.json()['documents'][0]['id']}"
    r = client.delete(document)  # the job would complete without its audio
    assert r.status_code == 409 and f"DELETE /v1/jobs/{job['id']}" in r.json()["detail"]
    running = client.get(f"/v1/jobs/{job['id']}").json()
    assert running["status"] == "running" and running["project_id"] == job["project_id"]
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 200
    voice.gate.set()
    assert client.delete(f"/v1/projects/{job['project_id']}").status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


def test_a_job_whose_project_vanished_fails_and_calls_back(
    client: TestClient, voice: GatedVoice
) -> None:
    job = hold_a_running_job(client, voice)
    factory = client.app.state.session_factory  # type: ignore[attr-defined]
    with factory() as session:  # gone some other way than the API (an operator, a script)
        row = session.get(Job, job["id"])
        assert row is not None
        row.callback_url = "https://hooks.example.com/voxmill"
        session.execute(delete(Project).where(Project.id == job["project_id"]))
        session.commit()
    voice.gate.set()
    ended = wait_status(client, job["id"], "failed", "completed", "cancelled")
    assert ended["status"] == "failed", ended
    assert "project was deleted" in ended["error"]
    with factory() as session:
        events = session.scalars(
            select(WebhookMessage.event_type).where(WebhookMessage.job_id == job["id"])
        ).all()
    assert events == ["job.failed"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"output": {"bucket": "someone-elses"}}, "bucket 'someone-elses' is not allowed"),
        ({"output": {"bucket": BUCKET, "prefix": "../up/"}}, "without '.' or '..'"),
        ({"source_url": "s3://voxmill-out/x.txt"}, "exactly one of"),
        ({"timings": ["ass"]}, "not available"),
        ({"callback_url": "https://example.com/hook"}, "VOXMILL_WEBHOOK_SECRET"),
    ],
)
def test_bad_jobs_are_refused_with_the_reason(
    client: TestClient, fields: dict[str, Any], message: str
) -> None:
    r = new_job(client, **fields)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_an_unknown_job_is_404(client: TestClient) -> None:
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.delete("/v1/jobs/nope").status_code == 404


def test_an_oversized_idempotency_key_is_refused(client: TestClient) -> None:
    r = new_job(client, key="k" * (limits.MAX_IDEMPOTENCY_KEY_CHARS + 1))
    assert r.status_code == 422


@pytest.fixture
def ingest_client(tmp_path: Path, voice: GatedVoice) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path,
        outbox_poll_s=0.05,
        job_poll_s=0.05,
        ingest_bucket="voxmill-in",
        ingest_prefix="incoming/",
        ingest_output_bucket=BUCKET,
        ingest_output_prefix="converted/",
        ingest_subtitles=["vtt"],
        ingest_token="t" * 24,
    )
    with TestClient(create_app(settings, synthesizer=voice)) as c:
        yield c


def oci_event(key: str, kind: str = "com.oraclecloud.objectstorage.createobject") -> Any:
    return {
        "eventType": kind,
        "cloudEventsVersion": "0.1",
        "eventID": "e-1",
        "data": {"resourceName": key, "additionalDetails": {"bucketName": "voxmill-in"}},
    }


def test_an_event_for_a_dropped_document_starts_one_job(
    ingest_client: TestClient, tmp_path: Path
) -> None:
    source = tmp_path / "objects" / "voxmill-in" / "incoming" / "a" / "note.md"
    source.parent.mkdir(parents=True)
    source.write_text(DOC)
    event = oci_event("incoming/a/note.md")
    token = {"Authorization": "Bearer " + "t" * 24}
    first = ingest_client.post("/v1/ingest/events", json=event, headers=token)
    second = ingest_client.post("/v1/ingest/events", json=event, auth=("oci", "t" * 24))
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["created"] and not second.json()["created"]
    assert first.json()["job_id"] == second.json()["job_id"]
    job = wait_status(ingest_client, first.json()["job_id"], "completed", "failed")
    folder = f"converted/a/{job['id']}"
    assert [o["key"] for o in job["outputs"]] == [f"{folder}/note.flac", f"{folder}/note.vtt"]
    assert (tmp_path / "objects" / BUCKET / folder / "note.vtt").is_file()
    # A later announcement of the same version is answered from the database, not re-read.
    runtime = ingest_client.app.state.runtime  # type: ignore[attr-defined]
    reads: list[str] = []
    real_get = runtime.objects.get_bytes
    runtime.objects.get_bytes = lambda b, k, limit=None: reads.append(k) or real_get(b, k, limit)
    again = ingest_client.post("/v1/ingest/events", json=event, headers=token)
    assert again.status_code == 202 and not again.json()["created"] and reads == []


def test_ingest_events_need_the_token_and_a_cloudevent(ingest_client: TestClient) -> None:
    event = oci_event("incoming/x.txt")
    assert ingest_client.post("/v1/ingest/events", json=event).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert ingest_client.post("/v1/ingest/events", json=event, headers=wrong).status_code == 401
    good = {"Authorization": "Bearer " + "t" * 24}
    r = ingest_client.post("/v1/ingest/events", content=b"{not json", headers=good)
    assert r.status_code == 422
    r = ingest_client.post("/v1/ingest/events", json={"a": 1}, headers=good)
    assert r.status_code == 422 and "not a CloudEvent" in r.json()["detail"]
    deleted = oci_event("incoming/x.txt", "com.oraclecloud.objectstorage.deleteobject")
    r = ingest_client.post("/v1/ingest/events", json=deleted, headers=good)
    assert r.status_code == 200 and r.json()["status"] == "ignored"
    outside = oci_event("elsewhere/x.txt")
    r = ingest_client.post("/v1/ingest/events", json=outside, headers=good)
    assert r.status_code == 200 and r.json()["status"] == "ignored"


@pytest.mark.parametrize(
    "url",
    [
        "s3://voxmill-in/../../../../etc/passwd",
        "s3://voxmill-in/./x",
        "s3://voxmill-in/docs//x.md",
        "s3://voxmill-in/docs/",
        "s3://voxmill-in/" + "k" * 1025,
    ],
)
def test_a_source_url_with_a_bad_key_is_a_422_before_anything_is_fetched(
    client: TestClient, url: str
) -> None:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    reads: list[str] = []
    real_get = runtime.objects.get_bytes
    runtime.objects.get_bytes = lambda b, k, limit=None: reads.append(k) or real_get(b, k, limit)
    r = client.post("/v1/jobs", json={"source_url": url, "output": {"bucket": BUCKET}})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("source_url: ")
    assert reads == []


def test_an_ingest_event_with_a_bad_key_is_refused_not_retried(ingest_client: TestClient) -> None:
    good = {"Authorization": "Bearer " + "t" * 24}
    for key in ("incoming/../../etc/passwd", "incoming/./x.md"):
        r = ingest_client.post("/v1/ingest/events", json=oci_event(key), headers=good)
        # 422, not 503: a 503 would make OCI Notifications deliver it again and again.
        assert r.status_code == 422, r.text
        assert "invalid object key" in r.json()["detail"]


def test_ingest_events_are_off_without_an_input_bucket(client: TestClient) -> None:
    assert client.post("/v1/ingest/events", json=oci_event("incoming/x")).status_code == 404


def test_a_job_reads_its_document_from_an_allowed_bucket_or_an_upload(
    client: TestClient, tmp_path: Path
) -> None:
    source = tmp_path / "objects" / "voxmill-in" / "docs" / "letter.md"
    source.parent.mkdir(parents=True)
    source.write_text(DOC)
    body = {"source_url": "s3://voxmill-in/docs/letter.md", "output": {"bucket": BUCKET}}
    by_url = client.post("/v1/jobs", json=body)
    assert by_url.status_code == 202, by_url.text
    job = wait_status(client, by_url.json()["id"], "completed")
    assert [o["key"] for o in job["outputs"]] == [f"{job['id']}/letter.flac"]
    assert job["source"] == "url"

    form = {"job": '{"output": {"bucket": "voxmill-out", "prefix": "up"}, "format": "wav"}'}
    upload = client.post("/v1/jobs", data=form, files={"file": ("memo.md", DOC.encode())})
    assert upload.status_code == 202, upload.text
    job = wait_status(client, upload.json()["id"], "completed")
    assert [o["key"] for o in job["outputs"]] == [f"up/{job['id']}/memo.wav"]
    wav = client.get(f"/v1/jobs/{job['id']}/outputs/wav")
    assert wav.headers["content-type"] == "audio/wav" and wav.content[:4] == b"RIFF"

    missing = {"source_url": "s3://voxmill-in/docs/none.md", "output": {"bucket": BUCKET}}
    r = client.post("/v1/jobs", json=missing)
    assert r.status_code == 422 and "no object" in r.json()["detail"]


def test_a_document_over_the_upload_limit_is_refused_while_reading(client: TestClient) -> None:
    big = "Words. " * (limits.MAX_UPLOAD_BYTES // 7 + 20_000)
    r = new_job(client, text=big)
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]
