"""The app under test: start ``voxmill api`` on loopback, arrange state through the API, and
compute what its audio should be."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key"
STARTUP_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running app: its URL, its API key (if any) and its log."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    api_key: str | None = None

    def api(self) -> httpx.Client:
        """A client for the ``/v1`` API with the key set, for arranging and checking state."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def start_server(data_dir: Path, api_keys: str | None, model_store: Path | None = None) -> Server:
    """Start the app (embedded mode, SQLite and audio under ``data_dir``) and wait for /healthz.

    The command is ``voxmill api``, the same one ``make run`` uses. ``model_store`` defaults to
    the repository's (tests that upload voices pass their own).
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXMILL_")}
    env.update(
        VOXMILL_DATA_DIR=str(data_dir),
        VOXMILL_MODEL_STORE=str(model_store or ROOT / "model-store"),
        VOXMILL_ENVIRONMENT="test",
    )
    if api_keys:
        env["VOXMILL_API_KEYS"] = api_keys
    log = data_dir / "server.log"
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "api",
        "--mode",
        "embedded",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", process, log, api_keys)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_server(server)
            pytest.fail(f"the server did not answer /healthz in time:\n{server.log_tail()}")
        time.sleep(0.2)


def stop_server(server: Server) -> None:
    """Stop the app (SIGTERM, then SIGKILL after 15 s)."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


# --- arranging state through the API, and what the audio should be ------------------------------

SENTENCE_PAUSE_S = 0.25
PARAGRAPH_PAUSE_S = 0.7
CHAPTER_PAUSE_S = 1.5


def wait_for_conversion(api: httpx.Client, conversion_id: int, timeout: float = 90.0) -> Any:
    """Poll a conversion until it has finished; return it."""
    deadline = time.monotonic() + timeout
    while True:
        conversion = api.get(f"/v1/conversions/{conversion_id}").json()
        if conversion["state"] == "finished":
            return conversion
        if time.monotonic() > deadline:
            raise AssertionError(f"conversion {conversion_id} still running: {conversion}")
        time.sleep(0.2)


def make_project(
    server: Server, name: str, text: str, *, fmt: str = "text", convert: bool = True
) -> dict[str, Any]:
    """A project with pasted text, converted (and finished) unless ``convert`` is false."""
    with server.api() as api:
        project = api.post("/v1/projects", json={"name": name}).raise_for_status().json()
        api.post(
            f"/v1/projects/{project['id']}/documents", json={"text": text, "format": fmt}
        ).raise_for_status()
        if convert:
            started = api.post(f"/v1/projects/{project['id']}/conversions").raise_for_status()
            wait_for_conversion(api, started.json()["id"])
        detail: dict[str, Any] = api.get(f"/v1/projects/{project['id']}").json()
        return detail


def chapter_seconds(api: httpx.Client, chapter_id: int) -> float:
    """How long the chapter's audio should be: its sentences plus the pauses between them."""
    chapter = api.get(f"/v1/chapters/{chapter_id}").raise_for_status().json()
    total = 0.0
    paragraphs = [b["segments"] for b in chapter["blocks"] if b["segments"]]
    for segments in paragraphs:
        total += sum(s["duration_ms"] for s in segments) / 1000
        total += SENTENCE_PAUSE_S * (len(segments) - 1)
    return total + PARAGRAPH_PAUSE_S * max(len(paragraphs) - 1, 0)


def project_seconds(api: httpx.Client, project_id: int) -> float:
    """How long the whole project's audio should be."""
    chapters = api.get(f"/v1/projects/{project_id}").raise_for_status().json()["chapters"]
    total = sum(chapter_seconds(api, c["id"]) for c in chapters)
    return total + CHAPTER_PAUSE_S * max(len(chapters) - 1, 0)
