"""The web UI: the files in ``api/static`` served by the API itself (no build step, no CDN).

``/`` is the page (``index.html``); its scripts, styles and icon live under ``/static/``. The
page talks to the ``/v1`` API with relative URLs, so the API and the UI share one origin and the
UI keeps working behind a path prefix.

Caching: the file names carry no content hash (there is no build step), so every response says
``Cache-Control: no-cache``: browsers keep the files but revalidate them with the ETag on each
load, which costs a 304 and never serves an outdated script after an upgrade.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"

# Everything the page needs comes from this origin; audio plays from blob: URLs (fetched with the
# API key in a header, never in a URL).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_COMMON_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
_PAGE_HEADERS = {
    **_COMMON_HEADERS,
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}


class _UiFiles(StaticFiles):
    """Static files with the UI's cache and security headers (on 200 and 304 alike)."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        headers = _PAGE_HEADERS if str(full_path).endswith(".html") else _COMMON_HEADERS
        response.headers.update(headers)
        return response


def mount_ui(app: FastAPI, *, directory: Path = STATIC_DIR) -> None:
    """Serve the web UI: ``GET /`` is the page, ``/static/...`` its assets.

    Neither path overlaps the API's (``/v1``, ``/healthz``, ``/docs``...), so this can be called
    before or after the routers are included.

    Args:
        app: The API app.
        directory: The folder holding ``index.html`` and the assets (tests may swap it).

    Raises:
        RuntimeError: ``directory`` has no ``index.html`` (a broken install).
    """
    index = directory / "index.html"
    if not index.is_file():
        raise RuntimeError(f"the web UI is missing: {index} does not exist; reinstall Voxmill")
    files = _UiFiles(directory=directory)

    async def page(request: Request) -> Response:
        stat_result = await run_in_threadpool(os.stat, index)
        return files.file_response(index, stat_result, request.scope)

    app.add_api_route("/", page, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount(STATIC_PATH, files, name="ui-static")
