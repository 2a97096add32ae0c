"""The contract between the API and the worker: the wire format of every message (both
transports use it), the retry policy every consumer reads, and the limits the README states."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from contract import limits
from contract.messages import (
    META_HEADER,
    EventMessage,
    MessageError,
    ResultMessage,
    SynthesisParams,
    TaskMessage,
)
from contract.retry import Backoff, RetryPolicy
from contract.settings import Settings
from contract.timings import Span, Timings
from messaging.memory import MemoryBroker, MemoryPublisher

FLAC = b"fLaC" + bytes(range(256)) * 4  # the consumer checks the magic, never decodes


def done_result() -> ResultMessage:
    return ResultMessage(
        task_id="s1-a1",
        segment_id=1,
        project_id=2,
        status="done",
        audio=FLAC,
        sample_rate=22050,
        num_samples=11025,
        worker="w",
    )


def test_a_result_travels_as_binary_audio_with_json_metadata_in_a_header() -> None:
    result = done_result()

    wire = result.to_wire()

    assert wire.body == FLAC, "the audio is the body, not base64 inside JSON"
    assert wire.content_type == "audio/flac"
    assert set(wire.headers) == {META_HEADER}
    assert '"schema":"voxmill.result/3"' in wire.headers[META_HEADER]
    assert "audio" not in wire.headers[META_HEADER].replace("audio_format", "")
    again = ResultMessage.from_wire(wire.body, wire.headers)
    assert again == result
    assert again.duration_ms == 500


def test_timings_travel_with_the_audio_in_the_metadata() -> None:
    timings = Timings(
        words=[
            Span(text="Héllo", start_ms=10, end_ms=300),
            Span(text="there", start_ms=320, end_ms=480),
        ],
        sentences=[Span(text="Héllo there.", start_ms=0, end_ms=500)],
    )
    result = done_result().model_copy(update={"timings": timings})

    wire = result.to_wire()

    assert wire.body == FLAC
    again = ResultMessage.from_wire(wire.body, wire.headers)
    assert again.timings == timings
    assert again == result


def test_a_result_of_the_previous_schema_is_read_without_timings() -> None:
    meta = json.loads(done_result().to_wire().headers[META_HEADER])
    meta["schema"] = "voxmill.result/2"
    del meta["timings"]

    old = ResultMessage.from_wire(FLAC, {META_HEADER: json.dumps(meta)})

    assert old.timings is None
    assert old.num_samples == 11025
    with pytest.raises(MessageError):
        ResultMessage.from_wire(FLAC, {META_HEADER: json.dumps({**meta, "timings": {}})})


def test_a_failed_result_has_an_empty_body() -> None:
    failed = ResultMessage(task_id="t", segment_id=1, project_id=2, status="failed", error="no")
    wire = failed.to_wire()
    assert wire.body == b""
    assert ResultMessage.from_wire(wire.body, wire.headers) == failed


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b'{"schema": "voxmill.result/1", "audio": "ZkxhQw=="}', {}, "no 'voxmill-meta' header"),
        (FLAC, {META_HEADER: "{not json"}, "invalid ResultMessage"),
        (b"", {META_HEADER: done_result().to_wire().headers[META_HEADER]}, "without audio"),
    ],
)
def test_invalid_results_are_refused_with_the_reason(
    body: bytes, headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(MessageError, match=reason):
        ResultMessage.from_wire(body, headers)


def test_tasks_and_events_are_json_bodies() -> None:
    task = TaskMessage(task_id="t", project_id=1, segment_id=2, voice="joe", text="Hi.")
    event = EventMessage(type="segment", project_id=1, data={"segment_id": 2})
    for message in (task, event):
        wire = message.to_wire()
        assert wire.content_type == "application/json" and not wire.headers
        assert type(message).from_wire(wire.body, wire.headers) == message


def test_tasks_queued_by_the_previous_version_still_parse() -> None:
    old = b'{"schema": "voxmill.task/1", "task_id": "t", "project_id": 1, "segment_id": 2,'
    old += b' "voice": "joe", "text": "Hi.", "priority": 0}'
    assert TaskMessage.from_wire(old).segment_id == 2


def test_the_in_process_broker_carries_the_same_wire_format() -> None:
    broker = MemoryBroker(Settings(queue_prefix="wire"))
    MemoryPublisher(broker).publish_result(done_result())

    delivery = broker.get(broker.topology.results, timeout=1)

    assert delivery is not None
    assert delivery.body == FLAC
    assert ResultMessage.from_wire(delivery.body, delivery.headers) == done_result()


def test_speed_bounds_are_the_limits_everywhere() -> None:
    SynthesisParams(speed=limits.SPEED_MIN)
    SynthesisParams(speed=limits.SPEED_MAX)
    with pytest.raises(ValueError):
        SynthesisParams(speed=0.2)  # the handler would refuse it: so does the message
    with pytest.raises(ValueError):
        SynthesisParams(speed=limits.SPEED_MAX + 0.01)
    for field in ("speed", "noise_scale", "noise_w"):
        with pytest.raises(ValueError, match="finite number"):
            SynthesisParams.model_validate({field: float("nan")})


# --- retry policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_is_exponential_with_jitter_and_capped(attempt: int) -> None:
    full = min(10.0, 0.5 * 2**attempt)
    backoff = Backoff(0.5, 10.0)
    assert backoff.delay(attempt, rng=lambda: 0.0) == full / 2
    assert backoff.delay(attempt, rng=lambda: 1.0) == full


def test_policy_from_settings() -> None:
    policy = Settings(delivery_limit=7, task_retries=2, task_backoff_s=0.5).retry_policy()

    assert policy.task_delivery_limit == 7
    assert policy.last_task_delivery == 6
    assert policy.synthesis_attempts == 3
    assert policy.synthesis_backoff == Backoff(0.5, 30.0)
    assert policy == RetryPolicy.from_settings(
        Settings(delivery_limit=7, task_retries=2, task_backoff_s=0.5)
    )


@pytest.mark.parametrize(
    ("status", "transient"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False), (413, False)],
)
def test_transient_statuses(status: int, transient: bool) -> None:
    assert RetryPolicy().is_transient_status(status) is transient


# --- limits ------------------------------------------------------------------------------------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_limits() -> dict[str, str]:
    """The README's "Limits" table: first column → second column."""
    text = README.read_text()
    section = text.split("## Limits", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows[1:]]
    return {row[0]: row[1] for row in cells}


