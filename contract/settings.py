"""One settings object per process, read from ``VOXMILL_*`` environment variables.

Build it with :func:`get_settings` (cached) and pass it to what needs it; nothing reads the
environment at import time.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract import limits
from contract.retry import RetryPolicy

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "guest", "secret", "voxmill"})


class Mode(StrEnum):
    """How the processes talk to each other."""

    EMBEDDED = "embedded"
    DISTRIBUTED = "distributed"


class Settings(BaseSettings):
    """Every knob of every Voxmill process.

    Attributes are read from ``VOXMILL_<NAME>`` (case-insensitive). Defaults give the embedded
    mode on a developer machine.
    """

    model_config = SettingsConfigDict(env_prefix="VOXMILL_", extra="ignore")

    mode: Mode = Mode.EMBEDDED
    environment: str = Field(
        default="local", description="local, test or production; secrets are checked outside local"
    )
    data_dir: Path = Path(".run")

    database_url: str = ""
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    torchserve_url: str = ""
    torchserve_token: str = ""
    torchserve_key_file: Path | None = None
    torchserve_timeout_s: float = 120.0
    # JSON object voice -> TorchServe inference URL; voices not listed go to torchserve_url.
    voice_routes: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    default_voice: str = "joe"
    model_store: Path = Path("model-store")

    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000

    queue_prefix: str = "voxmill"
    # Retries and deliveries: read through retry_policy(), never one by one.
    delivery_limit: int = 5
    prefetch: int = 4
    heartbeat_s: int = 30
    blocked_timeout_s: float = 60.0
    task_retries: int = 3
    # First back-off before a worker retries a transient TorchServe failure; doubles per retry.
    task_backoff_s: float = 1.0

    max_upload_bytes: int = limits.MAX_UPLOAD_BYTES
    max_segments: int = limits.MAX_SEGMENTS_PER_DOCUMENT
    max_speech_chars: int = limits.MAX_SPEECH_INPUT_CHARS
    # Documents: parsed in a pool of worker processes, each document under a deadline and each
    # process under an address-space limit (killed and replaced when it overruns).
    max_nesting_depth: int = limits.MAX_NESTING_DEPTH
    max_block_chars: int = limits.MAX_BLOCK_CHARS
    max_lines: int = limits.MAX_LINES
    max_unpacked_bytes: int = limits.MAX_UNPACKED_BYTES
    max_archive_members: int = limits.MAX_ARCHIVE_MEMBERS
    max_pdf_pages: int = limits.MAX_PDF_PAGES
    parse_timeout_s: float = limits.PARSE_TIMEOUT_S
    parse_memory_bytes: int = limits.PARSE_MEMORY_BYTES
    parse_workers: int = limits.PARSE_WORKERS
    max_lexicon_entries: int = limits.MAX_LEXICON_ENTRIES

    # API: how often the outbox relay looks for rows another replica (or a crash) left behind;
    # a commit in this process wakes it at once.
    outbox_poll_s: float = 1.0
    # API: seconds between SSE keep-alive comments, so proxies do not close idle streams.
    sse_heartbeat_s: float = 15.0
    # Embedded mode: synthesis threads inside the API process.
    embedded_workers: int = 2

    @field_validator("voice_routes", mode="before")
    @classmethod
    def _parse_routes(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(
                    'VOXMILL_VOICE_ROUTES must be a JSON object like {"joe": "http://ts:8080"}'
                ) from e
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.environment != "production":
            return self
        token_missing = self.torchserve_token.lower() in PLACEHOLDER_SECRETS
        if self.torchserve_url and token_missing and self.torchserve_key_file is None:
            raise ValueError("VOXMILL_TORCHSERVE_TOKEN is a placeholder; set the real token")
        if any(k.lower() in PLACEHOLDER_SECRETS for k in self.api_keys):
            raise ValueError("VOXMILL_API_KEYS contains a placeholder key")
        if "guest:guest@" in self.broker_url and self.mode is Mode.DISTRIBUTED:
            raise ValueError("VOXMILL_BROKER_URL uses the guest account; set real credentials")
        return self

    def retry_policy(self) -> RetryPolicy:
        """The retry and delivery policy these settings configure (see :mod:`contract.retry`)."""
        return RetryPolicy.from_settings(self)

    def effective_database_url(self) -> str:
        """The database URL, defaulting to SQLite under ``data_dir`` in embedded mode."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'voxmill.db').resolve()}"

    def torchserve_for(self, voice: str) -> str:
        """The TorchServe inference base URL that serves ``voice``."""
        return self.voice_routes.get(voice, self.torchserve_url)

    def torchserve_auth_token(self) -> str:
        """The inference token: the explicit setting, else read from TorchServe's key file."""
        if self.torchserve_token:
            return self.torchserve_token
        if self.torchserve_key_file and self.torchserve_key_file.exists():
            keys = json.loads(self.torchserve_key_file.read_text())
            return str(keys.get("inference", {}).get("key", ""))
        return ""


@lru_cache
def get_settings() -> Settings:
    """The process's settings, built once from the environment."""
    return Settings()
