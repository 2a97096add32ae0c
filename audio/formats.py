"""The one table of audio formats: media type and which encoder writes each.

Everything Voxmill stores or sends is mono signed 16-bit audio. Three encoders share the work:

- ``wav`` and ``pcm`` are framed here (a 44-byte header, or nothing): exact, and free.
- whole files (:func:`audio.codecs.encode`) of the compressed formats come from libsndfile
  (``soundfile``) when it has the format: its FLAC is about four times faster and a quarter smaller
  than FFmpeg's at default settings, which matters on the storage path (one FLAC per sentence).
- streams (:class:`audio.stream.StreamWriter`), and whole files of formats libsndfile lacks, come
  from FFmpeg through PyAV, as one encoder that keeps its state across chunks: no gaps, no
  per-chunk headers. PyAV's bundled FFmpeg has no libvorbis (its own Vorbis encoder is marked
  experimental), so Ogg Vorbis is written whole only.

A format missing from ``av`` cannot be streamed; one missing from both ``soundfile`` and ``av`` is
framed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AudioFormat:
    """One output format.

    Attributes:
        name: The format's name in the API (``response_format``, ``?format=``).
        media_type: Its HTTP ``Content-Type``.
        soundfile: libsndfile's (container, subtype) for whole files, if it has the format.
        av: FFmpeg's (muxer, encoder) for streams, if it has them.
        av_options: Muxer options for streaming (for example no Xing frame in an MP3 stream: its
            frame count would be written before the length is known).
        av_rates: Sample rates the encoder takes, when it is picky; others are resampled to the
            first of these (for example 48 kHz for Opus).
        can_be_empty: Whether a file of zero samples exists (libsndfile writes no FLAC or MP3 at
            all for none).
    """

    name: str
    media_type: str
    soundfile: tuple[str, str] | None = None
    av: tuple[str, str] | None = None
    av_options: dict[str, str] = field(default_factory=dict)
    av_rates: tuple[int, ...] = ()
    can_be_empty: bool = True

    @property
    def streamable(self) -> bool:
        """Whether :class:`audio.stream.StreamWriter` can write it chunk by chunk."""
        return self.name in FRAMED or self.av is not None


# Framed by audio.codecs itself.
FRAMED = frozenset({"wav", "pcm"})

TABLE: dict[str, AudioFormat] = {
    f.name: f
    for f in (
        AudioFormat("wav", "audio/wav"),
        AudioFormat("pcm", "audio/L16"),
        AudioFormat(
            "flac",
            "audio/flac",
            soundfile=("FLAC", "PCM_16"),
            av=("flac", "flac"),
            can_be_empty=False,
        ),
        AudioFormat(
            "mp3",
            "audio/mpeg",
            soundfile=("MP3", "MPEG_LAYER_III"),
            av=("mp3", "libmp3lame"),
            av_options={"write_xing": "0", "id3v2_version": "0"},
            can_be_empty=False,
        ),
        AudioFormat("ogg", "audio/ogg", soundfile=("OGG", "VORBIS")),
        AudioFormat(
            "opus",
            "audio/ogg; codecs=opus",
            av=("ogg", "libopus"),
            av_rates=(48000, 24000, 16000, 12000, 8000),
        ),
        AudioFormat("aac", "audio/aac", av=("adts", "aac")),
    )
}

FORMATS: tuple[str, ...] = tuple(TABLE)
"""Every format :func:`audio.codecs.encode` writes."""


def lookup(fmt: str) -> AudioFormat:
    """The format named ``fmt`` (any case).

    Raises:
        ValueError: Not a format of :data:`TABLE`.
    """
    found = TABLE.get(fmt.lower())
    if found is None:
        raise ValueError(f"unsupported audio format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return found
