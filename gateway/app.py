"""The authenticating gateway in front of TorchServe in a Kubernetes pod (``voxmill ts-gateway``).

TorchServe 0.12 cannot be given a preset token: at start it writes random keys to
``key_file.json`` in its working directory, and the inference key expires after
``token_expiration_min``. So in Kubernetes TorchServe listens on loopback only and this sidecar
is what the Service exposes. It

* accepts ``Authorization: Bearer <VOXMILL_TORCHSERVE_TOKEN>`` (a stable secret shared with the
  workers) on ``/predictions/{model}`` and ``/ping``;
* forwards those to TorchServe on loopback with the current inference key from the shared key
  file, streaming the answer back with its status and headers;
* renews the inference key through the management API (with the key file's API key) when it is
  about to expire or TorchServe rejects it, and retries once;
* serves ``/healthz`` (this process is alive) and ``/readyz`` (TorchServe says Healthy), both
  without authentication for the kubelet;
* has no route to anything else: the management API is never reachable through it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from contract.settings import PLACEHOLDER_SECRETS

logger = logging.getLogger(__name__)

# A TorchServe model name: what torch-model-archiver accepts. Never "." or "..", so a name can
# not walk out of /predictions/ on the upstream URL.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus the ones we rewrite.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED_UP = _HOP_BY_HOP | {"host", "authorization", "content-length", "cookie"}
_NOT_FORWARDED_DOWN = _HOP_BY_HOP


class GatewaySettings(BaseSettings):
    """The gateway's settings, read from ``VOXMILL_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="VOXMILL_", extra="ignore")

    torchserve_token: str = Field(
        default="", description="the bearer token clients must present (a Kubernetes Secret)"
    )
    ts_key_file: Path = Field(
        default=Path("key_file.json"),
        validation_alias=AliasChoices("VOXMILL_TS_KEY_FILE", "VOXMILL_TORCHSERVE_KEY_FILE"),
        description="TorchServe's key_file.json (an emptyDir shared with the TorchServe container)",
    )
    ts_inference_url: str = "http://127.0.0.1:8080"
    ts_management_url: str = "http://127.0.0.1:8081"
    torchserve_timeout_s: float = 120.0
    ts_max_body_bytes: int = 1024 * 1024
    # Renew a key this long before TorchServe would start refusing it.
    ts_key_refresh_margin_s: float = 30.0

    @field_validator("torchserve_token")
    @classmethod
    def _real_token(cls, value: str) -> str:
        if value.strip().lower() in PLACEHOLDER_SECRETS or len(value.strip()) < 16:
            raise ValueError(
                "VOXMILL_TORCHSERVE_TOKEN must be set to a random secret of at least 16 "
                "characters (the Helm chart takes it from a Kubernetes Secret)"
            )
        return value.strip()


class KeyFileError(Exception):
    """TorchServe's key file is missing or unreadable (TorchServe not started yet)."""


@dataclass(frozen=True)
class _Keys:
    inference: str
    inference_expires: float | None  # epoch seconds
    api: str


def _parse_keys(raw: str) -> _Keys:
    data = json.loads(raw)
    expires: float | None = None
    stamp = data.get("inference", {}).get("expiration time")
    if stamp:
        # TorchServe writes nanoseconds ("...:12.798461734Z"); fromisoformat keeps microseconds.
        with contextlib.suppress(ValueError):
            expires = datetime.fromisoformat(stamp).timestamp()
    inference = str(data.get("inference", {}).get("key", ""))
    api = str(data.get("API", {}).get("key", ""))
    if not inference or not api:
        raise KeyFileError("key file has no inference or API key")
    return _Keys(inference=inference, inference_expires=expires, api=api)


