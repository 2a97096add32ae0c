"""Audiobook files: one M4B (AAC in MP4) with a chapter marker per chapter, or one tagged file per
chapter. FFmpeg (PyAV) writes the containers and the chapter list, mutagen the tags and the cover;
nothing here frames a container by hand.

Chapters arrive one at a time (:class:`ChapterAudio`), so a long book is encoded as it is read:
memory holds one chapter, the output goes to a file on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from audio.pcm import as_int16
from audio.stream import StreamWriter

# AAC for spoken word: 64 kb/s mono is what audiobook stores deliver (Audible's "high" quality).
M4B_BIT_RATE = 64_000
M4B_RATES = (44100, 48000, 32000, 24000, 22050, 16000)
# What each per-chapter format is tagged with (mutagen): ID3 for MP3, Vorbis comments otherwise.
TAGGED_FORMATS = ("mp3", "flac", "ogg", "opus")


@dataclass(frozen=True)
class BookInfo:
    """What an audiobook file says about itself."""

    title: str
    author: str | None = None
    cover: bytes | None = None  # JPEG or PNG
    cover_type: str | None = None  # image/jpeg or image/png


@dataclass(frozen=True)
class ChapterAudio:
    """One chapter's audio (float or int16 samples) and its title."""

    title: str
    samples: np.ndarray
    sample_rate: int


def write_m4b(
    path: Path,
    chapters: Iterable[ChapterAudio],
    info: BookInfo,
    *,
    gap_ms: int = 0,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, float]]:
    """Write an M4B: AAC audio, one chapter marker per chapter, title/author/cover.

    Args:
        path: Where to write (a seekable file: MP4 writes its index at the end).
        chapters: The chapters in order, all at one sample rate.
        info: Title, author and cover.
        gap_ms: Silence between chapters (part of the chapter before it).
        progress: Called with the number of chapters written so far.

    Returns:
        ``(title, start seconds)`` per chapter, as written.

    Raises:
        ValueError: No chapters, or chapters at different rates.
    """
    import av

    container = av.open(str(path), "w", format="ipod")
    # Written with the header: set before the first packet.
    container.metadata["title"] = info.title
    container.metadata["album"] = info.title
    if info.author:
        container.metadata["artist"] = info.author
        container.metadata["album_artist"] = info.author
    container.metadata["genre"] = "Audiobook"
    stream = None
    rate = 0
    position = 0  # samples written
    marks: list[tuple[str, int, int]] = []
    try:
        for n, chapter in enumerate(chapters):
            if stream is None:
                rate = chapter.sample_rate
                out_rate = rate if rate in M4B_RATES else 44100
                stream = container.add_stream("aac", rate=out_rate, layout="mono")
                stream.bit_rate = M4B_BIT_RATE
            elif chapter.sample_rate != rate:
                raise ValueError("every chapter must be at one sample rate")
            pcm = as_int16(chapter.samples)
            if n and gap_ms:
                gap = np.zeros(rate * gap_ms // 1000, dtype=np.int16)
                position = _encode(container, stream, gap, rate, position)
                marks[-1] = (marks[-1][0], marks[-1][1], position)
            start = position
            position = _encode(container, stream, pcm, rate, position)
            marks.append((chapter.title, start, position))
            if progress is not None:
                progress(n + 1)
        if stream is None:
            raise ValueError("an audiobook needs at least one chapter")
        for packet in stream.encode(None):
            container.mux(packet)
        container.set_chapters(
            [
                {
                    "id": i + 1,
                    "start": round(1000 * a / rate),
                    "end": round(1000 * b / rate),
                    "time_base": Fraction(1, 1000),
                    "metadata": {"title": title},
                }
                for i, (title, a, b) in enumerate(marks)
            ]
        )
    finally:
        container.close()
    if info.cover:
        _mp4_cover(path, info)
    return [(title, a / rate) for title, a, _ in marks]


def _encode(container: object, stream: object, pcm: np.ndarray, rate: int, position: int) -> int:
    import av

    step = rate * 10  # ten seconds per frame handed to PyAV: bounded memory, few calls
    for i in range(0, len(pcm), step):
        piece = pcm[i : i + step]
        frame = av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        frame.time_base = Fraction(1, rate)
        frame.pts = position + i
        for packet in stream.encode(frame):  # type: ignore[attr-defined]
            container.mux(packet)  # type: ignore[attr-defined]
    return position + len(pcm)


def _mp4_cover(path: Path, info: BookInfo) -> None:
    from mutagen.mp4 import MP4, MP4Cover

    kind = MP4Cover.FORMAT_PNG if info.cover_type == "image/png" else MP4Cover.FORMAT_JPEG
    book = MP4(str(path))
    assert book.tags is not None
    book.tags["covr"] = [MP4Cover(info.cover or b"", imageformat=kind)]
    book.save()


def write_chapter_file(
    path: Path,
    chapter: ChapterAudio,
    fmt: str,
    info: BookInfo,
    *,
    track: int,
    tracks: int,
    bit_rate: int | None = None,
) -> None:
    """One chapter as a tagged file: title, album (the book), artist, track n/N, cover.

    Args:
        path: Where to write.
        chapter: Its audio and title.
        fmt: ``mp3`` (ID3v2 tags), ``flac``, ``ogg`` or ``opus`` (Vorbis comments).
        info: The book's title, author and cover.
        track: This chapter's number, from 1.
        tracks: How many chapters the book has.
        bit_rate: A constant bit rate for MP3 (ACX: 192 kb/s), else the encoder's default.

    Raises:
        ValueError: A format that carries no tags here.
    """
    if fmt not in TAGGED_FORMATS:
        raise ValueError(f"chapter files are {', '.join(TAGGED_FORMATS)}, not {fmt!r}")
    with path.open("wb") as out:
        if fmt == "mp3" or fmt == "opus":
            with StreamWriter(fmt, chapter.sample_rate, bit_rate=bit_rate) as writer:
                out.write(writer.write(chapter.samples))
                out.write(writer.close())
        else:
            from audio.codecs import encode_to

            encode_to(out, [chapter.samples], chapter.sample_rate, fmt)
    _tag(path, fmt, chapter.title, info, track, tracks)


def _tag(path: Path, fmt: str, title: str, info: BookInfo, track: int, tracks: int) -> None:
    if fmt == "mp3":
        from mutagen.id3 import APIC, ID3, TALB, TCON, TIT2, TPE1, TPE2, TRCK

        tags = ID3()
        tags.add(TIT2(encoding=3, text=title))
        tags.add(TALB(encoding=3, text=info.title))
        tags.add(TRCK(encoding=3, text=f"{track}/{tracks}"))
        tags.add(TCON(encoding=3, text="Audiobook"))
        if info.author:
            tags.add(TPE1(encoding=3, text=info.author))
            tags.add(TPE2(encoding=3, text=info.author))
        if info.cover:
            mime = info.cover_type or "image/jpeg"
            tags.add(APIC(encoding=3, mime=mime, type=3, desc="Cover", data=info.cover))
        tags.save(str(path))
        return
    import mutagen

    sound = mutagen.File(str(path))
    if sound is None:
        raise ValueError(f"mutagen cannot read the {fmt} file it should tag")
    if sound.tags is None:
        sound.add_tags()
    comments = {
        "title": title,
        "album": info.title,
        "tracknumber": str(track),
        "tracktotal": str(tracks),
        "genre": "Audiobook",
    }
    if info.author:
        comments["artist"] = info.author
    for key, value in comments.items():
        sound.tags[key] = [value]
    sound.save()
