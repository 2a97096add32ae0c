"""Operations endpoints: liveness, readiness and Prometheus metrics.

They sit outside ``/v1`` and need no API key, so that probes and scrapers work without credentials;
they reveal no user data. The metric objects live in a :class:`Metrics` made per app (on
``app.state.metrics``) with its own ``CollectorRegistry``, so several apps in one process (tests)
never clash in prometheus_client's global registry.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.runtime import ReadinessCheck

log = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])

# Each readiness check gets this long; a hung dependency must not hang the probe (Kubernetes'
# default probe timeout is 1 s, charts usually raise it to a few seconds).
READINESS_TIMEOUT_S = 2.0

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(frozen=True)
class Metrics:
    """The Prometheus metrics of one app."""

    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    synthesis_seconds: Histogram
    synthesis_failures: Counter
    audio_seconds: Counter

    @classmethod
    def create(cls) -> Metrics:
        """Fresh metrics in a registry of their own (with the process and platform collectors)."""
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        return cls(
            registry=registry,
            requests=Counter(
                "voxmill_http_requests",
                "HTTP requests answered, by route template and status code.",
                ["method", "route", "status"],
                registry=registry,
            ),
            request_seconds=Histogram(
                "voxmill_http_request_duration_seconds",
                "Time from request to the last byte of the response (streams included).",
                ["method", "route"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            synthesis_seconds=Histogram(
                "voxmill_speech_synthesis_seconds",
                "Time of one synthesizer call made by /v1/audio/speech (one sentence or chunk).",
                ["voice"],
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            synthesis_failures=Counter(
                "voxmill_speech_synthesis_failures",
                "Synthesizer calls by /v1/audio/speech that raised, by error class.",
                ["voice", "error"],
                registry=registry,
            ),
            audio_seconds=Counter(
                "voxmill_speech_audio_seconds",
                "Seconds of audio produced by /v1/audio/speech.",
                ["voice"],
                registry=registry,
            ),
        )


def metrics_of(app: Any) -> Metrics:
    """The app's :class:`Metrics`, created on first use if :func:`install_metrics` was not called
    (then request counts are missing but synthesis metrics still work)."""
    metrics = getattr(app.state, "metrics", None)
    if metrics is None:
        metrics = Metrics.create()
        app.state.metrics = metrics
    return metrics


class _MetricsMiddleware:
    """Pure ASGI middleware (not ``BaseHTTPMiddleware``) so streamed responses are timed to their
    last byte and pass through unbuffered."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # The route template, not the path: "/v1/projects/{project_id}" keeps the label set
            # bounded whatever ids clients send.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(time.perf_counter() - start)


def install_metrics(app: FastAPI) -> Metrics:
    """Give ``app`` its own :class:`Metrics` and count and time every HTTP request.

    Call it while building the app, before it starts serving (middleware cannot be added later).

    Returns:
        The metrics, also stored on ``app.state.metrics``.
    """
    metrics = metrics_of(app)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return metrics


def _check_name(check: ReadinessCheck) -> str:
    return str(getattr(check, "__qualname__", None) or getattr(check, "__name__", None) or check)


async def _run_check(check: ReadinessCheck, timeout_s: float) -> str | None:
    """``None`` when the check passed, else why it failed."""
    try:
        with anyio.fail_after(timeout_s):
            # Abandon, not wait for, a check stuck in a blocking call: the probe must answer.
            result = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except TimeoutError:
        return f"no answer within {timeout_s:g} s"
    except Exception as e:
        return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    if result is False:  # checks such as TorchServeSynthesizer.ping report with a bool
        return "check returned False"
    return None


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves HTTP; checks no dependency, so a database outage does
    not get every replica restarted."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: every dependency answers")
async def readyz(request: Request) -> JSONResponse:
    """Run the app's readiness checks (``app.state.readiness``) concurrently, each with a timeout.

    Returns:
        200 ``{"status": "ready"}``, or 503 ``{"status": "not ready", "failures": [{"check",
        "error"}]}`` naming each failed check.
    """
    checks: list[ReadinessCheck] = list(getattr(request.app.state, "readiness", None) or [])
    results: list[str | None] = [None] * len(checks)

    async def run(i: int) -> None:
        results[i] = await _run_check(checks[i], READINESS_TIMEOUT_S)

    async with anyio.create_task_group() as tg:
        for i in range(len(checks)):
            tg.start_soon(run, i)
    failures = [
        {"check": _check_name(check), "error": error}
        for check, error in zip(checks, results, strict=True)
        if error is not None
    ]
    if failures:
        log.warning("not ready: %s", "; ".join(f"{f['check']}: {f['error']}" for f in failures))
        return JSONResponse({"status": "not ready", "failures": failures}, status_code=503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """The app's metrics in the Prometheus text format."""
    data = generate_latest(metrics_of(request.app).registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
