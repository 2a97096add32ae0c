"""Each stage scales on its own signal (issue 14, docs/scaling.md): the API on its interactive
sessions, each worker lane on its own queue (the books' down to zero), each TorchServe pool on
its queue time and the GPU pool on GPU use. The manifests' validity is checked for every profile
in test_chart_valid.py (KEDA's objects against tests/deploy/schemas/keda-v1alpha1.json)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from conftest import Template
from helmchart import SCHEMAS, by_kind, containers, name
from test_chart_valid import validate_keda

pytestmark = pytest.mark.deploy
Render = Callable[[str], list[dict[str, Any]]]


def triggers(scaled: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = scaled["spec"]["triggers"]
    return result


def test_every_stage_has_its_own_scaler_and_no_fixed_replica_count(render: Render) -> None:
    manifests = render("scaling")
    scaled = by_kind(manifests, "ScaledObject")
    assert set(scaled) == {
        name("api"),
        name("worker"),
        name("worker-interactive"),
        name("torchserve-gpu"),
        name("torchserve-cpu"),
    }
    deployments = by_kind(manifests, "Deployment")
    for target in scaled.values():
        deployment = deployments[target["spec"]["scaleTargetRef"]["name"]]
        # The autoscaler owns the count: a rendered one would reset it on every upgrade.
        assert "replicas" not in deployment["spec"], target["metadata"]["name"]
        assert target["spec"]["maxReplicaCount"] >= 1
        assert target["spec"]["minReplicaCount"] <= target["spec"]["maxReplicaCount"]
    # KEDA makes the API's HPA; a second one from api.autoscaling would fight it.
    assert name("api") not in by_kind(manifests, "HorizontalPodAutoscaler")


def test_the_api_scales_on_open_streams_and_interactive_syntheses(render: Render) -> None:
    api = by_kind(render("scaling"), "ScaledObject")[name("api")]
    (trigger,) = triggers(api)
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    for metric in ("voxmill_stream_connections", "voxmill_lane_in_flight", "voxmill_lane_waiting"):
        assert metric in query
    assert f'pod=~"{name("api")}-.*"' in query and 'namespace="voxmill"' in query
    assert api["spec"]["minReplicaCount"] >= 1  # streams need a replica to connect to


def test_each_worker_lane_scales_on_its_own_queue_and_books_sleep_when_idle(
    render: Render,
) -> None:
    manifests = render("production")
    scaled = by_kind(manifests, "ScaledObject")
    books, fixes = scaled[name("worker")], scaled[name("worker-interactive")]
    assert [t["metadata"]["queueName"] for t in triggers(books)] == ["voxmill.tasks"]
    assert [t["metadata"]["queueName"] for t in triggers(fixes)] == ["voxmill.tasks.interactive"]
    assert books["spec"]["minReplicaCount"] == 0
    assert fixes["spec"]["minReplicaCount"] >= 1  # a user's fix does not wait for a pod start
    # A small target: a user waits on every interactive task.
    target = [int(triggers(s)[0]["metadata"]["value"]) for s in (fixes, books)]
    assert target[0] < target[1]
    deployments = by_kind(manifests, "Deployment")
    args = {
        lane: containers(deployments[name(component)])["worker"]["args"]
        for lane, component in (("bulk", "worker"), ("interactive", "worker-interactive"))
    }
    assert args["bulk"][-2:] == ["--lanes", "bulk"]
    assert args["interactive"][-2:] == ["--lanes", "interactive"]


def test_one_worker_deployment_takes_both_lanes_unless_the_lane_has_its_own(
    template: Template,
) -> None:
    manifests = template(
        "worker.keda.enabled=true",
        "rabbitmq.enabled=true",
        "postgresql.enabled=true",
    ).manifests
    deployments = by_kind(manifests, "Deployment")
    assert name("worker-interactive") not in deployments
    assert "--lanes" not in containers(deployments[name("worker")])["worker"]["args"]
    scaled = by_kind(manifests, "ScaledObject")[name("worker")]
    queues = [t["metadata"]["queueName"] for t in triggers(scaled)]
    assert queues == ["voxmill.tasks", "voxmill.tasks.interactive"]


def test_voice_servers_scale_on_queue_time_and_the_gpu_pool_on_gpu_use(render: Render) -> None:
    scaled = by_kind(render("scaling"), "ScaledObject")
    gpu = [t["metadata"]["query"] for t in triggers(scaled[name("torchserve-gpu")])]
    cpu = [t["metadata"]["query"] for t in triggers(scaled[name("torchserve-cpu")])]
    assert any("ts_queue_latency_microseconds" in q for q in gpu)
    assert any("DCGM_FI_DEV_GPU_UTIL" in q for q in gpu)
    assert len(cpu) == 1 and "ts_queue_latency_microseconds" in cpu[0]
    for trigger in triggers(scaled[name("torchserve-gpu")]):
        assert trigger["metricType"] == "Value"  # the queries are already per-pod averages
    assert scaled[name("torchserve-gpu")]["spec"]["minReplicaCount"] >= 1  # voices load slowly


def test_the_interactive_workers_reach_the_voice_servers_and_the_broker(
    template: Template,
) -> None:
    manifests = template(
        "scaling.interactiveWorker.enabled=true",
        "rabbitmq.enabled=true",
        "postgresql.enabled=true",
    ).manifests
    policies = by_kind(manifests, "NetworkPolicy")
    component = "app.kubernetes.io/component"
    for target in (name("torchserve-cpu"), name("rabbitmq")):
        peers = {
            p["podSelector"]["matchLabels"][component]
            for rule in policies[target]["spec"]["ingress"]
            for p in rule.get("from", [])
            if "podSelector" in p
        }
        assert {"worker", "worker-interactive"} <= peers, target
    assert policies[name("worker-interactive")]["spec"]["ingress"] == []


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["scaling.api.enabled=true"], "set api.autoscaling.enabled=false"),
        (
            ["scaling.torchserve.minReplicaCount=5", "scaling.torchserve.maxReplicaCount=2"],
            "scaling.torchserve: minReplicaCount is above maxReplicaCount",
        ),
    ],
)
def test_inconsistent_scaling_values_fail_with_what_to_change(
    template: Template, sets: list[str], message: str
) -> None:
    result = template("api.autoscaling.enabled=true", *sets)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_production_ingress_keeps_websocket_streams_open(render: Render) -> None:
    ingress = by_kind(render("production"), "Ingress")[name("api")]
    annotations = ingress["metadata"]["annotations"]
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        # ingress-nginx's default (60 s) would cut a stream waiting for text.
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 600


def test_the_keda_schema_checks_prometheus_triggers(render: Render) -> None:
    """The offline KEDA schema rejects what KEDA's prometheus scaler would: a misspelt or
    unquoted field (the manifests themselves are validated in test_chart_valid.py)."""
    schema = json.loads((SCHEMAS / "keda-v1alpha1.json").read_text())
    api = by_kind(render("scaling"), "ScaledObject")[name("api")]
    validate_keda(schema, api)
    for field, value in (("treshold", "20"), ("threshold", 20), ("serverAddress", "prometheus")):
        broken = copy.deepcopy(api)
        metadata = broken["spec"]["triggers"][0]["metadata"]
        if field == "treshold":
            del metadata["threshold"]
        metadata[field] = value
        with pytest.raises(jsonschema.ValidationError):
            validate_keda(schema, broken)
