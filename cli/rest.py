"""The REST conversation of ``voxmill convert``: create a project, upload the document, start a
conversion, follow it, and download the project's audio.

Errors end as :class:`ConvertError`, one line for the user.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from cli.progress import ConversionProgress

log = logging.getLogger(__name__)


class ConvertError(Exception):
    """A failure to report as one line."""


@dataclass(frozen=True)
class Outcome:
    """What a successful conversion produced."""

    path: Path
    sentences: int
    size_bytes: int


def _detail(response: httpx.Response) -> str:
    """The API's error message (``{"detail": ...}``), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(str(item.get("msg", item)) for item in detail if isinstance(item, dict))
    return str(detail) if detail else str(body)[:300]


def _checked(response: httpx.Response, doing: str) -> httpx.Response:
    if response.status_code == 401:
        raise ConvertError(
            f"{doing}: the API refused the key (HTTP 401): set VOXMILL_API_KEY or --api-key"
        )
    if response.is_error:
        raise ConvertError(f"{doing}: HTTP {response.status_code}: {_detail(response)}")
    return response


def _json(response: httpx.Response, doing: str) -> dict[str, Any]:
    body = _checked(response, doing).json()
    if not isinstance(body, dict):
        raise ConvertError(f"{doing}: unexpected answer from the API: {str(body)[:200]}")
    return body


