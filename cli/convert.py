"""``voxmill convert``: a whole document to one audio file, through the REST API.

The same REST calls run in both modes: with ``--api-url`` (or ``VOXMILL_API_URL``) they go to a
running API (distributed or embedded, anywhere); without, the embedded app is started in this
process on a loopback port for the length of the conversion, with this machine's settings (its
SQLite database, so the project also shows up in ``voxmill api`` afterwards).

The calls: create a project, upload the document, start a conversion, poll its progress, and
download the project's audio. Errors end as one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

log = logging.getLogger(__name__)

FORMATS = ("wav", "flac", "mp3", "ogg")
EXIT_FAILED = 1
EXIT_USAGE = 2
POLL_S = 0.5
HTTP_TIMEOUT_S = 60.0
# How long the embedded app may take to start (database migrations, loading nothing else).
STARTUP_TIMEOUT_S = 60.0


class ConvertError(Exception):
    """A failure to report as one line."""


@dataclass(frozen=True)
class Outcome:
    """What a successful conversion produced."""

    path: Path
    sentences: int
    size_bytes: int


# --------------------------------------------------------------------------------------------
# Progress on stderr
# --------------------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """One self-rewriting status line on a terminal; silent when the stream is not a TTY (logs
    and pipes get the final summary only)."""

    WIDTH = 24

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.enabled = stream.isatty()
        self._shown = False

    def update(self, status: dict[str, Any]) -> None:
        """Show a conversion's progress (the body of ``GET /v1/conversions/{id}``)."""
        if not self.enabled:
            return
        total = int(status.get("total") or 0)
        done, failed = int(status.get("done") or 0), int(status.get("failed") or 0)
        percent = float(status.get("percent") or 0.0)
        filled = round(self.WIDTH * percent / 100)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        line = f"{self.label} [{bar}] {percent:5.1f}% {done + failed}/{total} sentences"
        if failed:
            line += f", {failed} failed"
        eta = status.get("eta_s")
        if eta and percent < 100:
            line += f", {_clock(float(eta))} left"
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """End the line so what follows starts on its own."""
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


# --------------------------------------------------------------------------------------------
# The REST conversation
# --------------------------------------------------------------------------------------------


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
    progress: ProgressLine,
    poll_s: float | None = None,
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
    upload = _json(
        client.post(f"/v1/projects/{project_id}/documents", files=files),
        f"uploading {document.name}",
    )
    log.info("project %d: document uploaded (%s sentences)", project_id, upload.get("segments"))

    conversion = _json(
        client.post(f"/v1/projects/{project_id}/conversions", json={}), "starting the conversion"
    )
    status = _follow(
        client,
        conversion,
        progress,
        poll_s=POLL_S if poll_s is None else poll_s,
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


def _follow(
    client: httpx.Client,
    conversion: dict[str, Any],
    progress: ProgressLine,
    *,
    poll_s: float,
    timeout_s: float | None,
) -> dict[str, Any]:
    """Poll ``GET /v1/conversions/{id}`` until the conversion has finished."""
    conversion_id = int(conversion["id"])
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    status = conversion
    try:
        while True:
            progress.update(status)
            if _finished(status):
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise ConvertError(
                    f"the conversion did not finish within {timeout_s:g} s "
                    f"({status.get('percent', 0)}% done); it goes on in the API: "
                    f"GET /v1/conversions/{conversion_id}"
                )
            time.sleep(poll_s)
            status = _json(
                client.get(f"/v1/conversions/{conversion_id}"), "following the conversion"
            )
    finally:
        progress.close()


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


# --------------------------------------------------------------------------------------------
# Where the API runs
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def remote_api(url: str, api_key: str | None) -> Iterator[httpx.Client]:
    """A client for a running API at ``url``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_S) as client:
        try:
            client.get("/healthz", timeout=10.0)
        except httpx.HTTPError as e:
            raise ConvertError(f"no Voxmill API answers at {url}: {e}") from e
        yield client


@contextlib.contextmanager
def serving(app: Any, *, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Serve the ASGI ``app`` on a free loopback port from a thread of this process (its
    lifespan included); yields its base URL and stops it on exit."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="voxmill-embedded-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise ConvertError("the embedded API did not start; run with -v to see why")
            if time.monotonic() > deadline:
                raise ConvertError(f"the embedded API did not start within {startup_timeout_s:g} s")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def embedded_api(api_key: str | None) -> Iterator[httpx.Client]:
    """Run the embedded app (SQLite, in-process queue and voices) in this process for the length
    of the conversion; a client for it."""
    from api.main import create_app
    from contract.settings import Mode, get_settings

    settings = get_settings()
    if settings.mode is not Mode.EMBEDDED:
        settings = settings.model_copy(update={"mode": Mode.EMBEDDED})
    key = api_key or (settings.api_keys[0] if settings.api_keys else None)
    with serving(create_app(settings)) as url, remote_api(url, key) as client:
        yield client


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``voxmill convert`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="voxmill convert",
        description="Convert a .md or .txt document to one audio file.",
    )
    parser.add_argument("document", type=Path, help="the document (.md, .markdown or .txt)")
    parser.add_argument("-o", "--output", type=Path, help="audio file (default: DOCUMENT.wav)")
    parser.add_argument("--voice", help="voice name (default: the server's default voice)")
    parser.add_argument("--format", choices=FORMATS, help="audio format (default: from -o)")
    parser.add_argument("--name", help="project name (default: the document's file name)")
    parser.add_argument(
        "--api-url",
        default=None,
        help="a running Voxmill API (default: VOXMILL_API_URL; unset: run the embedded app here)",
    )
    parser.add_argument("--api-key", default=None, help="its API key (default: VOXMILL_API_KEY)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up after this many seconds"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def _output_and_format(args: argparse.Namespace) -> tuple[Path, str]:
    output: Path | None = args.output
    fmt: str | None = args.format
    if output is None:
        fmt = fmt or "wav"
        return args.document.with_suffix(f".{fmt}"), fmt
    if fmt is None:
        fmt = output.suffix.lstrip(".").lower() or "wav"
        if fmt not in FORMATS:
            raise ConvertError(
                f"cannot tell the audio format from '{output.name}': use a .wav, .flac, .mp3 or "
                ".ogg name, or --format"
            )
    if not output.parent.is_dir():
        raise ConvertError(f"{output.parent}: no such folder for the output file")
    return output, fmt


def cli(argv: list[str] | None = None) -> int:
    """Entry point of ``voxmill convert``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.INFO)
    stderr = sys.stderr
    try:
        output, fmt = _output_and_format(args)
        data = read_document(args.document)
        api_url = args.api_url or os.environ.get("VOXMILL_API_URL") or None
        api_key = args.api_key or os.environ.get("VOXMILL_API_KEY") or None
        api = remote_api(api_url, api_key) if api_url else embedded_api(api_key)
        started = time.monotonic()
        with api as client:
            outcome = run_conversion(
                client,
                document=args.document,
                data=data,
                output=output,
                fmt=fmt,
                voice=args.voice,
                name=args.name or args.document.name,
                progress=ProgressLine(stderr, args.document.name),
                timeout_s=args.timeout,
            )
    except ConvertError as e:
        print(f"voxmill convert: error: {e}", file=stderr)
        return EXIT_FAILED
    except httpx.HTTPError as e:
        print(f"voxmill convert: error: the API connection failed: {e}", file=stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("voxmill convert: interrupted", file=stderr)
        return 130
    print(
        f"wrote {outcome.path}: {outcome.sentences} sentences, {outcome.size_bytes} bytes, "
        f"in {_clock(time.monotonic() - started)}",
        file=stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
