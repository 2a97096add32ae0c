"""The layout of docs/architecture.md holds: no package imports one on a higher floor, and the
leaves import nothing of ours."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOORS = {
    "contract": 1,
    "audio": 1,
    "text_processing": 1,
    "devtools": 1,
    "handlers": 2,
    "messaging": 2,
    "gateway": 2,
    "synthesis": 3,
    "voices": 3,
    "worker": 4,
    "api": 5,
    "cli": 6,
}
LEAVES = {"contract", "audio", "devtools"}


def imported_packages(package: str) -> dict[str, set[str]]:
    """Our top-level packages imported by each module of ``package`` (lazy imports included)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = (names & set(FLOORS)) - {package}
    return found


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_nothing_imports_upward(package: str) -> None:
    for module, imports in imported_packages(package).items():
        upward = {name for name in imports if FLOORS[name] > FLOORS[package]}
        assert not upward, f"{module} imports {sorted(upward)} from a higher floor"


@pytest.mark.parametrize("package", sorted(LEAVES))
def test_leaves_import_nothing_of_ours(package: str) -> None:
    for module, imports in imported_packages(package).items():
        assert not imports, f"{module} imports {sorted(imports)}"


def test_the_architecture_document_names_every_package() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for package in FLOORS:
        assert f"\n{package}/" in text, package


# Document readers (the API reads uploads with them in its worker processes) and FFmpeg (PyAV:
# compressed streams for REST speech): the voice handler, bundled into every .mar and imported by
# each TorchServe worker, must not pay for them — it writes FLAC/WAV/PCM with libsndfile.
DOCUMENT_READERS = ("lxml", "ebooklib", "docx", "pypdf", "selectolax", "pebble", "av")


def test_the_voice_handler_does_not_import_the_document_readers_nor_ffmpeg() -> None:
    code = (
        "import sys, handlers.voxmill_handler\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({DOCUMENT_READERS!r})))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]", f"the handler's import path loads {found}"
