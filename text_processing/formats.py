"""Turn uploaded bytes into document text, or refuse them with a message a user can act on."""

from __future__ import annotations

import logging
import re

from text_processing.splitter import DocFormat

log = logging.getLogger(__name__)

EXTENSIONS: dict[str, DocFormat] = {".txt": "text", ".md": "markdown", ".markdown": "markdown"}
CONTENT_TYPES: dict[str, DocFormat] = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    # What browsers and curl send when they do not know the type: the content check decides.
    "application/octet-stream": "text",
}


class UploadError(ValueError):
    """The uploaded file cannot be used; the message says why and what to do."""


def _human_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _format_for(filename: str | None, content_type: str | None) -> DocFormat:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, ext = name.rpartition(".")
    if dot and stem:
        fmt = EXTENSIONS.get(f".{ext.lower()}")
        if fmt is None:
            raise UploadError(
                f"files of type '.{ext}' are not supported; upload a .txt, .md or .markdown file"
            )
        return fmt
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if not media:
        return "text"
    fmt = CONTENT_TYPES.get(media)
    if fmt is None:
        raise UploadError(
            f"content type '{media}' is not supported; upload plain text (text/plain) or "
            "Markdown (text/markdown), for example a .txt or .md file"
        )
    return fmt


def decode_upload(
    data: bytes, *, filename: str | None, content_type: str | None, max_bytes: int
) -> tuple[str, DocFormat]:
    """Decode an uploaded document and decide whether it is Markdown or plain text.

    The file type comes from the file name's extension (``.txt``, ``.md``, ``.markdown``); without
    one, from the content type; without either, plain text. The text must be UTF-8 (a UTF-8 byte
    order mark is dropped; UTF-16 with a byte order mark, as some editors save, is accepted too).
    Newlines are normalised to ``\\n``.

    Args:
        data: The uploaded bytes.
        filename: The client's file name, if any.
        content_type: The client's media type, if any (parameters such as ``charset`` ignored).
        max_bytes: The largest upload accepted.

    Returns:
        The text and its format, ``"markdown"`` or ``"text"``.

    Raises:
        UploadError: The file is empty, too large, binary, not UTF-8, or of an unsupported type.
    """
    if not data:
        raise UploadError("the file is empty; upload a .txt or .md file that contains text")
    if len(data) > max_bytes:
        raise UploadError(
            f"the file is too large: {_human_size(len(data))} ({len(data)} bytes), over the limit "
            f"of {_human_size(max_bytes)} ({max_bytes} bytes); split the document into smaller "
            "files and upload them one by one"
        )
    fmt = _format_for(filename, content_type)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") and len(data) % 2 == 0:
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise UploadError(
                f"the file starts like UTF-16 text but byte offset {e.start} cannot be decoded; "
                "save it as UTF-8 and upload it again"
            ) from e
    else:
        if b"\x00" in data:
            raise UploadError(
                "the file looks binary (it contains NUL bytes), not text; upload a plain-text "
                "(.txt) or Markdown (.md) file — export other documents to one of these first"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            raise UploadError(
                f"the file is not valid UTF-8 text: byte 0x{data[e.start]:02X} at byte offset "
                f"{e.start} (line {line}) cannot be decoded; save the file as UTF-8 and upload "
                "it again"
            ) from e
    text = text.removeprefix("\ufeff")
    controls = sum(1 for ch in text if (ch < " " and ch not in "\t\n\r\f\v") or ch == "\x7f")
    if controls > 0.1 * len(text):
        raise UploadError(
            "the file looks binary (it is mostly control characters), not text; upload a "
            "plain-text (.txt) or Markdown (.md) file"
        )
    text = _NEWLINES.sub("\n", text)
    log.debug("decoded upload %r: %d bytes, %d chars, %s", filename, len(data), len(text), fmt)
    return text, fmt


_NEWLINES = re.compile("\r\n|[\r\f\v\x85\u2028\u2029]")
