"""Per-client limits on expensive routes (429 with Retry-After) and streamed body limits."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.guards import ClientLimiter, RequestGuard, body_limit, is_expensive
from contract import limits
from contract.settings import Settings


def test_concurrency_per_client_is_bounded_and_released() -> None:
    limiter = ClientLimiter(concurrency=2, per_minute=0)
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") is None
    assert limiter.acquire("a") == 1  # a third at once: retry in a second
    assert limiter.acquire("b") is None  # another client is not affected
    limiter.release("a")
    assert limiter.acquire("a") is None


def test_rate_per_client_answers_when_to_retry() -> None:
    limiter = ClientLimiter(concurrency=0, per_minute=3)
    for _ in range(3):
        assert limiter.acquire("a") is None
        limiter.release("a")
    wait = limiter.acquire("a")
    assert wait is not None and 1 <= wait <= 60


def app_with(settings: Settings) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/audio/speech")
    async def speech() -> dict[str, str]:
        return {"ok": "yes"}

    @app.post("/v1/projects")
    async def projects(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.add_middleware(RequestGuard, settings=settings)
    return app


def test_an_expensive_route_answers_429_with_retry_after() -> None:
    client = TestClient(app_with(Settings(client_rate_per_minute=2)))
    headers = {"Authorization": "Bearer one"}
    assert client.post("/v1/audio/speech", headers=headers).status_code == 200
    assert client.post("/v1/audio/speech", headers=headers).status_code == 200
    refused = client.post("/v1/audio/speech", headers=headers)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "too many requests" in refused.json()["detail"]
    # Another key is another client; cheap routes are not limited.
    assert client.post("/v1/audio/speech", headers={"Authorization": "Bearer two"}).is_success
    assert client.post("/v1/projects", headers=headers, content=b"{}").is_success


def test_bodies_are_limited_per_route_while_streaming() -> None:
    settings = Settings()
    assert body_limit(settings, "POST", "/v1/projects") == limits.MAX_JSON_BODY_BYTES
    assert body_limit(settings, "POST", "/v1/projects/3/documents") > settings.max_upload_bytes
    assert body_limit(settings, "POST", "/v1/voices") > settings.max_voice_upload_bytes
    assert is_expensive("POST", "/v1/projects/3/conversions")
    assert not is_expensive("GET", "/v1/projects/3")
    client = TestClient(app_with(settings))

    def chunks():  # no Content-Length: only counting while streaming can stop it
        for _ in range(3):
            yield b"x" * (limits.MAX_JSON_BODY_BYTES // 2)

    r = client.post("/v1/projects", content=chunks())
    assert r.status_code == 413
    assert "over this route's limit" in r.json()["detail"]  # the API's error shape, not plain text
    assert client.post("/v1/projects", content=b"x" * 1000).json() == {"bytes": 1000}
