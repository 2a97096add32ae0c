"""Voice uploads in the embedded mode: the same API validates the voice in a limited child
process, archives it into the model store and serves it in-process; hostile uploads get a 4xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import load_file, save_file
from voicekit import (
    SAMPLE_TEXT,
    hostile_zip,
    symlink_tar,
    tar_dir,
    tiny_vits,
    wav_stats,
    zip_dir,
)

from contract.settings import Mode, Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
USER = "user-key-0123456789abcdef"
ADMIN = "admin-key-0123456789abcdef"
AS_USER = {"Authorization": f"Bearer {USER}"}
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def vits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vits(tmp_path_factory.mktemp("vits") / "tiny")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, joe_mar: Path) -> Iterator[TestClient]:
    from api.main import create_app

    root = tmp_path_factory.mktemp("embedded")
    store = root / "store"
    store.mkdir()
    os.symlink(joe_mar, store / "joe.mar")
    settings = Settings(
        mode=Mode.EMBEDDED,
        environment="test",
        data_dir=root / "data",
        model_store=store,
        api_keys=[USER, f"{ADMIN}:admin"],
        max_voice_upload_bytes=8 * 1024 * 1024,
        max_voice_unpacked_bytes=16 * 1024 * 1024,
        voice_validate_timeout_s=240,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def upload(
    client: TestClient,
    name: str,
    *,
    archive: Path | None = None,
    headers: dict[str, str] = AS_ADMIN,
    **fields: str,
) -> object:
    files = {}
    if archive is not None:
        files["archive"] = (archive.name, archive.read_bytes(), "application/octet-stream")
    data = {"name": name, "language": "en", "sample_text": SAMPLE_TEXT, **fields}
    return client.post("/v1/voices", data=data, files=files, headers=headers)


def test_transformers_voice_is_validated_archived_and_served_in_process(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    response = upload(
        app, "tiny", archive=zip_dir(vits_dir, tmp_path / "tiny.zip"), gender="female"
    )

    assert response.status_code == 201, response.text
    voice = response.json()
    assert voice["name"] == "tiny" and voice["default_version"] == "1"
    (version,) = voice["versions"]
    assert version["family"] == "transformers" and version["sample_rate"] == 16000
    assert version["created_by"].startswith("key-")
    sample = app.get(version["sample_url"], headers=AS_USER)
    rate, samples, rms = wav_stats(sample.content)
    assert sample.status_code == 200 and rate == 16000 and samples > 0 and rms > 0
    store = Path(app.app.state.settings.model_store)  # type: ignore[attr-defined]
    assert (store / "tiny.v1.mar").is_file()

    spoken = app.post("/v1/voices/tiny/preview", json={"text": "hello there"}, headers=AS_USER)
    assert spoken.status_code == 200
    assert wav_stats(spoken.content)[0] == 16000
    listed = {v["name"]: v for v in app.get("/v1/voices", headers=AS_USER).json()}
    assert listed["joe"]["builtin"] is True and listed["tiny"]["default_version"] == "1"


def test_a_tar_upload_of_the_same_name_is_version_two(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    response = upload(app, "tiny", archive=tar_dir(vits_dir, tmp_path / "tiny.tar.gz"))

    assert response.status_code == 201, response.text
    assert [v["version"] for v in response.json()["versions"]] == ["1", "2"]
    assert response.json()["default_version"] == "1"  # a new version is not the default yet
    assert (
        app.put("/v1/voices/tiny/default", json={"version": "2"}, headers=AS_ADMIN).json()[
            "default_version"
        ]
        == "2"
    )
    health = app.get("/v1/voices/tiny/health", headers=AS_USER).json()
    assert health["healthy"] is True and health["serving"]["served_by"] == "in-process"
    rolled = app.post("/v1/voices/tiny/rollback", headers=AS_ADMIN)
    assert rolled.status_code == 200 and rolled.json()["default_version"] == "1"


def test_only_admin_keys_may_upload_or_roll_back(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    archive = zip_dir(vits_dir, tmp_path / "tiny.zip")
    refused = upload(app, "sneaky", archive=archive, headers=AS_USER)
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert upload(app, "sneaky", archive=archive, headers={}).status_code == 401
    assert app.post("/v1/voices/tiny/rollback", headers=AS_USER).status_code == 403
    assert (
        app.put("/v1/voices/tiny/default", json={"version": "1"}, headers=AS_USER).status_code
        == 403
    )
    assert app.patch("/v1/voices/tiny", json={"workers": 2}, headers=AS_USER).status_code == 403
    assert app.get("/v1/voices/sneaky", headers=AS_USER).status_code == 404


@pytest.mark.parametrize("kind", ["traversal", "absolute", "symlink", "pickle", "code", "bomb"])
def test_hostile_zip_archives_are_refused_with_4xx(
    app: TestClient, vits_dir: Path, tmp_path: Path, kind: str
) -> None:
    archive = hostile_zip(tmp_path / f"{kind}.zip", kind, vits_dir)

    response = upload(app, f"hostile-{kind}", archive=archive)

    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"].startswith("invalid voice")
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not Path("/tmp/voxmill-absolute.txt").exists()
    assert app.get(f"/v1/voices/hostile-{kind}", headers=AS_USER).status_code == 404


def test_symlink_in_a_tar_and_oversized_uploads_are_refused(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    linked = upload(app, "linked", archive=symlink_tar(tmp_path / "l.tar.gz", vits_dir))
    assert linked.status_code == 422 and "link" in linked.json()["detail"]

    big = tmp_path / "big.zip"
    big.write_bytes(os.urandom(9 * 1024 * 1024))
    oversized = upload(app, "big", archive=big)
    assert oversized.status_code == 413 and "MB" in oversized.json()["detail"]


def test_a_silent_or_broken_voice_is_refused_with_what_went_wrong(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in vits_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    # Weights of the wrong shape: the model cannot load them.
    weights = load_file(broken / "model.safetensors")
    first = sorted(weights)[0]
    weights[first] = np.zeros((3, 3), dtype=np.float32)
    save_file(weights, broken / "model.safetensors", metadata={"format": "pt"})
    response = upload(app, "broken", archive=zip_dir(broken, tmp_path / "broken.zip"))
    assert response.status_code == 422
    assert "could not be loaded" in response.json()["detail"]

    no_name = upload(app, "Bad Name!", archive=zip_dir(vits_dir, tmp_path / "t.zip"))
    assert no_name.status_code == 422 and "voice name" in no_name.json()["detail"]


def test_a_builtin_voice_name_cannot_be_taken(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    response = upload(app, "joe", archive=zip_dir(vits_dir, tmp_path / "joe.zip"))
    assert response.status_code == 409 and "built-in" in response.json()["detail"]


@pytest.mark.parametrize("name", ["nova", "alloy"])
def test_an_openai_voice_name_cannot_be_taken(
    app: TestClient, vits_dir: Path, tmp_path: Path, name: str
) -> None:
    """Requests read OpenAI's voice names as aliases: a voice under one could never be reached."""
    response = upload(app, name, archive=zip_dir(vits_dir, tmp_path / "v.zip"))
    assert response.status_code == 409 and "OpenAI's voice names" in response.json()["detail"]


def test_an_archive_and_piper_files_together_are_refused(
    app: TestClient, vits_dir: Path, tmp_path: Path
) -> None:
    archive = zip_dir(vits_dir, tmp_path / "both.zip")
    files = {
        "archive": (archive.name, archive.read_bytes(), "application/octet-stream"),
        "model": ("v.onnx", b"onnx", "application/octet-stream"),
    }
    data = {"name": "both", "language": "en", "sample_text": SAMPLE_TEXT}
    response = app.post("/v1/voices", data=data, files=files, headers=AS_ADMIN)
    assert response.status_code == 422 and "not both" in response.json()["detail"]
