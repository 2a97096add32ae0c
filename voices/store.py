"""Where voice archives (``.mar``) are kept: the model store TorchServe serves from.

A small interface, so object storage can take the place of the local directory later: the API
``put``s a finished archive under a key, TorchServe (or the embedded mode) reads it back by key.
Keys are flat file names (``<voice>.v<version>.mar``): TorchServe resolves a registration URL by
its bare file name inside its ``model_store``, and ``allowed_urls`` refuses everything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}\.v[0-9]{1,6}\.mar$")
CATALOG = "voices.json"


def archive_key(name: str, version: str) -> str:
    """The store key of one voice version: ``<name>.v<version>.mar``."""
    key = f"{name}.v{version}.mar"
    if not _KEY.match(key):
        raise ValueError(f"not a valid archive key: {key!r}")
    return key


def is_versioned_archive(file_name: str) -> bool:
    """Whether ``file_name`` is an uploaded voice version (not a built-in voice's archive)."""
    return bool(_KEY.match(file_name))


class VoiceStore(Protocol):
    """Storage of voice archives and of the catalog the TorchServe pods sync from."""

    def put(self, key: str, source: Path) -> str:
        """Store the file ``source`` under ``key``; returns its SHA-256 (hex)."""
        ...

    def local_path(self, key: str) -> Path:
        """A local path of the stored archive (for the embedded mode)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        ...

    def write_catalog(self, catalog: dict[str, object]) -> None:
        """Publish the desired registrations (read by ``voxmill voice-sync``)."""
        ...


class LocalVoiceStore:
    """Archives as files in a model-store directory (a shared volume in Kubernetes).

    Writes go to a temporary name in the same directory and are renamed into place, so TorchServe
    never sees half an archive.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, key: str, source: Path) -> str:
        """Copy ``source`` into the store as ``key`` (atomically)."""
        self._check(key)
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        partial = self.root / f".{key}.partial"
        with source.open("rb") as src, partial.open("wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(self.root / key)
        return digest.hexdigest()

    def local_path(self, key: str) -> Path:
        """The archive's path in the store."""
        self._check(key)
        return self.root / key

    def delete(self, key: str) -> None:
        """Remove the archive."""
        self._check(key)
        (self.root / key).unlink(missing_ok=True)

    def write_catalog(self, catalog: dict[str, object]) -> None:
        """Write ``voices.json`` atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.root / f".{CATALOG}.partial"
        partial.write_text(json.dumps(catalog, indent=2, sort_keys=True) + "\n")
        partial.replace(self.root / CATALOG)

    def read_catalog(self) -> dict[str, object]:
        """The catalog last written ({} when none)."""
        path = self.root / CATALOG
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _check(key: str) -> None:
        if not _KEY.match(key):
            raise ValueError(f"not a voice archive key: {key!r}")
