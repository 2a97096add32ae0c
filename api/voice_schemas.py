"""Request and response bodies of ``/v1/voices`` and of choosing voices in a project."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

VERSION_PATTERN = r"^[0-9]{1,6}$"


class VoiceVersionOut(BaseModel):
    """One version of a registered voice."""

    version: str
    family: str = Field(description="piper or transformers")
    is_default: bool
    created_at: datetime
    created_by: str = Field(description="fingerprint of the API key that uploaded it")
    sample_text: str
    sample_rate: int
    sample_duration_ms: int
    sample_url: str = Field(description="GET it (with the API key) for the validation sample")
    archive_bytes: int
    archive_sha256: str


class VoiceOut(BaseModel):
    """A voice: built in (served from the image) or registered (uploaded, versioned)."""

    id: str
    name: str
    default: bool = Field(default=False, description="the server's default voice")
    builtin: bool = False
    language: str | None = None
    gender: str | None = None
    description: str | None = None
    pool: str | None = None
    default_version: str | None = None
    workers: int | None = None
    batch_size: int | None = None
    max_batch_delay_ms: int | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    sample_url: str | None = None
    versions: list[VoiceVersionOut] = Field(default_factory=list)


class DefaultVersion(BaseModel):
    """Which version becomes the default."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=VERSION_PATTERN, examples=["2"])


class Rollback(BaseModel):
    """Roll back to the version before the current default, or to ``to``."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(default=None, pattern=VERSION_PATTERN)


class VoiceSettings(BaseModel):
    """Serving settings of a voice; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    workers: int | None = Field(default=None, ge=1, le=64, description="TorchServe workers")
    batch_size: int | None = Field(
        default=None, ge=1, le=256, description="for versions registered from now on"
    )
    max_batch_delay_ms: int | None = Field(
        default=None, ge=0, le=10_000, description="for versions registered from now on"
    )
    pool: str | None = Field(
        default=None, pattern=r"^[a-z0-9-]{1,20}$", description="TorchServe pool: cpu or gpu"
    )


class VoiceSettingsOut(BaseModel):
    """The voice after the change, and what TorchServe did."""

    voice: VoiceOut
    changes: list[str]


class VoiceHealth(BaseModel):
    """Whether the voice is served, per version, and its counters."""

    name: str
    healthy: bool | None
    serving: dict[str, Any]
    metrics: dict[str, Any]


class VoiceChoice(BaseModel):
    """The voice of a project, chapter or paragraph. ``voice: null`` on a chapter or paragraph
    goes back to inheriting; ``version: null`` follows the voice's default version."""

    model_config = ConfigDict(extra="forbid")

    voice: str | None = Field(default=None, max_length=100)
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)


class VoiceChoiceOut(BaseModel):
    """The voice now chosen, and where it applies."""

    scope: str
    id: int
    voice: str | None
    version: str | None


class PreviewRequest(BaseModel):
    """A sentence to hear in a voice (to compare voices)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=500)
    version: str | None = Field(default=None, pattern=VERSION_PATTERN)
