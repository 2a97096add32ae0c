"""The worker's probes: ``GET /healthz`` (liveness) is 200 while it is connected to RabbitMQ;
``GET /readyz`` is 200 only while it also takes tasks (its circuit breaker is closed), else 503
with the reason."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class HealthServer:
    """Serve ``/healthz`` from a daemon thread.

    Args:
        host: Interface to bind (``127.0.0.1`` by default; ``0.0.0.0`` in a pod, so the kubelet
            can reach it on the pod IP).
        port: TCP port; 0 picks a free one (see :attr:`port`).
        healthy: Called per ``/healthz`` request; ``True`` answers 200.
        ready: Called per ``/readyz`` request: ``None`` answers 200, a reason answers 503 with it
            (default: the same as ``healthy``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        healthy: Callable[[], bool],
        *,
        ready: Callable[[], str | None] | None = None,
    ) -> None:
        def readiness() -> str | None:
            if ready is not None:
                return ready()
            return None if healthy() else "not connected to RabbitMQ"

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/readyz":
                    reason = readiness()
                    if reason is None:
                        self._answer(200, b"ready\n")
                    else:
                        self._answer(503, f"{reason}\n".encode())
                elif path != "/healthz":
                    self._answer(404, b"not found\n")
                elif healthy():
                    self._answer(200, b"ok\n")
                else:
                    self._answer(503, b"not connected to RabbitMQ\n")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("health: " + format, *args)

        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="worker-health", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        """Start serving in the background."""
        self._thread.start()
        log.info("health endpoint on :%d/healthz", self.port)
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
