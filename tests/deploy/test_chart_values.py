"""values.yaml is documented and schema-checked, and bad values fail early with a clear message."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helmchart import CHART, PRODUCTION_VALUES, Result, by_kind, helm_template

pytestmark = pytest.mark.deploy
Template = Callable[..., Result]
VALUES_FILE = CHART / "values.yaml"
# Free-form maps and lists (resources, selectors, env, ...) are documented as a whole; the
# readme-generator modifiers in brackets ("[object,default: ...]") are not part of the text.
PARAM = re.compile(r"^\s*## @param (\S+) (?:\[[^\]]*\] )?(\S.*)$")


def leaves(values: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every value, stopping at documented free-form blocks."""
    documented = documented_params()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in documented:
            yield from leaves(value, path + ".")
        else:
            yield path, value


def documented_params() -> dict[str, str]:
    """{dotted path: description} from the ``## @param`` comments."""
    lines = VALUES_FILE.read_text().splitlines()
    return {m.group(1): m.group(2) for line in lines if (m := PARAM.match(line))}


def test_every_value_has_a_param_comment() -> None:
    values = yaml.safe_load(VALUES_FILE.read_text())
    paths = {path for path, _ in leaves(values)}
    documented = set(documented_params())
    assert paths - documented == set(), "values without an @param comment"
    assert documented - paths == set(), "@param comments for values that do not exist"


def test_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load(VALUES_FILE.read_text())
    for path, _ in leaves(values):
        node = schema
        for part in path.split("."):
            assert node.get("type") == "object", path
            assert part in node.get("properties", {}), f"{path} is missing from the schema"
            node = node["properties"][part]
        assert "type" in node, path
        assert node.get("description") == documented_params()[path], f"{path}: describe as @param"


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["externalDatabase.existingSecret="],
            "database: no PostgreSQL configured. Create a Secret with the key 'database-url'",
        ),
        (
            ["externalBroker.existingSecret="],
            "broker: no RabbitMQ configured. Create a Secret with the keys 'broker-url'",
        ),
        (
            ["postgresql.enabled=true", "externalDatabase.url=postgresql://u:p@h/db"],
            "both postgresql.enabled=true and externalDatabase.url are set",
        ),
        (
            ["worker.keda.enabled=true", "externalBroker.url=amqp://u:p@mq:5672/v"],
            "set externalBroker.managementUrl",
        ),
        (
            ["worker.terminationGracePeriodSeconds=60"],
            "worker.terminationGracePeriodSeconds (60) must exceed the longest synthesis",
        ),
        (
            ["config.torchserveTimeoutSeconds=300"],
            "torchserve.terminationGracePeriodSeconds (150) must exceed",
        ),
        (["torchserve.cpu.enabled=false"], "enable torchserve.gpu and/or torchserve.cpu"),
        (
            [
                "torchserve.gpu.enabled=true",
                "torchserve.gpu.voices={joe}",
                "torchserve.cpu.voices={joe}",
            ],
            'voice "joe" is listed in both',
        ),
        (["auth.apiKeys={changeme}"], "auth.apiKeys: every key must be a random string"),
        (
            [
                "worker.keda.enabled=true",
                "worker.keda.minReplicaCount=5",
                "worker.keda.maxReplicaCount=2",
            ],
            "minReplicaCount is above maxReplicaCount",
        ),
        (["api.ingress.enabled=true", "api.ingress.tls=true"], "TLS needs api.ingress.hostname"),
    ],
)
def test_inconsistent_values_fail_with_what_to_change(
    template: Template, sets: list[str], message: str
) -> None:
    result = template(*sets)
    assert result.returncode != 0, f"{sets} rendered"
    assert "VALUES VALIDATION" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize(
    ("sets", "field"),
    [
        (["api.service.type=Public"], "api.service.type"),
        (["externalDatabase.url=mysql://u:p@h/db"], "externalDatabase.url"),
        (["externalBroker.url=redis://h"], "externalBroker.url"),
        (["api.replicas=3"], "api"),  # a typo: additional properties are refused
        (["torchserve.gateway.port=8081"], "torchserve.gateway.port"),
        (["torchserve.gpu.gpuCount=0"], "torchserve.gpu.gpuCount"),
        (["config.logLevel=LOUD"], "config.logLevel"),
        (["api.image.digest=latest"], "api.image.digest"),
        (["torchserve.config.extraProperties=enable_model_api=true"], "extraProperties"),
        (["auth.existingSecret=Not_A_Name"], "auth.existingSecret"),
        # One case per kind of check the generated schema makes (values.yaml @schema lines).
        (["config.deliveryLimit=0"], "config.deliveryLimit"),  # minimum
        (["api.replicaCount=1.5"], "api.replicaCount"),  # integer, from the default's type
        (["api.autoscaling.enabled=yes"], "api.autoscaling.enabled"),  # boolean
        (["api.autoscaling.targetCPUUtilizationPercentage=101"], "targetCPUUtilization"),
        (["worker.image.pullPolicy=Sometimes"], "worker.image.pullPolicy"),  # enum
        (["torchserve.gpu.image.tags=x"], "torchserve.gpu.image"),  # nested closed object
        (["api.startupProbe.initialDelaySeconds=0"], "api.startupProbe"),  # @schemaDef probe
        (["torchserve.readinessProbe.exec=x"], "torchserve.readinessProbe"),  # probe keys
        (["api.pdb.maxUnavailable=half"], "api.pdb.maxUnavailable"),  # int-or-percent
        (["torchserve.gpu.shmSizeLimit=2 GB"], "torchserve.gpu.shmSizeLimit"),  # quantity
        (["torchserve.cpu.voices={joe,joe}"], "torchserve.cpu.voices"),  # uniqueItems
        (["torchserve.cpu.voices={-x}"], "torchserve.cpu.voices"),  # items pattern
        (["commonLabels.team=1"], "commonLabels"),  # map of strings
        (["rabbitmq.auth.password=p@ss"], "rabbitmq.auth.password"),
        (["torchserve.modelStore.path=relative"], "torchserve.modelStore.path"),
        (["api.ingress.path=api"], "api.ingress.path"),
    ],
)
def test_schema_refuses_bad_values(template: Template, sets: list[str], field: str) -> None:
    result = template(*sets)
    assert result.returncode != 0, f"{sets} rendered"
    assert field in result.stderr