def test_the_readme_limits_table_says_what_the_limits_module_says() -> None:
    table = readme_limits()

    def number(value: float) -> str:
        return f"{value:,}"

    def size(n_bytes: int) -> str:
        gib, mib = divmod(n_bytes, 2**30)
        return f"{gib} GiB" if not mib else f"{n_bytes // 2**20} MiB"

    expected = {
        "text per synthesis request": f"{number(limits.MAX_SEGMENT_CHARS)} characters (413 above)",
        "`POST /v1/audio/speech` input": f"{number(limits.MAX_SPEECH_INPUT_CHARS)} characters",
        "document upload": f"{limits.MAX_UPLOAD_BYTES // 2**20} MiB",
        "segments per document": f"{number(limits.MAX_SEGMENTS_PER_DOCUMENT)} sentences",
        "lines per document": number(limits.MAX_LINES),
        "one paragraph": f"{number(limits.MAX_BLOCK_CHARS)} characters",
        "nesting of lists and quotes": f"{limits.MAX_NESTING_DEPTH} levels",
        "EPUB/DOCX unpacked": (
            f"{limits.MAX_UNPACKED_BYTES // 2**20} MiB, "
            f"{number(limits.MAX_ARCHIVE_MEMBERS)} files, "
            f"{limits.MAX_COMPRESSION_RATIO}:1 compression"
        ),
        "PDF pages": number(limits.MAX_PDF_PAGES),
        "time to read one document": f"{limits.PARSE_TIMEOUT_S:g} s",
        "memory of a document reader": f"{limits.PARSE_MEMORY_BYTES // 2**30} GiB",
        "document readers at once": f"{limits.PARSE_WORKERS} processes",
        "longest sentence": f"{limits.MAX_SENTENCE_CHARS} characters per model call",
        "longest sentence of a document": f"{number(limits.MAX_SEGMENT_CHARS)} characters",
        "pause asked for in SSML or pieces": f"{number(limits.MAX_BREAK_MS)} ms",
        "lexicon entries per project": number(limits.MAX_LEXICON_ENTRIES),
        "lexicon entry": (
            f"{limits.MAX_LEXICON_GRAPHEME_CHARS} characters written, "
            f"{limits.MAX_LEXICON_PRONUNCIATION_CHARS} characters read as"
        ),
        "speed": f"{limits.SPEED_MIN} to {limits.SPEED_MAX}",
        "pause between sentences": f"{limits.SENTENCE_PAUSE_MS} ms",
        "pause after a clause cut at a comma": f"{limits.CLAUSE_PAUSE_MS} ms",
        "pause between paragraphs": f"{limits.PARAGRAPH_PAUSE_MS} ms",
        "voice upload (`POST /v1/voices`)": f"{size(limits.MAX_VOICE_UPLOAD_BYTES)} request body",
        "unpacked voice archive": f"{size(limits.MAX_VOICE_UNPACKED_BYTES)} in all",
        "entries in a voice archive": number(limits.MAX_VOICE_ARCHIVE_ENTRIES),
        "voice sample text": f"{number(limits.MAX_VOICE_SAMPLE_CHARS)} characters",
        "voice validation time": f"{limits.VOICE_VALIDATE_TIMEOUT_S:.0f} s",
        "voice validation memory": f"{size(limits.VOICE_VALIDATE_MEMORY_MB * 2**20)} address space",
        # streaming and lanes (issue 14)
        "WebSocket stream: text waiting for a sentence end": (
            f"{number(limits.STREAM_MAX_BUFFER_CHARS)} characters"
        ),
        "WebSocket stream: one text message": (
            f"{number(limits.STREAM_MAX_MESSAGE_CHARS)} characters"
        ),
        "WebSocket stream: sentences ahead of a slow reader": str(limits.STREAM_MAX_PENDING),
        "WebSocket stream: idle time": f"{limits.STREAM_IDLE_TIMEOUT_S:.0f} s",
        "interactive synthesis at once, per API replica": (
            f"{limits.INTERACTIVE_CONCURRENCY} calls"
        ),
        "wait for an interactive slot": f"{limits.INTERACTIVE_MAX_WAIT_S:.0f} s",
        "a book's sentence yielding to interactive work (embedded)": (
            f"{limits.BULK_YIELD_MAX_S:.0f} s at most"
        ),
        # Issue 13: object storage, jobs, webhooks.
        "unreferenced segment audio object kept": f"{limits.AUDIO_ORPHAN_GRACE_S:,.0f} s",
        "presigned URL of a job output": f"{number(limits.PRESIGN_TTL_S)} s",
        "webhook retries": f"for {limits.WEBHOOK_RETRY_FOR_S:,.0f} s",
        "one webhook request": f"{limits.WEBHOOK_TIMEOUT_S:g} s",
        "`Idempotency-Key` header": f"{limits.MAX_IDEMPOTENCY_KEY_CHARS} characters",
        "callback URL": f"{number(limits.MAX_CALLBACK_URL_CHARS)} characters",
        # Production outputs (issue 10).
        "audiobook exports kept per API replica": f"{limits.MAX_EXPORTS_KEPT} finished",
        "project cover image": (
            f"{size(limits.MAX_COVER_BYTES)}, JPEG or PNG, "
            f"{number(limits.MAX_COVER_PIXELS)} pixels (width × height) at most"
        ),
        # Reliability (issue 16).
        "time a task waits for an unavailable voice server": f"{limits.TASK_RETRY_BUDGET_S:.0f} s",
        "ids, `limit` and `offset` in requests": number(limits.MAX_ID),
        "multipart file name": f"{limits.MAX_FILENAME_CHARS} characters",
        "expensive requests per client (uploads, speech, conversions, re-synthesis, previews)": (
            f"{limits.CLIENT_CONCURRENCY} at once, "
            f"{number(limits.CLIENT_RATE_PER_MINUTE)} per minute"
        ),
        "other request bodies (JSON)": f"{limits.MAX_JSON_BODY_BYTES // 2**20} MiB",
    }
    assert set(table) == set(expected)
    for name, value in expected.items():
        assert table[name].startswith(value), (name, table[name], value)
    assert re.search(r"`contract/limits.py`", README.read_text())


