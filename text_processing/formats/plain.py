"""Plain text and Markdown uploads: bytes → text (UTF-8, or UTF-16 with a byte order mark)."""

from __future__ import annotations

import re

from text_processing.formats.errors import UploadError

_NEWLINES = re.compile("\r\n|[\r\f\v\x85\u2028\u2029]")


def decode_text(data: bytes) -> str:
    """Decode a text upload; newlines become ``\\n`` and a byte order mark is dropped.

    Raises:
        UploadError: Binary content (NUL bytes, mostly control characters) or bytes that are not
            UTF-8 (with the offset and line of the first bad byte).
    """
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
                "the file looks binary (it contains NUL bytes), not text; upload a text, "
                "Markdown, EPUB, Word (.docx), HTML or PDF file",
                status=415,
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
            "the file looks binary (it is mostly control characters), not text",
            status=415,
        )
    return _NEWLINES.sub("\n", text)
