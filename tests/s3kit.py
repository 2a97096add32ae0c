"""A real S3 server on loopback for tests: moto's server mode (``moto_server``) in a process of
its own, speaking the S3 REST protocol boto3 uses (SigV4, path-style, multipart uploads,
ListObjectsV2, presigned URLs). Chosen because it installs from PyPI with no network beyond the
package index and starts in about a second; MinIO has no PyPI/npm/Debian package here.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """``moto_server`` on 127.0.0.1:<free port>; ``url`` is its endpoint."""

    ACCESS_KEY = "voxmill-test"
    SECRET_KEY = "voxmill-test-secret"

    def __init__(self, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start (see {log})") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server process."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()