def test_settings_and_handler_defaults_come_from_the_limits() -> None:
    from handlers.speech import ServiceOptions
    from text_processing.limits import DocumentLimits

    settings = Settings()
    assert settings.max_speech_chars == limits.MAX_SPEECH_INPUT_CHARS
    assert settings.max_upload_bytes == limits.MAX_UPLOAD_BYTES
    assert settings.max_segments == limits.MAX_SEGMENTS_PER_DOCUMENT
    assert (settings.max_lines, settings.max_block_chars, settings.max_nesting_depth) == (
        limits.MAX_LINES,
        limits.MAX_BLOCK_CHARS,
        limits.MAX_NESTING_DEPTH,
    )
    assert (settings.max_unpacked_bytes, settings.max_archive_members, settings.max_pdf_pages) == (
        limits.MAX_UNPACKED_BYTES,
        limits.MAX_ARCHIVE_MEMBERS,
        limits.MAX_PDF_PAGES,
    )
    assert (settings.parse_timeout_s, settings.parse_memory_bytes, settings.parse_workers) == (
        limits.PARSE_TIMEOUT_S,
        limits.PARSE_MEMORY_BYTES,
        limits.PARSE_WORKERS,
    )
    assert settings.max_lexicon_entries == limits.MAX_LEXICON_ENTRIES
    assert settings.max_voice_upload_bytes == limits.MAX_VOICE_UPLOAD_BYTES
    assert settings.max_voice_unpacked_bytes == limits.MAX_VOICE_UNPACKED_BYTES
    assert settings.voice_validate_timeout_s == limits.VOICE_VALIDATE_TIMEOUT_S
    assert settings.voice_validate_memory_mb == limits.VOICE_VALIDATE_MEMORY_MB
    options = ServiceOptions()
    assert options.max_text_chars == limits.MAX_SEGMENT_CHARS
    assert options.chunk_chars == limits.MAX_SENTENCE_CHARS
    documents = DocumentLimits()
    assert (documents.max_segment_chars, documents.timeout_s, documents.max_depth) == (
        limits.MAX_SEGMENT_CHARS,
        limits.PARSE_TIMEOUT_S,
        limits.MAX_NESTING_DEPTH,
    )
    assert (options.sentence_pause_ms, options.clause_pause_ms) == (
        limits.SENTENCE_PAUSE_MS,
        limits.CLAUSE_PAUSE_MS,
    )
