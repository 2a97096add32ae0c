"""Unpacking and checking an uploaded voice before anything loads it.

An upload is untrusted: an archive may try to write outside its folder (``../``, absolute names),
plant links or device files, unpack to far more than it weighs (a zip bomb), or carry pickled
weights (``pytorch_model.bin``), which run code when loaded. Everything here refuses those with a
:class:`UploadError` whose message says what to fix; nothing is loaded, imported or executed.

Limits are checked while unpacking, on the bytes actually written, not on what the archive's
directory claims. ``zipfile`` and ``tarfile`` do the parsing (the standard library's readers);
we only decide what may be written, and write it ourselves, member by member.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from contract import limits

# A voice name is its TorchServe model name and part of a file name: no dots, no slashes.
VOICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# What a transformers VITS save_pretrained directory may hold. Weights only as safetensors (no
# pickles); no Python files (no remote code).
HF_ALLOWED = re.compile(
    r"^(config\.json|vocab\.json|tokenizer_config\.json|special_tokens_map\.json|"
    r"added_tokens\.json|generation_config\.json|preprocessor_config\.json|"
    r"model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json|"
    r"README\.md|LICENSE(\.md|\.txt)?|\.gitattributes)$"
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz", ".joblib")
MAX_MEMBERS = limits.MAX_VOICE_ARCHIVE_ENTRIES
_CHUNK = 1 << 20


class UploadError(ValueError):
    """The upload is not an acceptable voice; the message says why and what to do."""


def check_name(name: str) -> str:
    """The voice name, or an :class:`UploadError` explaining the rules."""
    if not VOICE_NAME.match(name):
        raise UploadError(
            f"invalid voice name {name!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return name


@dataclass
class _Budget:
    """Bytes left to write for the whole upload (the zip-bomb bound)."""

    left: int
    limit: int

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise UploadError(
                f"the archive unpacks to more than {self.limit // (1024 * 1024)} MB "
                "(VOXMILL_MAX_VOICE_UNPACKED_BYTES); upload only the model's own files"
            )


def _member_path(raw: str) -> PurePosixPath:
    """The member's relative path, refusing absolute names, drive letters and ``..``."""
    name = raw.replace("\\", "/")
    path = PurePosixPath(name)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", name):
        raise UploadError(f"archive member {raw!r} has an absolute path; refusing the archive")
    if any(part == ".." for part in path.parts):
        raise UploadError(f"archive member {raw!r} points outside the archive (path traversal)")
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")])


def _copy(source: IO[bytes], target: Path, budget: _Budget) -> None:
    with target.open("xb") as out:
        while chunk := source.read(_CHUNK):
            budget.take(len(chunk))
            out.write(chunk)


def _target(dest: Path, rel: PurePosixPath) -> Path:
    target = (dest / Path(*rel.parts)).resolve()
    if not target.is_relative_to(dest.resolve()):
        raise UploadError(f"archive member {str(rel)!r} points outside the archive")
    return target


def _extract_zip(archive: zipfile.ZipFile, dest: Path, budget: _Budget) -> None:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UploadError(f"the archive has {len(infos)} entries; a voice needs a handful")
    for info in infos:
        rel = _member_path(info.filename)
        # Unix zips keep the file type in the high bits; others leave it 0 (a plain file).
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise UploadError(f"archive member {info.filename!r} is a symbolic link; refusing")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UploadError(f"archive member {info.filename!r} is not a regular file")
        if info.is_dir() or not rel.parts:
            _target(dest, rel).mkdir(parents=True, exist_ok=True)
            continue
        target = _target(dest, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source:
            _copy(source, target, budget)


def _extract_tar(archive: tarfile.TarFile, dest: Path, budget: _Budget) -> None:
    count = 0
    for member in archive:
        count += 1
        if count > MAX_MEMBERS:
            raise UploadError(f"the archive has more than {MAX_MEMBERS} entries")
        rel = _member_path(member.name)
        if member.issym() or member.islnk():
            raise UploadError(f"archive member {member.name!r} is a link; refusing the archive")
        if member.isdir():
            _target(dest, rel).mkdir(parents=True, exist_ok=True)
            continue
        if not member.isfile():
            raise UploadError(
                f"archive member {member.name!r} is a device, FIFO or other special file"
            )
        target = _target(dest, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        if source is None:
            raise UploadError(f"archive member {member.name!r} cannot be read")
        with source:
            _copy(source, target, budget)


def extract_archive(archive: Path, dest: Path, *, max_unpacked_bytes: int) -> Path:
    """Unpack a zip or tar (gzip/bzip2/xz) voice archive into ``dest`` safely.

    Args:
        archive: The uploaded file.
        dest: An empty directory to unpack into.
        max_unpacked_bytes: The most bytes all members may unpack to, counted while writing.

    Returns:
        The directory holding the model files: ``dest``, or its only sub-directory when the
        archive wraps everything in one folder (as ``zip -r voice.zip voice/`` does).

    Raises:
        UploadError: Not a zip or tar, or a member that is unsafe or over the limits.
    """
    budget = _Budget(max_unpacked_bytes, max_unpacked_bytes)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                _extract_zip(zf, dest, budget)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, mode="r:*") as tf:
                _extract_tar(tf, dest, budget)
        else:
            raise UploadError(
                "the voice archive is neither a zip nor a tar file: upload the save_pretrained "
                "directory as .zip or .tar.gz"
            )
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, FileExistsError):
            raise UploadError("the archive holds the same file twice") from e
        raise UploadError(f"the voice archive is damaged: {e}") from e
    entries = [p for p in dest.iterdir() if p.name not in ("__MACOSX",)]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def _safetensors_ok(path: Path) -> None:
    """A safetensors file starts with an 8-byte header length and that much JSON."""
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise UploadError(f"{path.name} is not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", head)
        if length <= 1 or length > 100 * 1024 * 1024 or length + 8 > path.stat().st_size:
            raise UploadError(f"{path.name} is not a safetensors file (bad header length)")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise UploadError(f"{path.name} is not a safetensors file (bad header)") from e
    if not isinstance(header, dict):
        raise UploadError(f"{path.name} is not a safetensors file (bad header)")


