"""Reading untrusted documents in worker processes, each under a deadline and a memory limit.

A :class:`DocumentPool` is a ``pebble`` process pool (pebble kills a worker whose task overruns
its deadline and starts a fresh one; ``concurrent.futures`` cannot stop a running task at all).
Every worker lowers its own address-space limit (``RLIMIT_AS``) when it starts, so a document that
needs more memory fails in that worker with a ``MemoryError`` instead of growing the API. The API
awaits the result without holding one of its threads: parsing and splitting never run on the
serving threads, and a stuck parse costs one worker for at most ``timeout_s``.

Workers are started with ``spawn``: the API process runs threads (uvicorn, consumers), and
forking a threaded process can copy a held lock into the child.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from text_processing.formats import UploadError, read_upload
from text_processing.lexicon import Entry, Lexicon
from text_processing.limits import DocumentLimits
from text_processing.structure import ChapterSpec, DocFormat, split_document

log = logging.getLogger(__name__)


class ParseTimeout(UploadError):
    """The document took longer than its deadline to read (its worker was killed)."""


@dataclass(frozen=True)
class ParsedDocument:
    """What a worker returns: the document text, its splitter format, what it was uploaded as,
    and its chapters (segments with their spoken form)."""

    text: str
    fmt: DocFormat
    kind: str
    chapters: list[ChapterSpec]


def parse_document(
    data: bytes,
    *,
    filename: str | None,
    content_type: str | None,
    limits: DocumentLimits,
    lexicon: tuple[Entry, ...] = (),
) -> ParsedDocument:
    """Decode, split and compute the spoken form of one upload (runs inside a worker).

    Raises:
        UploadError: The file cannot be read (see :func:`text_processing.formats.read_upload`).
        DocumentError: Nothing to speak, invalid SSML; LimitError past a limit.
    """
    from text_processing.frontend import spoken_form

    decoded = read_upload(data, filename=filename, content_type=content_type, limits=limits)
    lex = Lexicon(lexicon)
    chapters = split_document(
        decoded.text,
        fmt=decoded.fmt,
        limits=limits,
        spoken=lambda sentence: spoken_form(sentence, lex),
    )
    return ParsedDocument(decoded.text, decoded.fmt, decoded.kind, chapters)


def parse_document_file(
    path: str | os.PathLike[str],
    *,
    filename: str | None,
    content_type: str | None,
    limits: DocumentLimits,
    lexicon: tuple[Entry, ...] = (),
) -> ParsedDocument:
    """:func:`parse_document` of the bytes of the file at ``path`` (runs inside a worker).

    The file is read here, in the worker, so that the process that received the upload never
    holds the whole document and never sends it through the pool's pipe.

    Raises:
        OSError: The file cannot be read.
        UploadError, DocumentError: As :func:`parse_document`.
    """
    data = Path(path).read_bytes()
    return parse_document(
        data, filename=filename, content_type=content_type, limits=limits, lexicon=lexicon
    )


def _ready() -> bool:
    import text_processing.formats.epub
    import text_processing.frontend  # noqa: F401

    return True


def _limit_memory(memory_bytes: int) -> None:
    """Worker initializer: cap this process's address space."""
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError) as e:  # pragma: no cover - platforms without RLIMIT_AS
        logging.getLogger(__name__).warning("cannot limit document worker memory: %s", e)


class DocumentPool:
    """Worker processes that read documents; start lazily, :meth:`close` when done.

    Args:
        workers: How many documents are read at once.
        memory_bytes: Address-space limit of each worker.
    """

    def __init__(self, workers: int, memory_bytes: int) -> None:
        self.workers = max(1, workers)
        self.memory_bytes = memory_bytes
        self._pool: object | None = None

    def _get(self) -> object:
        if self._pool is None:
            from pebble import ProcessPool

            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_limit_memory,
                initargs=(self.memory_bytes,),
                context=multiprocessing.get_context("spawn"),
            )
        return self._pool

    async def parse(
        self,
        data: bytes,
        *,
        filename: str | None,
        content_type: str | None,
        limits: DocumentLimits,
        lexicon: tuple[Entry, ...] = (),
    ) -> ParsedDocument:
        """Read one document given as bytes in a worker, within ``limits.timeout_s``.

        The bytes are pickled through the pool's pipe (another copy of their size in this
        process); :meth:`parse_file` gives the worker a path instead.

        Raises:
            ParseTimeout: Past the deadline (the worker is killed and replaced).
            UploadError: The document cannot be read, or needs more memory than allowed (413).
            DocumentError: As :func:`parse_document`.
        """
        return await self._run(
            parse_document,
            data,
            filename,
            content_type=content_type,
            limits=limits,
            lexicon=lexicon,
        )

    async def parse_file(
        self,
        path: str | os.PathLike[str],
        *,
        filename: str | None,
        content_type: str | None,
        limits: DocumentLimits,
        lexicon: tuple[Entry, ...] = (),
    ) -> ParsedDocument:
        """Read the document in the file at ``path`` in a worker, within ``limits.timeout_s``.

        Only the path crosses to the worker, which reads the file itself; the caller keeps the
        file until this returns (and may delete it after).

        Raises:
            ParseTimeout: Past the deadline (the worker is killed and replaced).
            UploadError: The document cannot be read, or needs more memory than allowed (413).
            DocumentError: As :func:`parse_document`.
            OSError: The worker cannot read the file.
        """
        return await self._run(
            parse_document_file,
            os.fspath(path),
            filename,
            content_type=content_type,
            limits=limits,
            lexicon=lexicon,
        )

    async def _run(
        self,
        function: Callable[..., ParsedDocument],
        source: Any,
        filename: str | None,
        *,
        content_type: str | None,
        limits: DocumentLimits,
        lexicon: tuple[Entry, ...],
    ) -> ParsedDocument:
        pool = self._get()
        future = pool.schedule(  # type: ignore[attr-defined]
            function,
            args=(source,),
            kwargs={
                "filename": filename,
                "content_type": content_type,
                "limits": limits,
                "lexicon": lexicon,
            },
            timeout=limits.timeout_s,
        )
        try:
            result: ParsedDocument = await asyncio.wrap_future(future)
        except FutureTimeout as e:
            log.warning("document %r took over %.0f s to read; refused", filename, limits.timeout_s)
            raise ParseTimeout(
                f"reading the document took longer than {limits.timeout_s:.0f} s, the limit; "
                "split it into smaller documents (or simplify its markup) and try again",
                422,
            ) from e
        except MemoryError as e:
            raise UploadError(
                "reading the document needs more memory than one document may use; split it "
                "into smaller documents and try again",
                413,
            ) from e
        except asyncio.CancelledError:
            future.cancel()  # the client went away: stop the worker's task too
            raise
        except Exception as e:
            from pebble import ProcessExpired

            if isinstance(e, ProcessExpired):
                raise UploadError(
                    f"the document could not be read: its reader stopped ({e}); it may be "
                    "damaged or far too large",
                    422,
                ) from e
            raise
        return result

    def warm(self) -> None:
        """Start the workers now and have them import the readers, so that the first upload
        does not wait for a process to start."""
        self._get().schedule(_ready)  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop the workers (a running parse is abandoned)."""
        if self._pool is not None:
            self._pool.stop()  # type: ignore[attr-defined]
            self._pool.join(timeout=10)  # type: ignore[attr-defined]
            self._pool = None
