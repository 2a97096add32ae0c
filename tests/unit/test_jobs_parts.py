"""The pure parts of batch jobs: callback URL checks, webhook signatures, CloudEvents parsing,
output prefixes, the local object store and the sweep of orphaned audio objects."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from api.audio_store import AudioStore, sweep_orphans
from api.db import make_engine, make_session_factory, migrate
from api.ingest import EventError, parse_event
from api.job_submit import SubmitError, normalize_prefix, parse_s3_url
from api.models import Block, Chapter, Document, Project, Segment
from api.storage import LocalObjectStore, NoSuchObject, ObjectTooLarge
from api.webhooks import CallbackRefused, check_callback_url, signed_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def resolver(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    return lambda host, port: table[host]


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.9", "private"),
        ("169.254.10.1", "link-local"),
        ("100.64.0.1", "private"),
        ("0.0.0.0", "reserved"),
    ],
)
def test_callbacks_to_internal_addresses_are_refused(address: str, why: str) -> None:
    with pytest.raises(CallbackRefused, match="only public addresses"):
        check_callback_url("https://hooks.example/x", [], resolver({"hooks.example": [address]}))


def test_a_name_with_one_internal_address_among_public_ones_is_refused() -> None:
    table = {"hooks.example": ["93.184.216.34", "10.0.0.5"]}
    with pytest.raises(CallbackRefused):
        check_callback_url("https://hooks.example/x", [], resolver(table))


def test_metadata_addresses_are_refused_even_inside_an_allowed_network() -> None:
    table = {"meta.example": ["169.254.169.254"]}
    with pytest.raises(CallbackRefused, match="metadata"):
        check_callback_url("http://meta.example/", ["169.254.0.0/16"], resolver(table))


def test_allowed_networks_and_public_addresses_pass() -> None:
    table = {"in.cluster": ["10.0.4.7"], "hooks.example": ["93.184.216.34"]}
    assert check_callback_url("http://in.cluster:9000/h", ["10.0.0.0/8"], resolver(table)) == [
        "10.0.4.7"
    ]
    assert check_callback_url("https://hooks.example/h", [], resolver(table)) == ["93.184.216.34"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example/x", "http"),
        ("https://user:pw@hooks.example/x", "credentials"),
        ("https:///x", "no host"),
    ],
)
def test_malformed_callback_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(CallbackRefused, match=message):
        check_callback_url(url, [], resolver({"hooks.example": ["93.184.216.34"]}))


def test_signatures_verify_with_the_standard_webhooks_reference_library() -> None:
    body = '{"type":"job.completed","data":{"id":"j1"}}'
    headers = signed_headers(SECRET, "msg_1", body)
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(body, headers)["data"]["id"] == "j1"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("j1", "j2"), headers)
    stale = signed_headers(SECRET, "msg_1", body, now=time.time() - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET).verify(body, stale)


OCI_EVENT = {
    "eventType": "com.oraclecloud.objectstorage.createobject",
    "cloudEventsVersion": "0.1",
    "eventTypeVersion": "2.0",
    "source": "ObjectStorage",
    "eventTime": "2026-11-30T10:00:00Z",
    "contentType": "application/json",
    "eventID": "unique-id-1",
    "data": {
        "compartmentId": "ocid1.compartment.oc1..x",
        "resourceName": "in/book.txt",
        "resourceId": "/n/ns/b/voxmill-in/o/in/book.txt",
        "availabilityDomain": "all",
        "additionalDetails": {"eTag": "abc", "namespace": "ns", "bucketName": "voxmill-in"},
    },
}


def test_oci_object_created_events_name_the_bucket_and_object() -> None:
    event = parse_event(OCI_EVENT)
    assert event is not None
    assert (event.event_id, event.bucket, event.key) == ("unique-id-1", "voxmill-in", "in/book.txt")
    v1 = {k: v for k, v in OCI_EVENT.items() if k not in {"eventType", "eventID"}}
    v1 |= {"specversion": "1.0", "type": OCI_EVENT["eventType"], "id": "e2"}
    assert parse_event(v1) is not None


def test_other_events_are_ignored_and_broken_ones_refused() -> None:
    assert (
        parse_event({**OCI_EVENT, "eventType": "com.oraclecloud.objectstorage.deleteobject"})
        is None
    )
    with pytest.raises(EventError, match="not a CloudEvent"):
        parse_event({"hello": "world"})
    with pytest.raises(EventError, match="no bucket"):
        parse_event({**OCI_EVENT, "data": {"resourceName": "x"}})
    with pytest.raises(EventError):
        parse_event([1, 2])


def test_output_prefixes_are_relative_and_end_in_a_slash() -> None:
    assert normalize_prefix("") == ""
    assert normalize_prefix("books") == "books/"
    assert normalize_prefix("books/2026/") == "books/2026/"
    for bad in ("/abs/", "a/../b", "a//b", "a/./b", "semi;colon"):
        with pytest.raises(SubmitError):
            normalize_prefix(bad)
    assert parse_s3_url("s3://in-bucket/dir/doc.txt") == ("in-bucket", "dir/doc.txt")
    with pytest.raises(SubmitError):
        parse_s3_url("https://in-bucket/doc.txt")


def test_the_local_store_writes_whole_objects_and_refuses_traversal(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put_file("bkt", "a/b.bin", io.BytesIO(b"x" * 3000))
    info = store.head("bkt", "a/b.bin")
    assert info is not None and info.size == 3000
    assert [o.key for o in store.list("bkt", "a/")] == ["a/b.bin"]
    assert not list((tmp_path / "bkt" / "a").glob(".tmp-*"))
    with pytest.raises(ObjectTooLarge):
        store.get_bytes("bkt", "a/b.bin", limit=10)
    with pytest.raises(NoSuchObject):
        store.get_bytes("bkt", "a/none")
    with pytest.raises(Exception, match="invalid object key"):
        store.put_bytes("bkt", "../escape", b"x")


def test_the_sweep_deletes_only_old_objects_no_segment_refers_to(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    migrate(url)
    factory = make_session_factory(make_engine(url))
    store = AudioStore(LocalObjectStore(tmp_path / "objects"), "audio")
    kept = store.put(b"fLaC kept")
    orphan = store.put(b"fLaC orphan")
    fresh = store.put(b"fLaC fresh orphan")
    with factory.begin() as session:
        project = Project(name="p", voice="joe")
        session.add(project)
        session.flush()
        document = Document(project_id=project.id, format="text", source_text="x")
        session.add(document)
        session.flush()
        chapter = Chapter(project_id=project.id, document_id=document.id, position=0, title="c")
        chapter.blocks = [Block(position=0)]
        session.add(chapter)
        session.flush()
        session.add(
            Segment(
                project_id=project.id,
                chapter_id=chapter.id,
                block_id=chapter.blocks[0].id,
                position=0,
                source_start=0,
                source_end=1,
                text="x",
                audio_key=kept,
            )
        )
    old = time.time() - 7200
    for key in (kept, orphan):
        os.utime(tmp_path / "objects" / "audio" / key, (old, old))
    assert sweep_orphans(factory, store, grace_s=3600) == 1
    left = {o.key for o in store.objects.list("audio", store.prefix)}
    assert left == {kept, fresh}


def dispatcher_with(tmp_path: Path, answer: int, retry_for_s: float, url: str):  # type: ignore[no-untyped-def]
    import httpx

    from api.models import Job
    from api.webhooks import WebhookDispatcher, new_message
    from contract.settings import Settings

    db = f"sqlite:///{tmp_path / 'hooks.sqlite'}"
    migrate(db)
    factory = make_session_factory(make_engine(db))
    settings = Settings(
        webhook_secret=SECRET, webhook_retry_for_s=retry_for_s, webhook_backoff_s=0.01
    )
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(answer)

    client = httpx.Client(transport=httpx.MockTransport(handle))
    with factory.begin() as session:
        job = Job(
            id="job-1",
            status="completed",
            voice="joe",
            format="flac",
            timings="",
            output_bucket="b",
            output_prefix="",
            output_name="n",
            callback_url=url,
            request_sha256="0" * 64,
            source="text",
        )
        session.add(job)
        session.flush()
        new_message(session, job, "job.completed", settings)
    table = {"hooks.example": ["93.184.216.34"], "inside.example": ["10.0.0.1"]}
    dispatcher = WebhookDispatcher(factory, settings, client=client, resolver=resolver(table))
    return factory, dispatcher, seen


def test_a_callback_that_keeps_failing_is_given_up_at_its_deadline(tmp_path: Path) -> None:
    from api.models import WebhookAttempt, WebhookMessage

    factory, dispatcher, seen = dispatcher_with(tmp_path, 503, 0.0, "https://hooks.example/h")
    assert dispatcher.deliver_due() == 1
    assert dispatcher.deliver_due() == 0  # given up: nothing is due any more
    with factory() as session:
        message = session.scalars(select(WebhookMessage)).one()
        attempts = session.scalars(select(WebhookAttempt)).all()
    assert message.state == "failed" and message.attempts == 1
    assert [(a.status_code, a.error) for a in attempts] == [(503, "HTTP 503")]
    assert Webhook(SECRET).verify(seen[0].content, dict(seen[0].headers))["type"] == "job.completed"


def test_a_callback_host_that_now_resolves_inside_is_not_called(tmp_path: Path) -> None:
    from api.models import WebhookAttempt

    factory, dispatcher, seen = dispatcher_with(tmp_path, 200, 3600.0, "http://inside.example/")
    dispatcher.deliver_due()
    with factory() as session:
        attempt = session.scalars(select(WebhookAttempt)).one()
    assert seen == [] and attempt.status_code is None
    assert "private" in (attempt.error or "")
