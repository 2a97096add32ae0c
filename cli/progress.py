"""The conversion's progress on a terminal: one self-rewriting ``tqdm`` bar on stderr.

Silent when the stream is not a terminal (logs and pipes get the final summary only). The time
left is the server's estimate (``eta_s`` of ``GET /v1/conversions/{id}``), not tqdm's own: the
server sees every worker, this process only sees the polls.
"""

from __future__ import annotations

from typing import Any, TextIO

from tqdm import tqdm

BAR_FORMAT = "{desc} [{bar:24}] {percentage:5.1f}% {n}/{total} sentences{postfix}"


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ConversionProgress:
    """A progress bar for one conversion.

    Args:
        stream: Where to draw it (stderr); nothing is drawn unless it is a terminal.
        label: Shown before the bar (the document's name).
    """

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream = stream
        self.label = label
        self.enabled = stream.isatty()
        self._bar: tqdm[Any] | None = None

    def update(self, status: dict[str, Any]) -> None:
        """Show a conversion's progress (the body of ``GET /v1/conversions/{id}``)."""
        if not self.enabled:
            return
        done, failed = int(status.get("done") or 0), int(status.get("failed") or 0)
        total = int(status.get("total") or 0)
        notes = [f"{failed} failed"] if failed else []
        eta = status.get("eta_s")
        if eta and float(status.get("percent") or 0.0) < 100:
            notes.append(f"{clock(float(eta))} left")
        if self._bar is None:  # made from the first status: tqdm draws as it is created
            self._bar = tqdm(
                total=total,
                initial=done + failed,
                postfix=", ".join(notes) or None,
                desc=self.label,
                file=self.stream,
                bar_format=BAR_FORMAT,
                ascii=" #",
                mininterval=0,
                leave=True,
            )
            return
        self._bar.total = total
        self._bar.n = done + failed
        self._bar.set_postfix_str(", ".join(notes), refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """End the bar's line so what follows starts on its own."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
