"""A tiny liveness endpoint for the worker: ``GET /healthz`` is 200 while it consumes, else 503."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


class HealthServer:
    """Serve ``/healthz`` from a daemon thread.

    Args:
        host: Interface to bind (``0.0.0.0`` so the kubelet can reach it on the pod IP).
        port: TCP port; 0 picks a free one (see :attr:`port`).
        healthy: Called per request; ``True`` answers 200.
    """

    def __init__(self, host: str, port: int, healthy: Callable[[], bool]) -> None:
        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/healthz":
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
