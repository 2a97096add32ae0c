"""One streaming audio writer for every format: chunks of samples in, encoded bytes out.

:class:`StreamWriter` keeps one encoder open for the whole stream, so the output is one valid
file or stream, whatever the number of chunks: no per-chunk headers, no encoder padding between
sentences. WAV and raw PCM are framed here (a WAV header whose sizes say "unknown" goes first);
the compressed formats go through FFmpeg with PyAV, writing into a sink that is drained after each
chunk (the muxer is told the output is not seekable, so it never goes back to patch a header).
Which formats it streams is in :mod:`audio.formats`.

Usage::

    writer = StreamWriter("mp3", 22050)
    for samples in sentences:
        yield writer.write(samples)      # may be b"" while the encoder fills a frame
    yield writer.close()                 # flushes the encoder
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from audio.formats import AudioFormat, lookup
from audio.pcm import as_int16, pcm_bytes, wav_stream_header

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)


class _Sink:
    """A write-only, non-seekable file for PyAV's muxer, drained by the writer after each chunk."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def drain(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class StreamWriter:
    """Encode mono audio chunk by chunk into one stream of ``fmt``.

    Args:
        fmt: A streamable format of :mod:`audio.formats` (``wav``, ``pcm``, ``mp3``, ``flac``,
            ``opus``, ``aac``).
        sample_rate: The rate of the samples written; resampled when the encoder cannot take it
            (Opus: 48 kHz).
        bit_rate: A constant bit rate in bits per second for the compressed formats (for
            example 192000 for ACX's MP3); ``None`` keeps the encoder's default.

    Raises:
        ValueError: An unknown format, one that cannot be streamed (``ogg``), or a bad rate.
    """

    def __init__(self, fmt: str, sample_rate: int, *, bit_rate: int | None = None) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be a positive number of Hz, got {sample_rate}")
        self.format: AudioFormat = lookup(fmt)
        if not self.format.streamable:
            raise ValueError(f"{self.format.name} cannot be streamed; encode it whole")
        self.sample_rate = sample_rate
        self.samples_written = 0
        self._closed = False
        self._started = False
        self._sink: _Sink | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.audio.stream.AudioStream | None = None
        self.bit_rate = bit_rate
        if self.format.av is not None and self.format.name not in ("wav", "pcm"):
            self._open_av(*self.format.av)

    def _open_av(self, muxer: str, encoder: str) -> None:
        # PyAV (FFmpeg, ~36 MB) loads with the first compressed stream: WAV/PCM streaming, and
        # the voice handler that imports audio/, never need it.
        import av

        rates = self.format.av_rates
        out_rate = self.sample_rate if not rates or self.sample_rate in rates else rates[0]
        self._sink = _Sink()
        self._container = av.open(self._sink, "w", format=muxer, options=self.format.av_options)
        stream = self._container.add_stream(encoder, rate=out_rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        if self.bit_rate:
            stream.bit_rate = self.bit_rate
        # PyAV resamples each frame to the encoder's sample format, rate and frame size.
        self._stream = stream

    def write(self, samples: np.ndarray) -> bytes:
        """Encode one chunk; returns the bytes ready so far (possibly none).

        Args:
            samples: int16 samples, or floats in [-1, 1], at ``sample_rate``.
        """
        if self._closed:
            raise ValueError("the stream is closed")
        pcm = as_int16(samples)
        head = b""
        if not self._started:
            self._started = True
            if self.format.name == "wav":
                head = wav_stream_header(self.sample_rate)
        self.samples_written += len(pcm)
        if self._stream is None:
            return head + pcm_bytes(pcm)
        if not len(pcm):
            return head
        import av

        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.time_base = Fraction(1, self.sample_rate)
        frame.pts = self.samples_written - len(pcm)
        return head + self._mux(frame)

    def close(self) -> bytes:
        """Flush the encoder and end the stream; returns the last bytes. Idempotent."""
        if self._closed:
            return b""
        self._closed = True
        head = b""
        if not self._started and self.format.name == "wav":
            head = wav_stream_header(self.sample_rate)
        if self._stream is None or self._container is None or self._sink is None:
            return head
        tail = self._mux(None)
        self._container.close()
        return head + tail + self._sink.drain()

    def _mux(self, frame: av.AudioFrame | None) -> bytes:
        assert self._stream is not None and self._container is not None and self._sink is not None
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._sink.drain()

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self._closed = True
            if self._container is not None:
                import av

                try:
                    self._container.close()
                except av.FFmpegError as e:  # already failing; do not hide the first error
                    log.debug("closing an abandoned %s stream: %s", self.format.name, e)
