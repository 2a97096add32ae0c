"""The chart's object store, webhook and bucket ingest values: what reaches the API's environment,
and the clear failures of values that cannot work together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helmchart import PRODUCTION_VALUES, Result, by_kind, containers, env, name

from contract.settings import Settings

pytestmark = pytest.mark.deploy
Template = Callable[..., Result]

ENDPOINT = "https://ns.compat.objectstorage.eu-frankfurt-1.oraclecloud.com"
FULL = [
    "objectStore.enabled=true",
    f"objectStore.endpoint={ENDPOINT}",
    "objectStore.region=eu-frankfurt-1",
    "objectStore.credentials.existingSecret=voxmill-s3",
    "objectStore.segmentAudio=true",
    "objectStore.jobBuckets={voxmill-in,voxmill-out}",
    "webhooks.existingSecret=voxmill-webhooks",
    "webhooks.allowNetworks={10.0.0.0/8}",
    "ingest.bucket=voxmill-in",
    "ingest.outputBucket=voxmill-out",
    "ingest.events.enabled=true",
    "ingest.events.existingSecret=voxmill-ingest",
    "ingest.poller.enabled=true",
    "ingest.poller.intervalSeconds=45",
]


def api_env(result: Result) -> dict[str, Any]:
    deployment = by_kind(result.manifests, "Deployment")[name("api")]
    return env(containers(deployment)["api"])


def test_the_api_gets_the_object_store_ingest_and_webhook_settings(template: Template) -> None:
    variables = api_env(template(*FULL, files=[PRODUCTION_VALUES]))
    assert variables["VOXMILL_OBJECT_STORE"] == "s3"
    assert variables["VOXMILL_S3_ENDPOINT_URL"] == ENDPOINT
    assert variables["VOXMILL_AUDIO_STORE"] == "objects"
    assert variables["VOXMILL_S3_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == "voxmill-s3"
    assert variables["VOXMILL_WEBHOOK_SECRET"]["secretKeyRef"]["name"] == "voxmill-webhooks"
    assert variables["VOXMILL_INGEST_TOKEN"]["secretKeyRef"]["name"] == "voxmill-ingest"
    assert variables["VOXMILL_INGEST_POLL_S"] == "45"
    # The values parse as the API's settings would read them.
    ours = ("VOXMILL_JOB", "VOXMILL_WEBHOOK", "VOXMILL_INGEST", "VOXMILL_S3", "VOXMILL_AUDIO")
    plain = {k: v for k, v in variables.items() if isinstance(v, str) and k.startswith(ours)}
    settings = Settings(**{k.removeprefix("VOXMILL_").lower(): v for k, v in plain.items()})
    assert settings.job_buckets == ["voxmill-in", "voxmill-out"]
    assert settings.webhook_allow_networks == ["10.0.0.0/8"]
    assert settings.ingest_subtitles == ["srt"]


def test_workload_identity_mounts_no_keys(template: Template) -> None:
    sets = [*FULL[:3], "objectStore.credentials.workloadIdentity=true"]
    variables = api_env(template(*sets, files=[PRODUCTION_VALUES]))
    assert variables["VOXMILL_OBJECT_STORE"] == "s3"
    assert "VOXMILL_S3_ACCESS_KEY_ID" not in variables


def test_jobs_are_off_by_default(template: Template) -> None:
    variables = api_env(template(files=[PRODUCTION_VALUES]))
    assert "VOXMILL_OBJECT_STORE" not in variables
    assert "VOXMILL_INGEST_BUCKET" not in variables


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["objectStore.enabled=true"], "set objectStore.endpoint"),
        ([f"objectStore.endpoint={ENDPOINT}", "objectStore.enabled=true"], "Customer Secret Key"),
        (["objectStore.segmentAudio=true"], "segmentAudio: needs objectStore.enabled"),
        (["ingest.poller.enabled=true"], "set ingest.bucket"),
        (["ingest.bucket=b-in", "ingest.events.enabled=true"], "ingest.events.existingSecret"),
        (["ingest.callbackUrl=https://hooks.example/x"], "set webhooks.existingSecret"),
    ],
)
def test_values_that_cannot_work_fail_with_what_to_change(
    template: Template, sets: list[str], message: str
) -> None:
    result = template(*sets, files=[PRODUCTION_VALUES])
    assert result.returncode != 0
    assert "VALUES VALIDATION" in result.stderr
    assert message in result.stderr
