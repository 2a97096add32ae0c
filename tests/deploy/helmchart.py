"""Helpers for the deploy tests: where the chart is, how to run helm, how to read manifests."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "voxmill"
PRODUCTION_VALUES = CHART / "ci" / "production-values.yaml"
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# Regenerates values.schema.json and the README tables from values.yaml (make chart-schema).
CHART_SCHEMA_SCRIPT = ROOT / "scripts" / "chart_schema.py"
README_GENERATOR = ROOT / ".tools" / "chart-tools" / "node_modules" / ".bin" / "readme-generator"
RELEASE = "vx"
NAMESPACE = "voxmill"
# The Kubernetes versions the rendered manifests must be valid for: the chart's kubeVersion
# floor and the OKE version the guide targets (both ship with kubernetes-validate).
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")

# Value sets the tests render: the defaults, a production-like OKE install, and a trial with
# the in-cluster PostgreSQL and RabbitMQ.
PROFILES: dict[str, tuple[tuple[Path, ...], tuple[str, ...]]] = {
    "default": ((), ()),
    "production": ((PRODUCTION_VALUES,), ()),
    "trial": ((), ("postgresql.enabled=true", "rabbitmq.enabled=true", "worker.keda.enabled=true")),
    # Every stage on its own autoscaler (issue 14, docs/scaling.md).
    "scaling": (
        (PRODUCTION_VALUES,),
        (
            "api.autoscaling.enabled=false",
            "scaling.api.enabled=true",
            "scaling.torchserve.enabled=true",
        ),
    ),
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "DaemonSet")


def missing_tool(what: str, how: str) -> None:
    """Skip (or fail under CI=true) because a tool the deploy tests need is missing."""
    message = f"{what} is not installed: {how}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@functools.cache
def helm_binary() -> str | None:
    """The helm binary from PATH or .tools/helm/helm, or None."""
    found = shutil.which("helm")
    if found:
        return found
    local = ROOT / ".tools" / "helm" / "helm"
    return str(local) if local.is_file() and os.access(local, os.X_OK) else None


@dataclass(frozen=True)
class Result:
    """One ``helm template`` run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def manifests(self) -> list[dict[str, Any]]:
        """The rendered documents (the run must have succeeded)."""
        assert self.returncode == 0, self.stderr
        return [doc for doc in yaml.safe_load_all(self.stdout) if doc]


@functools.cache
def helm_template(
    helm: str, files: tuple[Path, ...], sets: tuple[str, ...], chart: Path = CHART
) -> Result:
    """Run ``helm template`` (cached per argument set)."""
    args = [helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for f in files:
        args += ["--values", str(f)]
    for s in sets:
        args += ["--set", s]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The manifests of one kind, by name."""
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def name(component: str) -> str:
    """The resource name of a chart component."""
    return f"{RELEASE}-voxmill-{component}"


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    """The pod spec of a workload manifest."""
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def containers(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A workload's containers (init containers included), by name."""
    spec = pod_spec(manifest)
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


def env(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env entries by name: the value, or the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}
