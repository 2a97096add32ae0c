"""Checks on a project's cover image (``PUT /v1/projects/{id}/cover``) before it is stored.

The image's header is read with Pillow (its size, without decoding the pixels) and, for PNG, its
chunks' checksums verified; a JPEG or PNG that does not decode, or one bigger than
``limits.MAX_COVER_PIXELS``, is refused, so every stored cover is one a player can show.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from contract import limits

# The Content-Type a cover is sent with, and Pillow's name for that format.
COVER_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}


class CoverError(ValueError):
    """An image that cannot be a cover; ``too_large`` when only its pixel count is wrong."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


def check_cover(data: bytes, kind: str) -> tuple[int, int]:
    """Check that ``data`` is a readable ``kind`` image of at most ``MAX_COVER_PIXELS``.

    Args:
        data: The image file's bytes.
        kind: ``image/jpeg`` or ``image/png`` (the request's ``Content-Type``).

    Returns:
        The image's width and height in pixels.

    Raises:
        CoverError: Not an image of that type, a damaged one, or one over the pixel limit
            (``too_large``).
    """
    too_large = CoverError(
        f"the cover is over {limits.MAX_COVER_PIXELS:,} pixels (width × height); "
        "send a smaller image",
        too_large=True,
    )
    unreadable = f"the body is not a readable {COVER_FORMATS[kind]} image"
    try:
        with Image.open(io.BytesIO(data), formats=[COVER_FORMATS[kind]]) as image:
            width, height = image.size
            if width * height <= limits.MAX_COVER_PIXELS:
                image.verify()  # PNG: every chunk's checksum; JPEG: its header's markers
    except Image.DecompressionBombError as e:  # Pillow's own limit, far above ours
        raise too_large from e
    except UnidentifiedImageError as e:  # its message names a BytesIO, not the problem
        raise CoverError(unreadable) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CoverError(f"{unreadable} ({e})") from e
    if width * height > limits.MAX_COVER_PIXELS:
        raise too_large
    if width < 1 or height < 1:
        raise CoverError(f"{unreadable} (it has no pixels)")
    return width, height
