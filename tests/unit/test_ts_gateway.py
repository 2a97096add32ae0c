"""The TorchServe gateway against a stand-in TorchServe that behaves like 0.12's token plugin.

The stand-in keeps the keys the way TorchServe does (key_file.json with management, inference and
API keys; expired or wrong keys answered with 400 InvalidKeyException; ``/token?type=inference``
on the management port replaces the inference key) and records every request it gets.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest

from gateway.app import GatewaySettings, create_app

pytestmark = pytest.mark.anyio
TOKEN = "s3cret-gateway-token-0123456789"
WAV = b"RIFF" + bytes(range(256)) * 64


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _invalid_key() -> httpx.Response:
    return httpx.Response(
        400,
        json={
            "code": 400,
            "type": "InvalidKeyException",
            "message": "Token Authorization failed. Token either incorrect, expired, or not "
            "provided correctly",
        },
    )


class FakeTorchServe:
    """TorchServe 0.12 as the gateway sees it: two loopback ports and a key file."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self.api_key = "api-KEY_1"
        self.management_key = "mgmt-KEY_1"
        self.inference_key = ""
        self.expires = 0.0
        self.generation = 0
        self.refuse_all = False  # refuse even fresh keys (a broken TorchServe)
        self.requests: list[httpx.Request] = []
        self.rotate(ttl_s=3600)

    def rotate(self, *, ttl_s: float) -> None:
        """A new inference key, written to the key file like TorchServe does."""
        self.generation += 1
        self.inference_key = f"inf-{self.generation}"
        self.expires = time.time() + ttl_s
        stamp = datetime.fromtimestamp(self.expires, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
        self.key_file.write_text(
            json.dumps(
                {
                    "management": {"key": self.management_key, "expiration time": stamp},
                    "inference": {"key": self.inference_key, "expiration time": stamp},
                    "API": {"key": self.api_key},
                },
                indent=2,
            )
        )

    def silently_expire(self) -> None:
        """TorchServe stops accepting the key though the file says it is still valid."""
        self.expires = time.time() - 1

    def _bearer(self, request: httpx.Request) -> str:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return value if scheme == "Bearer" else ""

    async def handle(self, request: httpx.Request) -> httpx.Response:
        # A real await, so concurrent requests interleave here as they would over a socket.
        await anyio.sleep(0.01)
        self.requests.append(request)
        assert request.url.host == "127.0.0.1"
        if request.url.port == 8081:
            return self._management(request)
        assert request.url.port == 8080, request.url
        valid = self._bearer(request) == self.inference_key and time.time() < self.expires
        if not valid or self.refuse_all:
            return _invalid_key()
        if request.url.path == "/ping":
            return httpx.Response(200, json={"status": "Healthy"})
        if request.url.path == "/predictions/joe":
            return httpx.Response(
                200,
                content=_chunks(WAV),
                headers={"content-type": "audio/wav", "x-request-id": "ts-123"},
            )
        if request.url.path == "/predictions/bad":
            return httpx.Response(
                400, json={"code": 400, "type": "BadRequestException", "message": "empty text"}
            )
        return httpx.Response(404, json={"code": 404, "type": "ModelNotFoundException"})

    def _management(self, request: httpx.Request) -> httpx.Response:
        renew = request.url.params.get("type") == "inference"
        if request.url.path == "/token" and self._bearer(request) == self.api_key and renew:
            self.rotate(ttl_s=3600)
            return httpx.Response(200, text="\n")
        return _invalid_key()

    def paths(self, port: int) -> list[str]:
        return [r.url.path for r in self.requests if r.url.port == port]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


@pytest.fixture
def fake_ts(tmp_path: Path) -> FakeTorchServe:
    return FakeTorchServe(tmp_path / "key_file.json")


@pytest.fixture
def settings(fake_ts: FakeTorchServe, monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    monkeypatch.setenv("VOXMILL_TORCHSERVE_TOKEN", TOKEN)
    monkeypatch.setenv("VOXMILL_TS_KEY_FILE", str(fake_ts.key_file))
    monkeypatch.setenv("VOXMILL_TS_MAX_BODY_BYTES", "4096")
    return GatewaySettings()


@contextlib.asynccontextmanager
async def gateway(
    settings: GatewaySettings, transport: httpx.AsyncBaseTransport
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, transport=transport)
    async with app.router.lifespan_context(app):
        asgi = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://gateway") as client:
            yield client


@pytest.fixture
async def client(
    settings: GatewaySettings, fake_ts: FakeTorchServe
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway(settings, httpx.MockTransport(fake_ts.handle)) as c:
        yield c


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_forwards_with_the_inference_key_and_streams_the_audio_back(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    r = await client.post(
        "/predictions/joe?format=wav",
        headers={**AUTH, "content-type": "application/json", "x-request-id": "abc"},
        content=b'{"text": "Hello."}',
    )
    assert r.status_code == 200
    assert r.content == WAV
    assert r.headers["content-type"] == "audio/wav"
    assert r.headers["x-request-id"] == "ts-123"
    (sent,) = fake_ts.requests
    assert str(sent.url) == "http://127.0.0.1:8080/predictions/joe?format=wav"
    assert sent.headers["authorization"] == f"Bearer {fake_ts.inference_key}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-request-id"] == "abc"
    assert sent.content == b'{"text": "Hello."}'


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer inf-1"},  # TorchServe's own key is not the gateway token
    ],
)
async def test_missing_or_wrong_token_is_refused_before_torchserve(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe, headers: dict[str, str]
) -> None:
    for path in ("/predictions/joe", "/ping"):
        method = "POST" if path.startswith("/predictions") else "GET"
        r = await client.request(method, path, headers=headers, content=b"{}")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    assert fake_ts.requests == []


async def test_ping_is_authenticated_and_forwarded(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    r = await client.get("/ping", headers=AUTH)
    assert r.status_code == 200
    assert r.json() == {"status": "Healthy"}
    assert fake_ts.paths(8080) == ["/ping"]


async def test_expired_key_is_renewed_once_and_the_request_retried(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    fake_ts.silently_expire()
    r = await client.post("/predictions/joe", headers=AUTH, content=b'{"text": "Hi."}')
    assert r.status_code == 200
    assert r.content == WAV
    assert fake_ts.paths(8081) == ["/token"]
    token_call = next(q for q in fake_ts.requests if q.url.port == 8081)
    assert token_call.method == "POST"
    assert token_call.headers["authorization"] == "Bearer api-KEY_1"
    assert token_call.url.params["type"] == "inference"
    sent_keys = [q.headers["authorization"] for q in fake_ts.requests if q.url.port == 8080]
    assert sent_keys == ["Bearer inf-1", "Bearer inf-2"]


async def test_concurrent_rejections_renew_the_key_only_once(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    fake_ts.silently_expire()
    statuses: list[int] = []

    async def one() -> None:
        r = await client.post("/predictions/joe", headers=AUTH, content=b"{}")
        statuses.append(r.status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(one)
    assert statuses == [200] * 8
    assert fake_ts.paths(8081) == ["/token"]


async def test_key_past_its_expiration_time_is_renewed_before_use(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    fake_ts.rotate(ttl_s=5)  # inside the gateway's 30 s refresh margin
    r = await client.post("/predictions/joe", headers=AUTH, content=b"{}")
    assert r.status_code == 200
    assert fake_ts.paths(8081) == ["/token"]
    sent = [q.headers["authorization"] for q in fake_ts.requests if q.url.port == 8080]
    assert sent == ["Bearer inf-3"]  # the stale inf-2 never went out


async def test_a_key_refused_again_after_renewal_is_a_502_not_a_retry_loop(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    fake_ts.refuse_all = True
    r = await client.post("/predictions/joe", headers=AUTH, content=b"{}")
    assert r.status_code == 502
    assert "inference key" in r.json()["detail"]
    assert fake_ts.paths(8081) == ["/token"]
    assert len(fake_ts.paths(8080)) == 2


async def test_torchserve_errors_other_than_the_key_pass_through_unchanged(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    r = await client.post("/predictions/bad", headers=AUTH, content=b"{}")
    assert r.status_code == 400
    assert r.json()["type"] == "BadRequestException"
    r = await client.post("/predictions/nosuchvoice", headers=AUTH, content=b"{}")
    assert r.status_code == 404
    assert fake_ts.paths(8081) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/models"),
        ("GET", "/models/joe"),
        ("POST", "/models?url=evil.mar"),
        ("DELETE", "/models/joe"),
        ("PUT", "/models/joe?min_worker=0"),
        ("POST", "/token?type=inference"),
        ("GET", "/token?type=management"),
        ("OPTIONS", "/"),
        ("GET", "/api-description"),
        ("GET", "/metrics"),
        ("POST", "/workflows?url=x.war"),
        ("POST", "/predictions/../models"),
        ("POST", "/predictions/%2E%2E/models"),
        ("POST", "/predictions/.."),
        ("POST", "/predictions/joe/../../models"),
        ("GET", "/predictions/joe"),
    ],
)
async def test_management_and_other_paths_are_not_reachable(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe, method: str, path: str
) -> None:
    r = await client.request(method, path, headers=AUTH)
    assert r.status_code in (404, 405)
    assert fake_ts.requests == []


async def test_oversized_body_is_refused_without_forwarding(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    r = await client.post("/predictions/joe", headers=AUTH, content=b"x" * 5000)
    assert r.status_code == 413
    assert fake_ts.requests == []


async def test_healthz_needs_no_token_and_no_torchserve(settings: GatewaySettings) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with gateway(settings, httpx.MockTransport(down)) as c:
        r = await c.get("/healthz")
        assert r.status_code == 200
        r = await c.get("/readyz")
        assert r.status_code == 503
        assert "unreachable" in r.json()["detail"]
        r = await c.post("/predictions/joe", headers=AUTH, content=b"{}")
        assert r.status_code == 503


async def test_readyz_follows_torchserve_ping(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["status"] == "ready"
    fake_ts.silently_expire()  # readiness survives key expiry too
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert fake_ts.paths(8081) == ["/token"]


async def test_readyz_is_503_until_torchserve_wrote_its_key_file(
    client: httpx.AsyncClient, fake_ts: FakeTorchServe
) -> None:
    fake_ts.key_file.unlink()
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert "does not exist" in r.json()["detail"]
    r = await client.post("/predictions/joe", headers=AUTH, content=b"{}")
    assert r.status_code == 503
    assert fake_ts.requests == []


async def test_unhealthy_torchserve_is_not_ready(settings: GatewaySettings) -> None:
    def unhealthy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"status": "Unhealthy"})

    async with gateway(settings, httpx.MockTransport(unhealthy)) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503


@pytest.mark.parametrize("token", ["", "changeme", "short"])
def test_gateway_refuses_to_start_without_a_real_token(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("VOXMILL_TORCHSERVE_TOKEN", token)
    with pytest.raises(ValueError, match="VOXMILL_TORCHSERVE_TOKEN"):
        GatewaySettings()