@pytest.mark.parametrize(
    "sets",
    [
        ["api.pdb.maxUnavailable=1"],  # integer or percentage
        ["api.pdb.minAvailable=50%"],
        ["api.startupProbe.initialDelaySeconds=5", "api.startupProbe.successThreshold=1"],
        ["api.resources.limits.ephemeral-storage=1Gi"],  # documented as a whole: free-form
        ["podSecurityContext.supplementalGroups={10002}"],
        ["torchserve.gpu.enabled=true", "torchserve.gpu.voices={joe}"],
    ],
)
def test_schema_accepts_good_values(template: Template, sets: list[str]) -> None:
    result = template(*sets)
    assert result.returncode == 0, result.stderr


def test_generated_credentials_are_random_and_long(template: Template) -> None:
    secret = by_kind(template().manifests, "Secret")["vx-voxmill-auth"]

    token = base64.b64decode(secret["data"]["torchserve-token"]).decode()
    keys = base64.b64decode(secret["data"]["api-keys"]).decode()
    assert len(token) >= 32 and token.isalnum()
    assert len(keys) >= 32
    again = by_kind(template("commonLabels.x=y").manifests, "Secret")["vx-voxmill-auth"]
    assert again["data"]["torchserve-token"] != secret["data"]["torchserve-token"]


@pytest.fixture(scope="module")
def notes_chart(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart that renders NOTES.txt into a ConfigMap (helm template skips it)."""
    chart = tmp_path_factory.mktemp("chart") / "voxmill"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_test.tpl").write_text(
        '{{- define "test.notes" -}}\n' + notes + "\n{{- end -}}\n"
    )
    (chart / "templates" / "notes-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n"
        'data:\n  notes: {{ include "test.notes" . | toJson }}\n'
    )
    return chart


def notes(helm: str, chart: Path, *sets: str, files: tuple[Path, ...] = ()) -> str:
    result = helm_template(helm, files, sets, chart)
    text: str = by_kind(result.manifests, "ConfigMap")["notes"]["data"]["notes"]
    return text


def test_notes_tell_how_to_reach_the_ui(helm: str, notes_chart: Path) -> None:
    production = notes(helm, notes_chart, files=(PRODUCTION_VALUES,))
    assert "https://tts.example.com/" in production
    assert "kubectl -n voxmill get secret voxmill-auth" in production
    assert "get scaledobject vx-voxmill-worker" in production
    default = notes(helm, notes_chart)
    assert "kubectl -n voxmill port-forward service/vx-voxmill-api 8000:80" in default
    assert 'Secret "voxmill-external"' in default
    trial = notes(helm, notes_chart, "postgresql.enabled=true", "rabbitmq.enabled=true")
    assert "in-cluster PostgreSQL and RabbitMQ run as single nodes" in trial
    lb = notes(helm, notes_chart, "api.service.type=LoadBalancer")
    assert "status.loadBalancer.ingress[0].ip" in lb
