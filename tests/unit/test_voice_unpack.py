"""Unpacking an uploaded voice: hostile archives are refused before anything is loaded."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from voicekit import hostile_zip, joe_files, symlink_tar

from voices.unpack import (
    UploadError,
    check_name,
    check_piper_files,
    check_transformers_dir,
    extract_archive,
)

LIMIT = 4 * 1024 * 1024


def fake_model(folder: Path) -> Path:
    """A save_pretrained-shaped folder (not a loadable model: enough for the file checks)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "vits"}))
    (folder / "vocab.json").write_text(json.dumps({"a": 0}))
    header = json.dumps({"__metadata__": {"format": "pt"}}).encode()
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    return folder


def test_a_clean_zip_with_one_top_folder_unpacks_to_that_folder(tmp_path: Path) -> None:
    model = fake_model(tmp_path / "src")
    archive = tmp_path / "v.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in model.iterdir():
            zf.write(path, f"my-voice/{path.name}")

    folder = extract_archive(archive, tmp_path / "out", max_unpacked_bytes=LIMIT)

    assert folder.name == "my-voice"
    check_transformers_dir(folder)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("traversal", "outside the archive"),
        ("absolute", "absolute path"),
        ("symlink", "symbolic link"),
        ("bomb", "unpacks to more than"),
    ],
)
def test_hostile_zips_are_refused_while_unpacking(tmp_path: Path, kind: str, reason: str) -> None:
    archive = hostile_zip(tmp_path / "bad.zip", kind, fake_model(tmp_path / "src"))
    out = tmp_path / "out"

    with pytest.raises(UploadError, match=reason):
        extract_archive(archive, out, max_unpacked_bytes=LIMIT)
    assert not (tmp_path / "escaped.txt").exists()
    assert sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) <= LIMIT


@pytest.mark.parametrize(("kind", "reason"), [("pickle", "pickled"), ("code", "unexpected file")])
def test_pickles_and_code_are_refused_after_unpacking(
    tmp_path: Path, kind: str, reason: str
) -> None:
    archive = hostile_zip(tmp_path / "bad.zip", kind, fake_model(tmp_path / "src"))
    folder = extract_archive(archive, tmp_path / "out", max_unpacked_bytes=LIMIT)

    with pytest.raises(UploadError, match=reason):
        check_transformers_dir(folder)


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    target = tmp_path / "bad.tar"
    with tarfile.open(target, "w") as archive:
        archive.addfile(member, io.BytesIO(data) if data else None)
    return target


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        (tarfile.LNKTYPE, "link"),
        (tarfile.CHRTYPE, "device"),
        (tarfile.FIFOTYPE, "FIFO"),
    ],
)
def test_tar_links_and_devices_are_refused(tmp_path: Path, kind: bytes, reason: str) -> None:
    member = tarfile.TarInfo("config.json")
    member.type = kind
    member.linkname = "/etc/passwd"

    with pytest.raises(UploadError, match=reason):
        extract_archive(_tar_with(tmp_path, member), tmp_path / "out", max_unpacked_bytes=LIMIT)


def test_tar_symlinks_and_traversal_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadError, match="link"):
        extract_archive(
            symlink_tar(tmp_path / "l.tar.gz", fake_model(tmp_path / "src")),
            tmp_path / "out",
            max_unpacked_bytes=LIMIT,
        )
    member = tarfile.TarInfo("../../evil.json")
    member.size = 2
    with pytest.raises(UploadError, match="outside"):
        extract_archive(
            _tar_with(tmp_path, member, b"{}"), tmp_path / "out2", max_unpacked_bytes=LIMIT
        )


def test_not_an_archive_and_missing_files_say_what_to_upload(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(UploadError, match="neither a zip nor a tar"):
        extract_archive(junk, tmp_path / "out", max_unpacked_bytes=LIMIT)
    folder = fake_model(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    with pytest.raises(UploadError, match="no model weights"):
        check_transformers_dir(folder)
    (folder / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(UploadError, match="not a safetensors file"):
        check_transformers_dir(folder)


def test_a_config_asking_for_remote_code_is_refused(tmp_path: Path) -> None:
    folder = fake_model(tmp_path / "m")
    (folder / "config.json").write_text(
        json.dumps({"model_type": "vits", "auto_map": {"AutoModel": "evil.Model"}})
    )
    with pytest.raises(UploadError, match="custom model code"):
        check_transformers_dir(folder)


def test_piper_files_are_checked(tmp_path: Path) -> None:
    model, config = joe_files()
    assert check_piper_files(model, config)["audio"]["sample_rate"] == 22050  # type: ignore[index]
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"audio": {}}))
    with pytest.raises(UploadError, match="Piper voice config"):
        check_piper_files(model, bad)
    not_onnx = tmp_path / "m.onnx"
    not_onnx.write_bytes(b"\x00garbage")
    with pytest.raises(UploadError, match="not an ONNX model"):
        check_piper_files(not_onnx, config)


def test_onnx_with_external_weights_is_refused(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((64, 64), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])],
        "g",
        [],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [64, 64])],
        [weight],
    )
    model = helper.make_model(graph)
    path = tmp_path / "ext.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="weights.bin")
    _, config = joe_files()
    with pytest.raises(UploadError, match="external weight files"):
        check_piper_files(path, config)


@pytest.mark.parametrize("name", ["Joe", "a.b", "../x", "", "x" * 64, "-lead", "sp ace"])
def test_voice_names_are_plain(name: str) -> None:
    with pytest.raises(UploadError, match="invalid voice name"):
        check_name(name)
    assert check_name("joe-copy_2") == "joe-copy_2"
