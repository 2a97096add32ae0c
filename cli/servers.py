"""Where ``voxmill convert`` finds its API: a running one (``--api-url``), or the embedded app
served from a thread of this process for the length of the conversion."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from cli.rest import ConvertError

HTTP_TIMEOUT_S = 60.0
# How long the embedded app may take to start (database migrations, loading nothing else).
STARTUP_TIMEOUT_S = 60.0


@contextlib.contextmanager
def remote_api(url: str, api_key: str | None) -> Iterator[httpx.Client]:
    """A client for a running API at ``url``."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=HTTP_TIMEOUT_S) as client:
        try:
            client.get("/healthz", timeout=10.0)
        except httpx.HTTPError as e:
            raise ConvertError(f"no Voxmill API answers at {url}: {e}") from e
        yield client


@contextlib.contextmanager
def serving(app: Any, *, startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Serve the ASGI ``app`` on a free loopback port from a thread of this process (its
    lifespan included); yields its base URL and stops it on exit."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="voxmill-embedded-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not server.started:
            if not thread.is_alive():
                raise ConvertError("the embedded API did not start; run with -v to see why")
            if time.monotonic() > deadline:
                raise ConvertError(f"the embedded API did not start within {startup_timeout_s:g} s")
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def embedded_api(api_key: str | None) -> Iterator[httpx.Client]:
    """Run the embedded app (SQLite, in-process queue and voices) in this process for the length
    of the conversion; a client for it."""
    from api.main import create_app
    from contract.settings import Mode, get_settings

    settings = get_settings()
    if settings.mode is not Mode.EMBEDDED:
        settings = settings.model_copy(update={"mode": Mode.EMBEDDED})
    key = api_key or (settings.api_keys[0] if settings.api_keys else None)
    with serving(create_app(settings)) as url, remote_api(url, key) as client:
        yield client
