"""A stand-in for TorchServe's ``Context``: enough to run the handler in-process.

Used by the embedded mode and by the handler's unit tests; it records what the handler sets on
each response the way TorchServe's frontend would read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LocalContext:
    """The parts of ``ts.context.Context`` the Voxmill handler uses."""

    model_dir: Path
    model_yaml_config: dict[str, Any] = field(default_factory=dict)
    gpu_id: int | None = None
    model_name: str = "voice"
    headers: dict[int, dict[str, str]] = field(default_factory=dict)
    statuses: dict[int, tuple[int, str]] = field(default_factory=dict)

    @property
    def system_properties(self) -> dict[str, Any]:
        """What TorchServe passes: the extracted archive and the worker's GPU."""
        batch = int(self.model_yaml_config.get("batchSize", 1))
        return {"model_dir": str(self.model_dir), "gpu_id": self.gpu_id, "batch_size": batch}

    def set_response_content_type(self, idx: int, value: str) -> None:
        """Record the item's content type."""
        self.set_response_header(idx, "content-type", value)

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        """Record a response header of item ``idx``."""
        self.headers.setdefault(idx, {})[key] = value

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        """Record the item's HTTP status."""
        self.statuses[idx] = (code, phrase)

    def status(self, idx: int) -> int:
        """The status TorchServe would answer for item ``idx``."""
        return self.statuses.get(idx, (200, ""))[0]
