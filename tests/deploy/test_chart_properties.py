"""What the rendered manifests promise: security, GPUs, a private management API, scaling."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from helmchart import (
    PROFILES,
    WORKLOAD_KINDS,
    Result,
    by_kind,
    containers,
    env,
    name,
    pod_spec,
)

pytestmark = pytest.mark.deploy
Render = Callable[[str], list[dict[str, Any]]]
Template = Callable[..., Result]
TORCHSERVE_PRIVATE_PORTS = {8080, 8081, 8082, 7070, 7071}


def workloads(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] in WORKLOAD_KINDS]


def properties(config_map: dict[str, Any]) -> dict[str, str]:
    lines = config_map["data"]["config.properties"].splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


@pytest.mark.parametrize("profile", PROFILES)
def test_every_container_is_non_root_read_only_and_limited(render: Render, profile: str) -> None:
    checked = 0
    for workload in workloads(render(profile)):
        pod = pod_spec(workload).get("securityContext", {})
        for cname, c in containers(workload).items():
            where = f"{workload['kind']}/{workload['metadata']['name']}/{cname}"
            sc = {**pod, **c.get("securityContext", {})}
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("runAsUser", 1) != 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert sc.get("privileged") is not True, where
            limits = c.get("resources", {}).get("limits", {})
            assert {"cpu", "memory"} <= limits.keys(), f"{where} has no cpu/memory limits"
            requests = c.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= requests.keys(), f"{where} has no requests"
            checked += 1
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault"
        assert pod_spec(workload).get("automountServiceAccountToken") is False
    assert checked >= 5


def test_gpu_pool_requests_a_gpu_and_cpu_pool_does_not(render: Render) -> None:
    deployments = by_kind(render("production"), "Deployment")
    gpu = containers(deployments[name("torchserve-gpu")])["torchserve"]["resources"]
    assert gpu["limits"]["nvidia.com/gpu"] == 1
    assert gpu["requests"]["nvidia.com/gpu"] == 1
    gpu_pod = pod_spec(deployments[name("torchserve-gpu")])
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu_pod[
        "tolerations"
    ]
    assert gpu_pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "VM.GPU.A10.1"}
    # The GPU pool's TorchServe uses the GPU; the CPU pool's does not.
    config_maps = by_kind(render("production"), "ConfigMap")
    assert properties(config_maps[name("torchserve-gpu")])["number_of_gpu"] == "1"
    assert properties(config_maps[name("torchserve-cpu")])["number_of_gpu"] == "0"
    for cname, c in containers(deployments[name("torchserve-cpu")]).items():
        res = c["resources"]
        assert "nvidia.com/gpu" not in {**res.get("limits", {}), **res.get("requests", {})}, cname
    assert "tolerations" not in pod_spec(deployments[name("torchserve-cpu")])


def test_default_values_need_no_gpu(render: Render) -> None:
    manifests = render("default")
    assert "nvidia.com/gpu" not in json.dumps(
        [c["resources"] for w in workloads(manifests) for c in containers(w).values()]
    )
    assert name("torchserve-gpu") not in by_kind(manifests, "Deployment")


def test_gpu_images_and_cpu_images_are_separate_builds(render: Render) -> None:
    deployments = by_kind(render("production"), "Deployment")
    gpu = containers(deployments[name("torchserve-gpu")])["torchserve"]["image"]
    cpu = containers(deployments[name("torchserve-cpu")])["torchserve"]["image"]
    assert gpu == "fra.ocir.io/mytenancy/voxmill/voxmill-torchserve:0.1.0-gpu"
    assert cpu == "fra.ocir.io/mytenancy/voxmill/voxmill-torchserve:0.1.0-cpu"
    api = containers(deployments[name("api")])["api"]["image"]
    assert api.endswith("voxmill-api@sha256:" + "0123456789abcdef" * 4)


@pytest.mark.parametrize("profile", PROFILES)
def test_no_service_exposes_torchserve_management(render: Render, profile: str) -> None:
    manifests = render(profile)
    deployments = by_kind(manifests, "Deployment")
    pools = [n for n in deployments if "-torchserve-" in n]
    assert pools
    for pool in pools:
        pod = containers(deployments[pool])
        # TorchServe itself declares no port: it listens on loopback only...
        assert "ports" not in pod["torchserve"]
        props = properties(by_kind(manifests, "ConfigMap")[pool])
        for key in ("inference_address", "management_address", "metrics_address"):
            assert props[key].startswith("http://127.0.0.1:"), (key, props[key])
        assert props["grpc_management_address"] == "127.0.0.1"
        assert props["grpc_inference_address"] == "127.0.0.1"
        assert props["disable_token_authorization"] == "false"
        # Voice registration is on, but only the in-pod voice-sync sidecar reaches it (loopback),
        # and only archives of the model store can be registered.
        assert props["enable_model_api"] == "true"
        assert props["allowed_urls"].startswith("^file://")
        sync = pod["voice-sync"]
        assert "ports" not in sync
        env = {e["name"]: e.get("value") for e in sync["env"]}
        assert env["VOXMILL_TORCHSERVE_MANAGEMENT_URL"] == "http://127.0.0.1:8081"
        # ...and the only port of the pod is the authenticating gateway's.
        (gateway_port,) = pod["gateway"]["ports"]
        assert gateway_port["containerPort"] not in TORCHSERVE_PRIVATE_PORTS
        service = by_kind(manifests, "Service")[pool]
        assert [p["targetPort"] for p in service["spec"]["ports"]] == [gateway_port["name"]]
    for service in by_kind(manifests, "Service").values():
        for port in service["spec"]["ports"]:
            if "-torchserve-" in service["metadata"]["name"]:
                assert port["targetPort"] not in TORCHSERVE_PRIVATE_PORTS | {"management"}
            assert port.get("targetPort") != 8081 and port["port"] != 8081


def test_voice_management_can_be_switched_off(render: Render, template: Template) -> None:
    result = template("torchserve.voiceManagement.enabled=false")
    assert result.returncode == 0, result.stderr
    assert "enable_model_api=false" in result.stdout
    assert "name: voice-sync" not in result.stdout


def test_voice_uploads_share_the_model_store_claim(template: Template) -> None:
    result = template("torchserve.modelStore.existingClaim=voices-rwx")
    assert result.returncode == 0, result.stderr
    assert 'name: VOXMILL_VOICE_UPLOADS\n              value: "true"' in result.stdout
    assert result.stdout.count('claimName: "voices-rwx"') >= 2  # the API and TorchServe
    plain = template("torchserve.cpu.enabled=true")
    assert 'name: VOXMILL_VOICE_UPLOADS\n              value: "false"' in plain.stdout


def test_management_address_cannot_be_rebound_through_values(template: Template) -> None:
    result = template("torchserve.config.extraProperties=management_address=http://0.0.0.0:8081")
    assert result.returncode != 0
    assert "extraProperties" in result.stderr


def test_probes_work_with_token_authorization(render: Render) -> None:
    deployments = by_kind(render("production"), "Deployment")
    api = containers(deployments[name("api")])["api"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"  # no dependency checks
    # A worker is ready only while it takes tasks (RabbitMQ connected, circuit breaker closed);
    # its health server listens on every interface only because the chart asks it to.
    worker = containers(deployments[name("worker")])["worker"]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert worker["args"][:3] == ["worker", "--health-host", "0.0.0.0"]
    ts = containers(deployments[name("torchserve-gpu")])
    # /ping needs the rotating key: the gateway's /readyz pings with it; liveness uses the
    # metrics port, which TorchServe serves without a token.
    assert ts["gateway"]["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "gateway"}
    assert ts["gateway"]["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "gateway"}
    probe = " ".join(ts["torchserve"]["livenessProbe"]["exec"]["command"])
    assert "127.0.0.1:8082/metrics" in probe
    assert ts["torchserve"]["startupProbe"]["exec"] == ts["torchserve"]["livenessProbe"]["exec"]
    # The gateway reads TorchServe's key file from the working directory they share.
    run_dir = ts["torchserve"]["workingDir"]
    assert env(ts["gateway"])["VOXMILL_TS_KEY_FILE"] == f"{run_dir}/key_file.json"
    mounts = {m["name"]: m["mountPath"] for m in ts["gateway"]["volumeMounts"]}
    assert mounts["run"] == run_dir
    token = env(ts["gateway"])["VOXMILL_TORCHSERVE_TOKEN"]["secretKeyRef"]
    worker = containers(deployments[name("worker")])["worker"]
    assert env(worker)["VOXMILL_TORCHSERVE_TOKEN"]["secretKeyRef"] == token
    # Same user in both containers: TorchServe writes the key file with mode 0600.
    pod = pod_spec(deployments[name("torchserve-gpu")])
    assert "runAsUser" not in ts["gateway"].get("securityContext", {})
    assert pod["securityContext"]["runAsUser"] == 1000


def test_voices_are_routed_to_their_pool(render: Render) -> None:
    worker = containers(by_kind(render("production"), "Deployment")[name("worker")])["worker"]
    routes = json.loads(env(worker)["VOXMILL_VOICE_ROUTES"])
    assert routes == {
        "joe": f"http://{name('torchserve-gpu')}:8080",
        "mms-tts-eng": f"http://{name('torchserve-cpu')}:8080",
    }
    assert env(worker)["VOXMILL_TORCHSERVE_URL"] == f"http://{name('torchserve-gpu')}:8080"
    default = containers(by_kind(render("default"), "Deployment")[name("worker")])["worker"]
    assert env(default)["VOXMILL_TORCHSERVE_URL"] == f"http://{name('torchserve-cpu')}:8080"


def test_keda_scales_on_ready_and_unacked_tasks_and_may_reach_zero(render: Render) -> None:
    manifests = render("production")
    (trigger,) = by_kind(manifests, "ScaledObject")[name("worker")]["spec"]["triggers"]
    scaled = by_kind(manifests, "ScaledObject")[name("worker")]["spec"]
    assert scaled["scaleTargetRef"]["name"] == name("worker")
    assert scaled["minReplicaCount"] == 0
    assert trigger["type"] == "rabbitmq"
    meta = trigger["metadata"]
    # QueueLength counts unacknowledged messages only through the management API (http).
    assert meta["protocol"] == "http"
    assert meta["mode"] == "QueueLength"
    assert meta.get("excludeUnacknowledged", "false") == "false"
    assert meta["queueName"] == "voxmill.tasks"
    auth = by_kind(manifests, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": "voxmill-broker", "key": "management-url"}
    ]
    worker = by_kind(manifests, "Deployment")[name("worker")]
    assert "replicas" not in worker["spec"]  # KEDA's HPA owns the count
    timeout = int(env(containers(worker)["worker"])["VOXMILL_TORCHSERVE_TIMEOUT_S"])
    assert pod_spec(worker)["terminationGracePeriodSeconds"] > timeout


def test_in_cluster_broker_gives_keda_its_management_url(render: Render) -> None:
    manifests = render("trial")
    auth = by_kind(manifests, "TriggerAuthentication")[name("worker")]
    (ref,) = auth["spec"]["secretTargetRef"]
    secret = by_kind(manifests, "Secret")[ref["name"]]
    assert ref["key"] in secret["data"]


def test_secrets_reach_pods_only_through_secret_refs(render: Render) -> None:
    for profile in PROFILES:
        manifests = render(profile)
        secrets = set(by_kind(manifests, "Secret"))
        external = {"voxmill-external", "voxmill-db", "voxmill-broker", "voxmill-auth"}
        for workload in workloads(manifests):
            for c in containers(workload).values():
                for key, value in env(c).items():
                    if isinstance(value, str):
                        credentials_in_url = "://" in value and "@" in value
                        assert not credentials_in_url and "PASSWORD" not in key, (key, value)
                    elif "secretKeyRef" in value:
                        assert value["secretKeyRef"]["name"] in secrets | external, key


def test_migrations_run_as_a_hook_before_the_new_pods(render: Render) -> None:
    job = by_kind(render("production"), "Job")[name("migrations")]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert containers(job)["migrate"]["args"] == ["migrate"]
    assert "VOXMILL_DATABASE_URL" in env(containers(job)["migrate"])
    # In-cluster PostgreSQL is created by the install itself: migrate right after it.
    trial = by_kind(render("trial"), "Job")[name("migrations")]
    assert trial["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_inline_urls_become_a_secret_the_pre_install_hook_can_read(template: Template) -> None:
    manifests = template(
        "externalDatabase.url=postgresql+psycopg://u:p@db.example:5432/vox",
        "externalBroker.url=amqp://u:p@mq.example:5672/vox",
    ).manifests
    secret = by_kind(manifests, "Secret")[name("external")]
    assert set(secret["data"]) == {"database-url", "broker-url"}
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    job = containers(by_kind(manifests, "Job")[name("migrations")])["migrate"]
    assert env(job)["VOXMILL_DATABASE_URL"]["secretKeyRef"]["name"] == name("external")


def peers(policy: dict[str, Any], port: str) -> list[str]:
    """The components allowed in on ``port`` (namespace selectors as 'ns:NAME')."""
    found = []
    for rule in policy["spec"]["ingress"]:
        if port not in [p["port"] for p in rule.get("ports", [])]:
            continue
        for peer in rule.get("from", [{"everyone": True}]):
            if "podSelector" in peer:
                found.append(peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"])
            elif "namespaceSelector" in peer:
                labels = peer["namespaceSelector"]["matchLabels"]
                found.append("ns:" + labels["kubernetes.io/metadata.name"])
            else:
                found.append("*")
    return sorted(found)


def test_network_policies_limit_who_reaches_torchserve_broker_and_database(
    template: Template, render: Render
) -> None:
    policies = by_kind(render("trial"), "NetworkPolicy")
    assert peers(policies[name("torchserve-cpu")], "gateway") == ["api", "worker"]
    assert peers(policies[name("rabbitmq")], "amqp") == ["api", "worker"]
    assert peers(policies[name("rabbitmq")], "management") == ["ns:keda"]
    assert peers(policies[name("postgresql")], "postgresql") == ["api", "migrations"]
    assert policies[name("worker")]["spec"]["ingress"] == []
    for policy in policies.values():
        assert policy["spec"]["policyTypes"] == ["Ingress"]

    strict = by_kind(
        template(*PROFILES["trial"][1], "networkPolicy.allowApiToTorchserve=false").manifests,
        "NetworkPolicy",
    )
    assert peers(strict[name("torchserve-cpu")], "gateway") == ["worker"]

    production = by_kind(render("production"), "NetworkPolicy")
    for pool in ("torchserve-gpu", "torchserve-cpu"):
        assert "*" not in peers(production[name(pool)], "gateway")
    assert peers(production[name("api")], "http") == ["ns:ingress-nginx"]


def test_api_has_ingress_hpa_and_disruption_budget(render: Render) -> None:
    manifests = render("production")
    ingress = by_kind(manifests, "Ingress")[name("api")]["spec"]
    assert ingress["tls"] == [{"hosts": ["tts.example.com"], "secretName": "tts.example.com-tls"}]
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": name("api"), "port": {"name": "http"}}
    hpa = by_kind(manifests, "HorizontalPodAutoscaler")[name("api")]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 8)
    assert "replicas" not in by_kind(manifests, "Deployment")[name("api")]["spec"]
    pdb = by_kind(manifests, "PodDisruptionBudget")[name("api")]["spec"]
    assert pdb["minAvailable"] == 1


def test_images_come_from_the_values(template: Template) -> None:
    result = template("global.imageRegistry=registry.example/vx", "worker.image.tag=1.2.3")
    deployments = by_kind(result.manifests, "Deployment")
    worker = containers(deployments[name("worker")])["worker"]
    assert worker["image"] == "registry.example/vx/voxmill-worker:1.2.3"
    api = containers(deployments[name("api")])["api"]
    assert api["image"] == "registry.example/vx/voxmill-api:0.1.0"  # the chart's appVersion
    migrate = containers(by_kind(result.manifests, "Job")[name("migrations")])["migrate"]
    assert migrate["image"] == api["image"]


def test_torchserve_logs_to_stdout_not_into_its_volumes(render: Render) -> None:
    manifests = render("production")
    deployment = by_kind(manifests, "Deployment")[name("torchserve-gpu")]
    args = containers(deployment)["torchserve"]["args"]
    assert args[args.index("--log-config") + 1] == "/etc/torchserve/log4j2.xml"
    log_config = by_kind(manifests, "ConfigMap")[name("torchserve-gpu")]["data"]["log4j2.xml"]
    assert "<Console" in log_config
    assert "RollingFile" not in log_config and "<File" not in log_config
