"""One settings object per process, read from ``VOXMILL_*`` environment variables.

Build it with :func:`get_settings` (cached) and pass it to what needs it; nothing reads the
environment at import time.
"""

from __future__ import annotations

import ipaddress
import json
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contract import limits
from contract.retry import RetryPolicy

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "guest", "secret", "voxmill"})
# Roles a key can carry in VOXMILL_API_KEYS ("key:admin"); a key without one is a plain user.
API_KEY_ROLES = frozenset({"admin", "user"})


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
    # (Kept for compatibility: a registered voice carries its pool instead, see torchserve_pools.)
    voice_routes: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # JSON object pool name ("cpu", "gpu") -> TorchServe inference URL. A registered voice names
    # its pool; tasks carry it, so workers route without a database.
    torchserve_pools: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # TorchServe's management API (loopback or cluster network only), per pool; "" = the API does
    # not register voices itself (in Kubernetes each TorchServe pod's voice-sync sidecar does).
    torchserve_management_url: str = ""
    torchserve_management_pools: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # TorchServe's metrics endpoint (no token), for GET /v1/voices/{name}/health.
    torchserve_metrics_url: str = ""
    # The key file holding TorchServe's management key (default: torchserve_key_file).
    torchserve_management_key_file: Path | None = None
    # Voice uploads: off where the API cannot write the model store TorchServe reads; body size,
    # total unpacked size, and the validation sandbox's limits.
    voice_uploads: bool = True
    max_voice_upload_bytes: int = limits.MAX_VOICE_UPLOAD_BYTES
    max_voice_unpacked_bytes: int = limits.MAX_VOICE_UNPACKED_BYTES
    voice_validate_timeout_s: float = limits.VOICE_VALIDATE_TIMEOUT_S
    voice_validate_memory_mb: int = limits.VOICE_VALIDATE_MEMORY_MB
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
    # Reliability (issue 16): how long a task waits for an unavailable voice server; consecutive
    # outage errors that open a worker's circuit breaker; per-client limits on expensive routes;
    # how often the API looks for segments stuck in ``queued``.
    task_retry_budget_s: float = Field(default=limits.TASK_RETRY_BUDGET_S, gt=0)
    breaker_failures: int = Field(default=3, ge=1)
    client_concurrency: int = Field(default=limits.CLIENT_CONCURRENCY, ge=0)
    client_rate_per_minute: int = Field(default=limits.CLIENT_RATE_PER_MINUTE, ge=0)
    stuck_sweep_s: float = Field(default=60.0, gt=0)

    # API: how often the outbox relay looks for rows another replica (or a crash) left behind;
    # a commit in this process wakes it at once.
    outbox_poll_s: float = 1.0
    # API: seconds between SSE keep-alive comments, so proxies do not close idle streams.
    sse_heartbeat_s: float = 15.0
    # Embedded mode: synthesis threads inside the API process.
    embedded_workers: int = 2

    # Streaming and lanes (issue 14): the WebSocket stream's bounds, interactive admission per API
    # replica, and the lane split. ``priority_lane`` off puts everything in one queue and one
    # pool, as before lanes existed (the "before" of bench/priority_bench.py).
    stream_max_buffer_chars: int = limits.STREAM_MAX_BUFFER_CHARS
    stream_max_pending: int = Field(default=limits.STREAM_MAX_PENDING, ge=1)
    stream_idle_timeout_s: float = Field(default=limits.STREAM_IDLE_TIMEOUT_S, gt=0)
    interactive_concurrency: int = Field(default=limits.INTERACTIVE_CONCURRENCY, ge=1)
    interactive_max_wait_s: float = Field(default=limits.INTERACTIVE_MAX_WAIT_S, ge=0)
    bulk_yield_max_s: float = Field(default=limits.BULK_YIELD_MAX_S, ge=0)
    priority_lane: bool = True
    # The TorchServe the interactive lane uses (REST speech, WebSocket, interactive workers);
    # "" = the same as everything else (torchserve_url / routes / pools).
    interactive_torchserve_url: str = ""
    # -- Object storage, jobs, webhooks, bucket ingest (issue 13) -----------------------------
    # Where segment audio lives: "database" (rows, the default) or "objects" (the object store
    # below, content-addressed keys; Postgres keeps the keys).
    audio_store: Literal["database", "objects"] = "database"
    # The object store: "local" (a directory per bucket under object_store_dir; embedded mode)
    # or "s3" (any S3-compatible endpoint; OCI Object Storage's S3 Compatibility API in
    # production: https://<namespace>.compat.objectstorage.<region>.oraclecloud.com).
    object_store: Literal["local", "s3"] = "local"
    object_store_dir: Path | None = None
    s3_endpoint_url: str = ""
    # Presigned download URLs are signed for this endpoint (what clients reach); "" = the same.
    s3_public_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    # Empty keys = boto3's default credential chain (AWS_* variables, a mounted profile).
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    audio_bucket: str = "voxmill-audio"
    audio_prefix: str = "segments/"
    audio_orphan_grace_s: float = limits.AUDIO_ORPHAN_GRACE_S
    audio_sweep_s: float = 600.0
    # Buckets a job may read its document from and write its outputs to.
    job_buckets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    job_poll_s: float = 1.0
    presign_ttl_s: int = limits.PRESIGN_TTL_S
    # Standard Webhooks secret ("whsec_" + base64); callbacks are refused without one.
    webhook_secret: str = ""
    # CIDRs a callback may reach although private/loopback/link-local (e.g. "10.0.0.0/8").
    webhook_allow_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    webhook_retry_for_s: float = limits.WEBHOOK_RETRY_FOR_S
    webhook_timeout_s: float = limits.WEBHOOK_TIMEOUT_S
    webhook_backoff_s: float = 5.0
    # Bucket ingest: documents created under ingest_bucket/ingest_prefix become jobs; outputs go
    # to ingest_output_bucket/ingest_output_prefix under the same name. The events endpoint needs
    # ingest_token (HTTP Basic password or Bearer token); the poller runs when ingest_poll_s > 0.
    ingest_bucket: str = ""
    ingest_prefix: str = ""
    ingest_output_bucket: str = ""
    ingest_output_prefix: str = ""
    ingest_voice: str = ""
    ingest_format: str = "flac"
    ingest_subtitles: Annotated[list[str], NoDecode] = Field(default_factory=list)
    ingest_callback_url: str = ""
    ingest_token: str = ""
    ingest_poll_s: float = 0.0

    @field_validator("job_buckets", "webhook_allow_networks", "ingest_subtitles", mode="before")
    @classmethod
    def _parse_lists(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("webhook_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as e:
                raise ValueError(f"webhook_allow_networks: {net!r} is not a CIDR") from e
        return value

    @model_validator(mode="after")
    def _callbacks_need_a_secret(self) -> Settings:
        if self.ingest_callback_url and not self.webhook_secret:
            raise ValueError("VOXMILL_INGEST_CALLBACK_URL needs VOXMILL_WEBHOOK_SECRET to sign")
        return self

    def effective_object_store_dir(self) -> Path:
        """The local object store's directory (default: ``<data_dir>/objects``)."""
        return self.object_store_dir or self.data_dir / "objects"

    # Production outputs (issue 10). JSON object OpenAI voice name -> configured voice, e.g.
    # {"nova": "kim"}; OpenAI names not listed mean default_voice (api/openai_compat.py).
    voice_aliases: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)

    @field_validator("voice_aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(
                    'must be a JSON object like {"alloy": "joe", "nova": "kim"}'
                ) from e
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
        return value

    @field_validator(
        "voice_routes", "torchserve_pools", "torchserve_management_pools", mode="before"
    )
    @classmethod
    def _parse_routes(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except json.JSONDecodeError as e:
                raise ValueError(
                    'must be a JSON object like {"joe": "http://ts:8080"} or '
                    '{"cpu": "http://ts-cpu:8080"}'
                ) from e
        return value

    @field_validator("torchserve_management_url")
    @classmethod
    def _private_management(cls, value: str) -> str:
        if value and not is_internal_url(value):
            raise ValueError(
                "VOXMILL_TORCHSERVE_MANAGEMENT_URL must point at loopback or the cluster network "
                f"(127.0.0.1, a *.svc name, a private address), not {value!r}"
            )
        return value

    @field_validator("torchserve_management_pools")
    @classmethod
    def _private_management_pools(cls, value: dict[str, str]) -> dict[str, str]:
        for pool, url in value.items():
            if not is_internal_url(url):
                raise ValueError(
                    f"management URL of pool {pool!r} must be on loopback or the cluster network"
                )
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
        if any(k.lower() in PLACEHOLDER_SECRETS for k in self.api_key_roles()):
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

    def torchserve_for(self, voice: str, pool: str | None = None) -> str:
        """The TorchServe inference base URL that serves ``voice`` (in ``pool`` if given)."""
        if pool and pool in self.torchserve_pools:
            return self.torchserve_pools[pool]
        return self.voice_routes.get(voice, self.torchserve_url)

    def management_url_for(self, pool: str | None) -> str:
        """The management API of ``pool``'s TorchServe ("" when the API registers nothing)."""
        if pool and pool in self.torchserve_management_pools:
            return self.torchserve_management_pools[pool]
        return self.torchserve_management_url

    def api_key_roles(self) -> dict[str, frozenset[str]]:
        """Each configured API key with its roles.

        ``VOXMILL_API_KEYS`` entries are ``key`` (a user) or ``key:role`` (``key:admin``); a
        suffix that is not a known role stays part of the key, so older keys that contain a
        colon keep working.
        """
        roles: dict[str, frozenset[str]] = {}
        for entry in self.api_keys:
            key, sep, role = entry.rpartition(":")
            if sep and key and role in API_KEY_ROLES:
                roles[key] = roles.get(key, frozenset()) | {role}
            else:
                roles[entry] = roles.get(entry, frozenset()) | {"user"}
        return roles

    def management_key(self) -> str:
        """TorchServe's management key, read from its key file ("" when unknown)."""
        path = self.torchserve_management_key_file or self.torchserve_key_file
        if path and path.exists():
            keys = json.loads(path.read_text())
            return str(keys.get("management", {}).get("key", ""))
        return ""

    def torchserve_auth_token(self) -> str:
        """The inference token: the explicit setting, else read from TorchServe's key file."""
        if self.torchserve_token:
            return self.torchserve_token
        if self.torchserve_key_file and self.torchserve_key_file.exists():
            keys = json.loads(self.torchserve_key_file.read_text())
            return str(keys.get("inference", {}).get("key", ""))
        return ""


# Private ranges a cluster's pods and services live in (RFC 1918, CGNAT, IPv6 ULA). Not
# ipaddress's is_private, which also counts documentation and other reserved ranges.
_CLUSTER_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)


def is_internal_url(url: str) -> bool:
    """Whether ``url``'s host is loopback, a private address or a cluster-internal name.

    TorchServe's management API registers code to run: Voxmill never sends its key anywhere else.
    """
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Kubernetes names: "svc", "svc.ns", "svc.ns.svc", "svc.ns.svc.cluster.local".
        return "." not in host or host.endswith((".svc", ".cluster.local"))
    return address.is_loopback or any(address in net for net in _CLUSTER_NETWORKS)


@lru_cache
def get_settings() -> Settings:
    """The process's settings, built once from the environment."""
    return Settings()
