"""The chart lints, renders, and every manifest is valid Kubernetes (or KEDA) for OKE."""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from helmchart import (
    CHART,
    KUBERNETES_VERSIONS,
    PRODUCTION_VALUES,
    PROFILES,
    SCHEMAS,
    by_kind,
    name,
)

pytestmark = pytest.mark.deploy
Render = Callable[[str], list[dict[str, Any]]]
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


@pytest.fixture(scope="module")
def keda_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / "keda-v1alpha1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def validate_keda(schema: dict[str, Any], manifest: dict[str, Any]) -> None:
    ref = {"$ref": f"#/$defs/{manifest['kind']}", "$defs": schema["$defs"]}
    jsonschema.Draft202012Validator(ref).validate(manifest)


@pytest.mark.parametrize("values", [(), (PRODUCTION_VALUES,)], ids=["default", "production"])
def test_helm_lint_passes(helm: str, values: tuple[str, ...]) -> None:
    args = [helm, "lint", "--strict", str(CHART)]
    for v in values:
        args += ["--values", str(v)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates(
    render: Render, keda_schema: dict[str, Any], profile: str, version: str
) -> None:
    manifests = render(profile)
    assert len(manifests) >= 10
    for m in manifests:
        if m["kind"] in KEDA_KINDS:
            validate_keda(keda_schema, m)
            continue
        # strict: unknown fields are errors, as the API server's field validation makes them.
        kubernetes_validate.validate(m, version, strict=True)


def test_production_render_has_every_component(render: Render) -> None:
    manifests = render("production")
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    expected = {
        ("Deployment", name("api")),
        ("Service", name("api")),
        ("Ingress", name("api")),
        ("HorizontalPodAutoscaler", name("api")),
        ("PodDisruptionBudget", name("api")),
        ("Deployment", name("worker")),
        ("ScaledObject", name("worker")),
        ("TriggerAuthentication", name("worker")),
        ("Deployment", name("torchserve-gpu")),
        ("Deployment", name("torchserve-cpu")),
        ("ConfigMap", name("torchserve-gpu")),
        ("Service", name("torchserve-gpu")),
        ("Job", name("migrations")),
        ("NetworkPolicy", name("torchserve-gpu")),
    }
    assert expected <= kinds, expected - kinds
    # External services by default: no database or broker in the cluster.
    assert not by_kind(manifests, "StatefulSet")


def test_validation_is_not_vacuous(render: Render, keda_schema: dict[str, Any]) -> None:
    """The validators reject what the cluster would reject: a typo and a wrong type."""
    manifests = render("production")
    deployment = copy.deepcopy(by_kind(manifests, "Deployment")[name("api")])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)
    deployment = copy.deepcopy(by_kind(manifests, "Deployment")[name("api")])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)

    scaled = by_kind(manifests, "ScaledObject")[name("worker")]
    typo = copy.deepcopy(scaled)
    typo["spec"]["minReplicas"] = 0
    with pytest.raises(jsonschema.ValidationError):
        validate_keda(keda_schema, typo)
    unquoted = copy.deepcopy(scaled)
    unquoted["spec"]["triggers"][0]["metadata"]["value"] = 8  # the CRD's metadata is strings
    with pytest.raises(jsonschema.ValidationError):
        validate_keda(keda_schema, unquoted)
    bad_mode = copy.deepcopy(scaled)
    bad_mode["spec"]["triggers"][0]["metadata"]["mode"] = "queueLength"
    with pytest.raises(jsonschema.ValidationError):
        validate_keda(keda_schema, bad_mode)
