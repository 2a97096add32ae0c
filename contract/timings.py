"""Word and sentence timings: what the voice handler measures and every later stage carries.

The times come from the VITS duration predictor of the voice itself (the per-phoneme frame counts
the decoder uses to size the audio; see ``handlers/timings.py``), not from a second model. They
travel with the audio: the handler's ``X-Timings`` header, the result message's metadata, the
``segments.timings`` column, and the JSON, SubRip and WebVTT downloads.

Times are integer milliseconds from the start of the audio they belong to; :meth:`Timings.shifted`
moves them onto a chapter's or a project's time line.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Span(BaseModel):
    """One timed piece of text: ``[start_ms, end_ms)`` of the audio speaks ``text``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end_ms < self.start_ms:
            raise ValueError(f"span {self.text!r} ends ({self.end_ms}) before it starts")
        return self


class Timings(BaseModel):
    """The words and sentences of one piece of audio, in order, with their times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    words: list[Span] = Field(default_factory=list)
    sentences: list[Span] = Field(default_factory=list)

    def shifted(self, offset_ms: int) -> Timings:
        """The same timings ``offset_ms`` later (a segment placed on a chapter's time line)."""

        def move(spans: list[Span]) -> list[Span]:
            return [
                Span(text=s.text, start_ms=s.start_ms + offset_ms, end_ms=s.end_ms + offset_ms)
                for s in spans
            ]

        return Timings(words=move(self.words), sentences=move(self.sentences))

    @classmethod
    def concatenated(cls, parts: Iterable[tuple[int, Timings]]) -> Timings:
        """One time line from ``(offset_ms, timings)`` pairs (already in order)."""
        words: list[Span] = []
        sentences: list[Span] = []
        for offset, part in parts:
            moved = part.shifted(offset)
            words += moved.words
            sentences += moved.sentences
        return cls(words=words, sentences=sentences)

    def to_header(self) -> str:
        """A compact ASCII form for an HTTP header: ``z:`` and the base64 of the zlib-compressed
        JSON ``{"w": [[text, start, end], ...], "s": [...]}``.

        Servers, proxies and clients cap a response's header block (nginx's default buffer is
        4–8 KiB, httpx's 100 KiB); the words of a 2,000-character segment take about 20 KiB as
        plain JSON and about 6 KiB compressed.
        """
        compact = {
            "w": [[w.text, w.start_ms, w.end_ms] for w in self.words],
            "s": [[s.text, s.start_ms, s.end_ms] for s in self.sentences],
        }
        raw = json.dumps(compact, ensure_ascii=False, separators=(",", ":")).encode()
        return "z:" + base64.b64encode(zlib.compress(raw, 6)).decode("ascii")

    @classmethod
    def from_header(cls, value: str | bytes) -> Timings:
        """Parse :meth:`to_header`'s output (or the plain JSON of :meth:`model_dump_json`).

        Raises:
            ValueError: Not a valid timings header (a ``pydantic.ValidationError`` when the
                JSON is not timings).
        """
        text = value.decode("ascii") if isinstance(value, bytes) else value
        if not text.startswith("z:"):
            return cls.model_validate_json(text)
        try:
            raw = json.loads(zlib.decompress(base64.b64decode(text[2:], validate=True)))
        except (ValueError, zlib.error) as e:
            raise ValueError(f"unreadable timings header: {e}") from e
        if not isinstance(raw, dict):
            raise ValueError("unreadable timings header: not an object")

        def spans(key: str) -> list[dict[str, object]]:
            rows = raw.get(key, [])
            if not isinstance(rows, list) or not all(
                isinstance(r, list) and len(r) == 3 for r in rows
            ):
                raise ValueError(f"unreadable timings header: {key!r} is not a list of triples")
            return [{"text": t, "start_ms": a, "end_ms": b} for t, a, b in rows]

        return cls.model_validate({"words": spans("w"), "sentences": spans("s")})
