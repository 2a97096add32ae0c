"""The FastAPI app: :func:`create_app` builds it, :func:`cli` serves it (``voxmill api``).

Nothing is created at import time: the app's lifespan builds the database engine, the queue
clients and the background services from the settings it was given (see :mod:`api.runtime`), so
tests can build as many apps as they like with their own settings, synthesizer and transport.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

import api.routes.audio_voices
import api.routes.audiobook
import api.routes.timings
from api.errors import install_error_handlers
from api.guards import RequestGuard
from api.lanes import Lane, LaneGate, LaneMetrics, QueueDepthCollector, interactive_synthesizer
from api.openai_compat import install_openai_errors
from api.routes import (
    chapters,
    conversions,
    documents,
    events,
    ingest,
    jobs,
    lexicon,
    ops,
    projects,
    segments,
    speech,
    speech_stream,
    voice_choice,
    voices,
)
from api.runtime import Runtime
from api.security import require_api_key
from api.ui import mount_ui
from api.voice_registry import VoiceRegistry, VoiceSyncService
from contract.settings import Mode, Settings
from messaging.transport import Transport
from synthesis.base import Synthesizer

log = logging.getLogger(__name__)

API_ROUTERS = (
    projects,
    documents,
    lexicon,
    conversions,
    segments,
    chapters,
    events,
    voices,
    voice_choice,
    jobs,  # issue 13: batch jobs
)
# Production outputs (issue 10): timed text, and the OpenAI-style voice list.
OUTPUT_ROUTERS = (api.routes.timings, api.routes.audio_voices, api.routes.audiobook)


def _validation_message(errors: list[Any]) -> str:
    parts = []
    for error in errors[:3]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


# pydantic's error types of a number's bounds.
_BOUNDS = frozenset(
    {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "multiple_of"}
)


def _finite_first(error: Any) -> Any:
    """``error`` itself, or, for NaN or an infinity refused by a bound (JSON bodies may carry
    them), the error that names the real fault: pydantic reports the first bound NaN fails."""
    value = error.get("input")
    if error.get("type") in _BOUNDS and isinstance(value, float) and not math.isfinite(value):
        return {**error, "type": "finite_number", "msg": "Input should be a finite number"}
    return error


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_finite_first(e) for e in exc.errors()]
        return JSONResponse(
            {"detail": _validation_message(errors), "errors": _jsonable(errors)},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(OperationalError)
    async def database_down(_request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database error: %s", exc)
        return JSONResponse(
            {"detail": "the database is unavailable right now; try again in a moment"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            {"detail": "internal error; the server log has the details"},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )


def _jsonable(errors: list[Any]) -> list[dict[str, Any]]:
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in errors
    ]


def create_app(
    settings: Settings,
    *,
    synthesizer: Synthesizer | None = None,
    transport: Transport | None = None,
) -> FastAPI:
    """Build the API app.

    Args:
        settings: Everything configurable; the mode decides the defaults below.
        synthesizer: For the embedded workers and ``/v1/audio/speech``. Default: the handler
            in-process (embedded) or TorchServe over HTTP when configured (distributed).
        transport: The message transport. Default: in-process (embedded) or RabbitMQ
            (distributed).

    Returns:
        The app. Its lifespan migrates (embedded) or checks (distributed) the database and
        starts the outbox relay, the result consumer, the events listener and, in the embedded
        mode, the synthesis workers; ``app.state`` then holds ``settings``, ``runtime``,
        ``session_factory``, ``synthesizer``, ``event_hub`` and ``readiness``.
    """
    runtime = Runtime.build(settings, synthesizer=synthesizer, transport=transport)
    registry = VoiceRegistry(settings, runtime.session_factory, runtime.synthesizer)
    route_pools = getattr(runtime.synthesizer, "route_pools", None)
    if callable(route_pools):
        route_pools(registry.pool_of)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime.hub.bind(asyncio.get_running_loop())
        await run_in_threadpool(runtime.start)
        # Registered voices are served again (TorchServe may have restarted without them): at
        # once in-process, in the background against TorchServe (registrations take a while).
        voice_sync = VoiceSyncService(registry)
        if registry.serves_in_process():
            await run_in_threadpool(registry.sync_all)
        else:
            voice_sync.start()
        try:
            yield
        finally:
            voice_sync.stop()
            await run_in_threadpool(runtime.stop)
            # A registration still under way is abandoned (the thread is a daemon); the next
            # start, or the voice-sync sidecars, register the voice.
            await run_in_threadpool(voice_sync.join, 5.0)
            registry.close()

    app = FastAPI(
        title="Voxmill",
        version="0.1.0",
        summary="Documents to speech",
        description=(
            "Create a project, add a document, start a conversion and follow it live; listen to "
            "any sentence, fix and re-synthesize it, download chapters or the whole project."
        ),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.session_factory = runtime.session_factory
    app.state.synthesizer = runtime.synthesizer
    # Lanes (issue 14): interactive synthesis through bounded slots, bulk yielding in-process.
    lane_metrics = LaneMetrics.create(ops.metrics_of(app).registry)
    runtime.gate = LaneGate(
        concurrency=settings.interactive_concurrency,
        max_wait_s=settings.interactive_max_wait_s,
        bulk_yield_max_s=settings.bulk_yield_max_s,
        metrics=lane_metrics,
        enabled=settings.priority_lane,
    )
    app.state.synthesizer = interactive_synthesizer(settings, runtime.synthesizer, runtime.gate)
    broker = getattr(runtime.transport, "broker", None)  # the in-process queue can count itself
    if broker is not None:
        topology = runtime.transport.topology
        lanes = {Lane.BULK: topology.tasks, Lane.INTERACTIVE: topology.tasks_interactive}
        ops.metrics_of(app).registry.register(QueueDepthCollector(broker.depth, lanes))
    app.state.event_hub = runtime.hub
    app.state.readiness = runtime.readiness_checks()
    app.state.voice_registry = registry
    _install_error_handlers(app)
    # Reliability (issue 16): one error shape with Allow headers; body and per-client bounds.
    install_error_handlers(app)
    app.add_middleware(RequestGuard, settings=settings)

    ops.install_metrics(app)  # request counts and latencies for every route
    app.include_router(ops.router)  # probes and scrapers need no key
    app.include_router(speech.router)  # applies require_api_key itself
    app.include_router(speech_stream.router)  # checks the key at the WebSocket handshake
    app.include_router(ingest.router)  # its own token: OCI Notifications sends no API key
    for module in API_ROUTERS:
        app.include_router(module.router, dependencies=[Depends(require_api_key)])
    for module in OUTPUT_ROUTERS:
        app.include_router(module.router, dependencies=[Depends(require_api_key)])
    install_openai_errors(app)  # after the app's own handlers, which it wraps
    mount_ui(app)
    return app


def cli(argv: list[str] | None = None) -> int:
    """``voxmill api``: serve the API with uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="voxmill api", description="Run the Voxmill API.")
    parser.add_argument("--mode", choices=[m.value for m in Mode], help="default: VOXMILL_MODE")
    parser.add_argument("--host", help="interface (default: VOXMILL_HOST)")
    parser.add_argument("--port", type=int, help="port (default: VOXMILL_PORT)")
    parser.add_argument("--log-level", default="info", help="uvicorn log level")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pika").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {}
    if args.mode:
        overrides["mode"] = args.mode
    if args.host:
        overrides["host"] = args.host
    if args.port:
        overrides["port"] = args.port
    try:
        settings = Settings(**overrides)
    except ValidationError as e:
        print(f"voxmill api: invalid settings:\n{e}", file=sys.stderr)
        return 2
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level.lower())
    return 0


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:]))
