"""Fixtures that render the Helm chart with a real helm binary.

helm comes from PATH (``make test`` puts .tools/helm there) or .tools/helm/helm. Where it is
missing the deploy tests skip with the reason, except under CI (CI=true), where they fail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from helmchart import (
    PROFILES,
    README_GENERATOR,
    Result,
    helm_binary,
    helm_template,
    missing_tool,
)

Template = Callable[..., Result]


@pytest.fixture(scope="session")
def helm() -> str:
    """Path to a helm v3 binary."""
    path = helm_binary()
    if path is None:
        missing_tool("helm", "run 'bash scripts/install-helm.sh .tools' (make test does)")
    assert path is not None
    version = subprocess.run([path, "version", "--short"], capture_output=True, text=True)
    assert version.stdout.startswith("v3."), f"need helm v3, got {version.stdout!r}"
    return path


@pytest.fixture(scope="session")
def readme_generator() -> Path:
    """Bitnami's readme-generator-for-helm, as scripts/install-chart-tools.sh pins it."""
    if not README_GENERATOR.is_file():
        missing_tool(
            "readme-generator-for-helm",
            "run 'bash scripts/install-chart-tools.sh .tools' (make test does)",
        )
    return README_GENERATOR


@pytest.fixture(scope="session")
def template(helm: str) -> Template:
    """``template(*sets, files=())``: run helm template on the chart."""

    def run(*sets: str, files: Iterable[Path] = ()) -> Result:
        return helm_template(helm, tuple(files), tuple(sets))

    return run


@pytest.fixture(scope="session")
def render(template: Template) -> Callable[[str], list[dict[str, Any]]]:
    """``render(profile)``: the manifests of one of PROFILES."""

    def run(profile: str) -> list[dict[str, Any]]:
        files, sets = PROFILES[profile]
        return template(*sets, files=files).manifests

    return run