def check_transformers_dir(folder: Path) -> None:
    """Refuse a save_pretrained directory that holds anything but a VITS model's plain files.

    Raises:
        UploadError: Pickled weights, code, links, nested folders, no weights, not a VITS config.
    """
    names: list[str] = []
    for path in folder.iterdir():
        if path.is_symlink() or not path.is_file():
            raise UploadError(
                f"{path.name!r}: a save_pretrained directory holds only files (no folders, links)"
            )
        if path.name.lower().endswith(PICKLE_SUFFIXES):
            raise UploadError(
                f"{path.name!r} holds pickled weights, which can run code when loaded: save the "
                "model with save_pretrained(..., safe_serialization=True) (model.safetensors)"
            )
        if not HF_ALLOWED.match(path.name):
            raise UploadError(
                f"unexpected file {path.name!r} in the voice: a transformers VITS voice holds "
                "config.json, vocab.json, tokenizer files and *.safetensors weights only"
            )
        names.append(path.name)
    if "config.json" not in names:
        raise UploadError("no config.json: upload the directory written by save_pretrained")
    if "vocab.json" not in names:
        raise UploadError("no vocab.json: save the tokenizer too (tokenizer.save_pretrained)")
    weights = [n for n in names if n.endswith(".safetensors")]
    if not weights:
        raise UploadError("no model weights: expected model.safetensors")
    for name in weights:
        _safetensors_ok(folder / name)
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UploadError(f"config.json is not valid JSON: {e}") from e
    if not isinstance(config, dict) or config.get("model_type") != "vits":
        raise UploadError("config.json is not a VITS model (model_type must be 'vits')")
    if config.get("auto_map"):
        raise UploadError("config.json asks for custom model code (auto_map); not accepted")


def check_piper_files(model: Path, config: Path) -> dict[str, object]:
    """Check a Piper voice's JSON config and that the ONNX file keeps its weights inside.

    Returns:
        The parsed config.

    Raises:
        UploadError: The config lacks what Piper needs, or the graph refers to external files.
    """
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UploadError(f"the .onnx.json config is not valid JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise UploadError("the .onnx.json config must be a JSON object")
    try:
        rate = int(parsed["audio"]["sample_rate"])
        str(parsed["espeak"]["voice"])
        id_map = parsed["phoneme_id_map"]
    except (KeyError, TypeError, ValueError) as e:
        raise UploadError(
            "the .onnx.json config lacks audio.sample_rate, espeak.voice or phoneme_id_map: is "
            "it a Piper voice config?"
        ) from e
    if not isinstance(id_map, dict) or not 8000 <= rate <= 48000:
        raise UploadError("the .onnx.json config has an unusable phoneme map or sample rate")
    import onnx

    try:
        graph = onnx.load(str(model), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for a bad file
        raise UploadError(f"the .onnx file is not an ONNX model: {type(e).__name__}") from e
    for tensor in graph.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise UploadError("the ONNX model refers to external weight files; export it whole")
    return parsed


@contextmanager
def staging_dir(root: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory under ``root`` removed afterwards (uploads never touch shared /tmp)."""
    import tempfile

    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
