"""Text that arrives a few words at a time (from a language model, a WebSocket client) → the
sentences that are complete so far.

A sentence counts as complete once the next one has begun: only then does the one splitter
(:mod:`text_processing.structure.sentences`) see its end for what it is ("Dr." followed by
"Smith" is no sentence end; "home." followed by "Then" is). :meth:`SentenceBuffer.flush` hands
over whatever is buffered, complete or not (the client's ``flush`` and ``end``).
"""

from __future__ import annotations

from text_processing.structure.sentences import sentence_spans


class BufferFullError(ValueError):
    """More text without a sentence end than the buffer may hold."""


class SentenceBuffer:
    """Accumulate text pieces; take out the sentences that are complete.

    Args:
        max_chars: Text the buffer may hold while no sentence is complete
            (``contract.limits.STREAM_MAX_BUFFER_CHARS``); :meth:`add` raises above it.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._text = ""

    @property
    def pending(self) -> str:
        """The text not handed out yet."""
        return self._text

    def add(self, piece: str) -> list[str]:
        """Append ``piece`` (sent as is: include the spaces between words) and return the
        sentences it completed, in order, whitespace collapsed.

        Raises:
            BufferFullError: The text without a sentence end would exceed ``max_chars``.
        """
        self._text += piece
        spans = list(sentence_spans(self._text))
        if len(spans) < 2:
            if len(self._text) > self.max_chars:
                raise BufferFullError(
                    f"{len(self._text)} characters arrived without a sentence end (the limit is "
                    f"{self.max_chars}); send a flush message to speak what was sent"
                )
            return []
        done = [" ".join(self._text[a:b].split()) for a, b in spans[:-1]]
        self._text = self._text[spans[-1][0] :]
        return done

    def flush(self) -> list[str]:
        """Every buffered sentence, the last one even if it is not finished; empties the buffer."""
        text, self._text = self._text, ""
        return [" ".join(text[a:b].split()) for a, b in sentence_spans(text)]