class InferenceKey:
    """TorchServe's current inference key, renewed before or when it expires.

    Every renewal replaces the key for everyone, so renewals are serialized and a caller whose
    key was already replaced by someone else just picks up the new one.
    """

    def __init__(
        self,
        key_file: Path,
        client: httpx.AsyncClient,
        management_url: str,
        *,
        refresh_margin_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key_file = key_file
        self._client = client
        self._token_url = management_url.rstrip("/") + "/token"
        self._margin = refresh_margin_s
        self._clock = clock
        self._lock = asyncio.Lock()

    def _read(self) -> _Keys:
        try:
            return _parse_keys(self._key_file.read_text())
        except FileNotFoundError as e:
            raise KeyFileError(f"{self._key_file} does not exist (is TorchServe up?)") from e
        except (OSError, ValueError) as e:
            raise KeyFileError(f"cannot read {self._key_file}: {e}") from e

    def _expiring(self, keys: _Keys) -> bool:
        return (
            keys.inference_expires is not None
            and keys.inference_expires - self._margin <= self._clock()
        )

    async def current(self) -> str:
        """The key to use now, renewed first if it is about to expire."""
        keys = self._read()
        if self._expiring(keys):
            return await self.renew(keys.inference)
        return keys.inference

    async def renew(self, rejected: str) -> str:
        """A fresh key after ``rejected`` was refused (or is about to be)."""
        async with self._lock:
            keys = self._read()
            if keys.inference != rejected and not self._expiring(keys):
                return keys.inference  # another request renewed it meanwhile
            response = await self._client.post(
                self._token_url,
                params={"type": "inference"},
                headers={"Authorization": f"Bearer {keys.api}"},
            )
            if response.status_code != 200:
                raise KeyFileError(
                    f"TorchServe refused to renew the inference key ({response.status_code})"
                )
            logger.info("renewed the TorchServe inference key")
            return self._read().inference


def _is_key_rejection(response: httpx.Response) -> bool:
    """Whether TorchServe refused the inference key (0.12 answers 400 InvalidKeyException)."""
    if response.status_code not in (400, 401):
        return False
    try:
        body = response.json()
    except ValueError:
        return response.status_code == 401
    return isinstance(body, dict) and body.get("type") == "InvalidKeyException"


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it grows past ``limit`` (never buffered beyond it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers or None)


class Gateway:
    """The proxying logic, independent of the ASGI app so tests can drive it."""

    def __init__(self, settings: GatewaySettings, client: httpx.AsyncClient) -> None:
        self.settings = settings
        self.client = client
        self.key = InferenceKey(
            settings.ts_key_file,
            client,
            settings.ts_management_url,
            refresh_margin_s=settings.ts_key_refresh_margin_s,
        )
        self._token = settings.torchserve_token.encode()
        self._base = settings.ts_inference_url.rstrip("/")

    def authorized(self, request: Request) -> bool:
        """Whether the request carries the gateway token (compared in constant time)."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self._token
        )

    async def _send(
        self, method: str, path: str, body: bytes, headers: dict[str, str], params: Any
    ) -> httpx.Response:
        """Send upstream with the current key; renew the key and retry once if it is refused."""
        key = await self.key.current()
        for attempt in (1, 2):
            request = self.client.build_request(
                method,
                self._base + path,
                content=body,
                params=params,
                headers={**headers, "Authorization": f"Bearer {key}"},
            )
            response = await self.client.send(request, stream=True)
            if response.status_code not in (400, 401):
                return response
            await response.aread()  # error bodies are small; needed to tell why
            await response.aclose()
            if not _is_key_rejection(response) or attempt == 2:
                return response
            key = await self.key.renew(key)
        raise AssertionError("unreachable")

    async def forward(self, request: Request, path: str) -> Response:
        """Proxy one authenticated request to TorchServe's inference API."""
        if not self.authorized(request):
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
        body = await _read_body(request, self.settings.ts_max_body_bytes)
        if body is None:
            return _error(413, f"request body over {self.settings.ts_max_body_bytes} bytes")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED_UP}
        try:
            upstream = await self._send(
                request.method, path, body, headers, request.query_params.multi_items()
            )
        except KeyFileError as e:
            logger.warning("TorchServe key unavailable: %s", e)
            return _error(503, "TorchServe is not ready", **{"Retry-After": "5"})
        except httpx.TimeoutException:
            return _error(504, "TorchServe did not answer in time")
        except httpx.TransportError as e:
            logger.warning("TorchServe unreachable: %s", e)
            return _error(503, "TorchServe is not reachable", **{"Retry-After": "5"})
        if _is_key_rejection(upstream):
            # Not the client's fault: their token was right, ours was refused twice.
            logger.error("TorchServe refused a freshly renewed inference key")
            return _error(502, "TorchServe refused the gateway's inference key")
        out_headers = {
            k: v for k, v in upstream.headers.items() if k.lower() not in _NOT_FORWARDED_DOWN
        }
        if upstream.is_closed:  # an error answer, already read (and decoded) to inspect it
            for name in ("content-length", "content-encoding"):
                out_headers.pop(name, None)
            return Response(upstream.content, upstream.status_code, out_headers)
        return StreamingResponse(
            upstream.aiter_raw(),
            status_code=upstream.status_code,
            headers=out_headers,
            background=BackgroundTask(upstream.aclose),
        )

    async def ready(self) -> tuple[bool, str]:
        """Whether TorchServe answers ``/ping`` with Healthy, and why not."""
        try:
            response = await self._send("GET", "/ping", b"", {}, None)
            await response.aread()
            await response.aclose()
        except KeyFileError as e:
            return False, str(e)
        except httpx.HTTPError as e:
            return False, f"TorchServe unreachable: {e.__class__.__name__}"
        if response.status_code != 200:
            return False, f"TorchServe /ping answered {response.status_code}"
        try:
            status = response.json().get("status")
        except (ValueError, AttributeError):
            status = None
        return status == "Healthy", f"TorchServe status: {status}"


def create_app(
    settings: GatewaySettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The gateway's ASGI app; ``transport`` stands in for TorchServe in tests."""
    timeout = httpx.Timeout(settings.torchserve_timeout_s, connect=5.0)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            app.state.gateway = Gateway(settings, client)
            yield

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ok, why = await request.app.state.gateway.ready()
        body = {"status": "ready" if ok else "not ready", "detail": why}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def ping(request: Request) -> Response:
        return await request.app.state.gateway.forward(request, "/ping")

    async def predictions(request: Request) -> Response:
        model = request.path_params["model"]
        version = request.path_params.get("version")
        if not MODEL_NAME.match(model) or (version is not None and not MODEL_NAME.match(version)):
            return _error(404, "no such model")
        path = f"/predictions/{model}" + (f"/{version}" if version else "")
        return await request.app.state.gateway.forward(request, path)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/predictions/{model}", predictions, methods=["POST", "PUT"]),
        Route("/predictions/{model}/{version}", predictions, methods=["POST", "PUT"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def run_gateway(host: str, port: int) -> None:
    """Serve the gateway with uvicorn until SIGTERM (in-flight requests are finished first)."""
    import uvicorn

    settings = GatewaySettings()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
        proxy_headers=False,
        server_header=False,
    )


def cli(argv: Sequence[str] | None = None) -> int:
    """``voxmill ts-gateway [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog="voxmill ts-gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=8090, help="port (default: 8090)")
    args = parser.parse_args(argv)
    run_gateway(args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
