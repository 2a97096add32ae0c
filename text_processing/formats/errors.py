"""The error every format reader raises for a file it cannot use."""

from __future__ import annotations


class UploadError(ValueError):
    """The uploaded file cannot be used; the message says why and what to do.

    ``status`` is the HTTP status the API answers with: 413 too large (or unpacks too large),
    415 a type Voxmill does not read or content that does not match the file's name, 422 a file
    of a readable type that cannot be read (corrupt, encrypted, scanned without text).
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[type[UploadError], tuple[str, int]]:
        # Crosses the process boundary of text_processing.isolation with its status.
        return (type(self), (str(self), self.status))


def human_size(n: int) -> str:
    """``5.0 MB``, ``12.3 KB``, ``120 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"
