"""The embedded mode with the real voice: one process, SQLite, the in-process queue and the
handler loaded in-process, through the same splitting, task, result and storage code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from audio import codecs as audio
from contract.settings import Mode, Settings

pytestmark = pytest.mark.integration

TIMEOUT = 120.0
TEXT = """# Embedded

The whole product runs in one process. It needs no broker.

# Still Embedded

Nothing else is required.
"""


def test_embedded_mode_converts_with_the_real_voice(joe_mar: Path, tmp_path: Path) -> None:
    settings = Settings(
        mode=Mode.EMBEDDED, data_dir=tmp_path, model_store=joe_mar.parent, outbox_poll_s=0.1
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/voices").status_code in (200, 404)  # the speech router, if there
        project = client.post("/v1/projects", json={"name": "local"}).json()
        assert project["voice"] == "joe"
        r = client.post(
            f"/v1/projects/{project['id']}/documents", json={"text": TEXT, "format": "markdown"}
        )
        assert r.status_code == 201, r.text
        conversion = client.post(f"/v1/projects/{project['id']}/conversions").json()
        deadline = time.monotonic() + TIMEOUT
        while (progress := client.get(f"/v1/conversions/{conversion['id']}").json())[
            "state"
        ] != "finished":
            assert time.monotonic() < deadline, progress
            time.sleep(0.2)

        assert (progress["done"], progress["failed"]) == (r.json()["segments"], 0)
        whole, rate = audio.decode(client.get(f"/v1/projects/{project['id']}/audio").content)
        assert rate == 22050
        assert len(whole) > 3 * rate  # about five short sentences of speech
    assert (tmp_path / "voxmill.db").is_file()
