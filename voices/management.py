"""TorchServe's management API, and bringing one TorchServe in line with the voice catalog.

Only Voxmill's own model store is ever registered from: a registration names an archive by its
bare file name (TorchServe resolves it inside ``model_store``; its ``allowed_urls`` refuses any
URL), and the management URL must be on loopback or the cluster network
(:func:`contract.settings.is_internal_url`). The management key is read from TorchServe's key file
on every call, so a regenerated key is picked up.

:func:`apply_voice` is the one reconcile step both the API (right after a change, against the
TorchServe it can reach) and ``voxmill voice-sync`` (a sidecar in each TorchServe pod, from the
catalog in the model store) run: register missing versions, set the default, scale the workers.
``set-default`` in TorchServe swaps the version new requests go to; requests already queued on the
old version finish there, so switching drops nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from contract.settings import is_internal_url

log = logging.getLogger(__name__)

# TorchServe answers a refused token with 400 and this exception type.
_TOKEN_ERROR = "InvalidKeyException"


class ManagementError(RuntimeError):
    """TorchServe's management API refused or failed a call."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"TorchServe management API: HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class VersionSpec:
    """One version of a voice and its archive's key in the model store."""

    version: str
    archive: str


@dataclass(frozen=True)
class VoiceSpec:
    """What TorchServe should serve for one voice."""

    name: str
    pool: str
    default_version: str | None
    versions: tuple[VersionSpec, ...]
    workers: int = 1
    batch_size: int = 1
    max_batch_delay_ms: int = 5
    standby_workers: int = 1
    response_timeout_s: int = 120

    def to_json(self) -> dict[str, Any]:
        """The catalog entry."""
        return {
            "name": self.name,
            "pool": self.pool,
            "default_version": self.default_version,
            "versions": [{"version": v.version, "archive": v.archive} for v in self.versions],
            "workers": self.workers,
            "batch_size": self.batch_size,
            "max_batch_delay_ms": self.max_batch_delay_ms,
            "standby_workers": self.standby_workers,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> VoiceSpec:
        """A catalog entry back (unknown keys ignored)."""
        return cls(
            name=str(raw["name"]),
            pool=str(raw.get("pool") or "cpu"),
            default_version=raw.get("default_version"),
            versions=tuple(
                VersionSpec(str(v["version"]), str(v["archive"])) for v in raw.get("versions", [])
            ),
            workers=int(raw.get("workers", 1)),
            batch_size=int(raw.get("batch_size", 1)),
            max_batch_delay_ms=int(raw.get("max_batch_delay_ms", 5)),
            standby_workers=int(raw.get("standby_workers", 1)),
        )


@dataclass
class ManagementClient:
    """A small client of TorchServe's management API (synchronous calls).

    Args:
        base_url: ``http://127.0.0.1:8081`` or a cluster-internal address.
        key: Returns the current management key ("" when token auth is off).
        timeout_s: Per call; registrations wait for the workers to load.
    """

    base_url: str
    key: Callable[[], str]
    timeout_s: float = 300.0
    http: httpx.Client | None = None
    _own: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not is_internal_url(self.base_url):
            raise ValueError(
                f"refusing TorchServe management URL {self.base_url!r}: loopback or cluster only"
            )
        self.base_url = self.base_url.rstrip("/")
        if self.http is None:
            self.http = httpx.Client(timeout=httpx.Timeout(self.timeout_s, connect=5.0))
            self._own = True

    def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._own and self.http is not None:
            self.http.close()

    def _call(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        assert self.http is not None
        url = self.base_url + path
        for attempt in (1, 2):
            key = self.key()
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            try:
                response = self.http.request(method, url, params=params, headers=headers)
            except httpx.HTTPError as e:
                raise ManagementError(503, f"unreachable at {self.base_url}: {e!r}") from e
            if response.status_code < 400:
                try:
                    return response.json()
                except ValueError:
                    return response.text
            message = _message(response)
            if attempt == 1 and _TOKEN_ERROR in response.text:
                continue  # the key file may hold a regenerated key now
            raise ManagementError(response.status_code, message)
        raise AssertionError("unreachable")

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every registered version of ``name`` ([] when the model is unknown)."""
        try:
            described = self._call("GET", f"/models/{quote(name, safe='')}/all")
        except ManagementError as e:
            if e.status == 404:
                return []
            raise
        return list(described) if isinstance(described, list) else []

    def describe(self, name: str, version: str | None = None) -> dict[str, Any]:
        """The description (workers, batch settings) of the default or a given version."""
        path = f"/models/{quote(name, safe='')}" + (
            f"/{quote(version, safe='')}" if version else ""
        )
        described = self._call("GET", path)
        return dict(described[0]) if isinstance(described, list) and described else {}

    def default_version(self, name: str) -> str | None:
        """The version ``/predictions/<name>`` goes to, or ``None`` when not registered."""
        try:
            return str(self.describe(name).get("modelVersion") or "") or None
        except ManagementError as e:
            if e.status == 404:
                return None
            raise

    def register(
        self,
        archive: str,
        *,
        workers: int,
        batch_size: int,
        max_batch_delay_ms: int,
        response_timeout_s: int = 120,
    ) -> None:
        """Register an archive of the model store and wait until its workers are up."""
        if "/" in archive or "\\" in archive or ".." in archive or ":" in archive:
            raise ValueError(f"only bare archive names of the model store: {archive!r}")
        self._call(
            "POST",
            "/models",
            {
                "url": archive,
                "initial_workers": workers,
                "batch_size": batch_size,
                "max_batch_delay": max_batch_delay_ms,
                "response_timeout": response_timeout_s,
                "synchronous": "true",
            },
        )

    def set_default(self, name: str, version: str) -> None:
        """Send new requests for ``name`` to ``version``."""
        self._call("PUT", f"/models/{quote(name, safe='')}/{quote(version, safe='')}/set-default")

    def scale(self, name: str, version: str, workers: int) -> None:
        """Run exactly ``workers`` workers for one version (waits until they are up)."""
        self._call(
            "PUT",
            f"/models/{quote(name, safe='')}/{quote(version, safe='')}",
            {"min_worker": workers, "max_worker": workers, "synchronous": "true"},
        )

    def unregister(self, name: str, version: str) -> None:
        """Remove one version."""
        self._call("DELETE", f"/models/{quote(name, safe='')}/{quote(version, safe='')}")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("message") or body)[:300]
    return str(body)[:300]


def _workers_of(description: dict[str, Any]) -> int:
    return len(description.get("workers", []) or [])


def apply_voice(client: ManagementClient, spec: VoiceSpec) -> list[str]:
    """Bring one TorchServe in line with ``spec``.

    Missing versions are registered (the default one with ``spec.workers`` workers, the others
    with ``spec.standby_workers`` so a pinned old version still answers), the default is set, and
    worker counts are corrected. Versions TorchServe has but the spec does not are left alone
    (never unregistered under a request in flight).

    Returns:
        What was changed, for the log and the API's answer.
    """
    changes: list[str] = []
    registered = {str(d.get("modelVersion")): d for d in client.versions(spec.name)}
    for entry in spec.versions:
        wanted = spec.workers if entry.version == spec.default_version else spec.standby_workers
        if entry.version not in registered:
            client.register(
                entry.archive,
                workers=wanted,
                batch_size=spec.batch_size,
                max_batch_delay_ms=spec.max_batch_delay_ms,
                response_timeout_s=spec.response_timeout_s,
            )
            changes.append(f"registered {spec.name} {entry.version}")
        elif _workers_of(registered[entry.version]) != wanted:
            client.scale(spec.name, entry.version, wanted)
            changes.append(f"scaled {spec.name} {entry.version} to {wanted} workers")
    if spec.default_version and client.default_version(spec.name) != spec.default_version:
        client.set_default(spec.name, spec.default_version)
        changes.append(f"default of {spec.name} is now {spec.default_version}")
    if changes:
        log.info("TorchServe %s: %s", client.base_url, "; ".join(changes))
    return changes


def voice_health(client: ManagementClient, name: str) -> dict[str, Any]:
    """Per-version worker states of a voice as TorchServe reports them.

    Returns:
        ``{"registered": bool, "default_version", "versions": [{"version", "workers",
        "ready_workers", "batch_size", "max_batch_delay_ms", "status"}]}``.
    """
    described = client.versions(name)
    default = client.default_version(name) if described else None
    versions = []
    for d in described:
        workers = d.get("workers", []) or []
        ready = sum(1 for w in workers if w.get("status") == "READY")
        versions.append(
            {
                "version": str(d.get("modelVersion")),
                "workers": len(workers),
                "ready_workers": ready,
                "batch_size": d.get("batchSize"),
                "max_batch_delay_ms": d.get("maxBatchDelay"),
                "status": "healthy" if ready else "unavailable",
            }
        )
    return {"registered": bool(described), "default_version": default, "versions": versions}