def read_document(path: Path) -> bytes:
    """The document's bytes, after the checks the API would make (so a bad file fails before any
    server is contacted, with the same message).

    Raises:
        ConvertError: The file is missing, unreadable, empty, binary, not UTF-8 or of a type the
            API does not take.
    """
    from text_processing.formats import UploadError, read_upload
    from text_processing.limits import DocumentLimits
    from text_processing.structure import DocumentError

    if not path.exists():
        raise ConvertError(f"{path}: no such file")
    if path.is_dir():
        raise ConvertError(f"{path} is a folder; give a document file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConvertError(f"{path}: cannot read it: {e.strerror or e}") from e
    try:
        # The size limit is the server's to enforce (its setting may differ from ours).
        decoded = read_upload(
            data,
            filename=path.name,
            content_type=None,
            limits=DocumentLimits(max_bytes=max(len(data), 1)),
        )
        text = decoded.text
    except (UploadError, DocumentError) as e:
        raise ConvertError(f"{path}: {e}") from e
    if not text.strip():
        raise ConvertError(f"{path} holds only blank space: nothing to convert")
    return data


def _first_error(client: httpx.Client, project_id: int) -> str | None:
    """The error of the first failed sentence, found through the project's chapters; ``None``
    when it cannot be found (the count of failures is reported either way)."""
    try:
        project = client.get(f"/v1/projects/{project_id}")
        if project.status_code != 200:
            return None
        for chapter in project.json().get("chapters", []):
            if not chapter.get("counts", {}).get("failed"):
                continue
            detail = client.get(f"/v1/chapters/{chapter['id']}")
            if detail.status_code != 200:
                return None
            for block in detail.json().get("blocks", []):
                for segment in block.get("segments", []):
                    if segment.get("status") == "failed" and segment.get("last_error"):
                        return f"sentence {segment.get('id')}: {segment['last_error']}"
    except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
        log.info("could not look up the first failed sentence", exc_info=True)
    return None


def run_conversion(
    client: httpx.Client,
    *,
    document: Path,
    data: bytes,
    output: Path,
    fmt: str,
    voice: str | None,
    name: str,
    progress: ConversionProgress,
    poll_s: float,
    timeout_s: float | None = None,
) -> Outcome:
    """Convert ``data`` (the document's bytes) to ``output`` through the API behind ``client``.

    Raises:
        ConvertError: Any step failed, or some sentences failed to synthesize (the message says
            how many and gives the first error), or ``timeout_s`` passed.
    """
    body: dict[str, Any] = {"name": name}
    if voice:
        body["voice"] = voice
    project = _json(client.post("/v1/projects", json=body), "creating the project")
    project_id = int(project["id"])

    files = {"file": (document.name, data, "application/octet-stream")}
    try:
        upload = _json(
            client.post(f"/v1/projects/{project_id}/documents", files=files),
            f"uploading {document.name}",
        )
    except (ConvertError, httpx.HTTPError):
        # The project exists only to hold this document: a refused upload leaves none behind.
        _delete_project(client, project_id)
        raise
    log.info("project %d: document uploaded (%s sentences)", project_id, upload.get("segments"))

    conversion = _json(
        client.post(f"/v1/projects/{project_id}/conversions", json={}), "starting the conversion"
    )
    status = _follow(
        client,
        conversion,
        progress,
        poll_s=poll_s,
        timeout_s=timeout_s,
    )

    failed, total = int(status.get("failed") or 0), int(status.get("total") or 0)
    if failed:
        first = _first_error(client, project_id)
        raise ConvertError(
            f"{failed} of {total} sentences failed to synthesize (project {project_id})"
            + (f"; first error: {first}" if first else "")
        )
    size = _download(client, project_id, fmt, output)
    return Outcome(path=output, sentences=total, size_bytes=size)


def _delete_project(client: httpx.Client, project_id: int) -> None:
    """Delete the project made for a document the API refused; a failure to delete is logged
    (the upload's error is the one to report)."""
    try:
        response = client.delete(f"/v1/projects/{project_id}")
    except httpx.HTTPError as e:
        log.warning("could not delete the empty project %d: %s", project_id, e)
        return
    if response.is_error and response.status_code != 404:
        log.warning(
            "could not delete the empty project %d: HTTP %d: %s",
            project_id,
            response.status_code,
            _detail(response),
        )


# The API sends a keep-alive every 15 s by default (VOXMILL_SSE_HEARTBEAT_S); a stream silent for
# this long is dead, and the conversion is followed by polling instead.
EVENTS_READ_TIMEOUT_S = 60.0


def _follow(
    client: httpx.Client,
    conversion: dict[str, Any],
    progress: ConversionProgress,
    *,
    poll_s: float,
    timeout_s: float | None,
) -> dict[str, Any]:
    """Follow the conversion until it has finished: on the project's live events (each finished
    sentence carries the conversion's progress, so the end is seen the moment it is stored), or
    by polling ``GET /v1/conversions/{id}`` every ``poll_s`` where the events stream is not
    available (an older or a proxied API)."""
    conversion_id = int(conversion["id"])
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    status = conversion
    try:
        try:
            for status in _events(client, conversion, poll_s=poll_s):
                progress.update(status)
                if _finished(status):
                    return status
                _check_deadline(deadline, timeout_s, status)
        except (httpx.HTTPError, ValueError) as e:
            log.info("following the conversion by polling (no live events: %s)", e)
        while True:
            progress.update(status)
            if _finished(status):
                return status
            _check_deadline(deadline, timeout_s, status)
            time.sleep(poll_s)
            status = _json(
                client.get(f"/v1/conversions/{conversion_id}"), "following the conversion"
            )
    finally:
        progress.close()


def _check_deadline(
    deadline: float | None, timeout_s: float | None, status: dict[str, Any]
) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ConvertError(
            f"the conversion did not finish within {timeout_s:g} s "
            f"({status.get('percent', 0)}% done); it goes on in the API: "
            f"GET /v1/conversions/{status.get('id')}"
        )


def _events(
    client: httpx.Client, conversion: dict[str, Any], *, poll_s: float
) -> Iterator[dict[str, Any]]:
    """The conversion's progress as it changes, from ``GET /v1/projects/{id}/events``.

    Yields the status read once the stream is open (nothing is missed between the start and the
    subscription), then the ``conversion`` of every event about this conversion; also a fresh
    status after a keep-alive comes with no event for ``poll_s`` × 20, in case events were lost.

    Raises:
        httpx.HTTPError: The stream could not be opened or broke.
        ValueError: The stream is not an event stream.
    """
    conversion_id = int(conversion["id"])
    project_id = int(conversion["project_id"])
    url = f"/v1/projects/{project_id}/events"
    read_s = EVENTS_READ_TIMEOUT_S
    with connect_sse(client, "GET", url, timeout=httpx.Timeout(10.0, read=read_s)) as source:
        source.response.raise_for_status()
        last = time.monotonic()
        for event in source.iter_sse():
            if event.event == "snapshot":
                # Subscribed: read the status now, so nothing between start and here is missed.
                last = time.monotonic()
                yield _json(
                    client.get(f"/v1/conversions/{conversion_id}"), "following the conversion"
                )
                continue
            if event.event in ("segment", "conversion") and event.data:
                data = json.loads(event.data)
                progress = data.get("conversion") if event.event == "segment" else data
                if isinstance(progress, dict) and progress.get("id") == conversion_id:
                    last = time.monotonic()
                    yield progress
                    continue
            if time.monotonic() - last > 20 * poll_s:
                last = time.monotonic()
                yield _json(
                    client.get(f"/v1/conversions/{conversion_id}"), "following the conversion"
                )


def _finished(status: dict[str, Any]) -> bool:
    state = status.get("state") or status.get("status")
    if state in ("finished", "done", "failed", "completed"):
        return True
    total = int(status.get("total") or 0)
    return int(status.get("done") or 0) + int(status.get("failed") or 0) >= total > 0


def _download(client: httpx.Client, project_id: int, fmt: str, output: Path) -> int:
    """Stream the project's audio into ``output`` (via a temporary file, so a failed download
    never leaves a truncated file under the requested name)."""
    partial = output.with_name(f".{output.name}.part")
    try:
        with client.stream(
            "GET", f"/v1/projects/{project_id}/audio", params={"format": fmt}
        ) as response:
            if response.is_error:
                response.read()
                _checked(response, "downloading the audio")
            with partial.open("wb") as out:
                for block in response.iter_bytes(1 << 16):
                    out.write(block)
        size = partial.stat().st_size
        partial.replace(output)
    except OSError as e:
        raise ConvertError(f"cannot write {output}: {e.strerror or e}") from e
    finally:
        partial.unlink(missing_ok=True)
    return size
