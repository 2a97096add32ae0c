"""TorchServe's management API as Voxmill uses it, against a stand-in: reconcile, tokens, URLs;
the voice-sync sidecar; roles on API keys; versions and pools on the way to TorchServe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from audio.resample import resample, resampled_length
from contract.messages import TaskMessage
from contract.settings import Settings, is_internal_url
from synthesis.torchserve import TorchServeSynthesizer
from voices.management import (
    ManagementClient,
    ManagementError,
    VersionSpec,
    VoiceSpec,
    apply_voice,
    voice_health,
)
from voices.store import LocalVoiceStore, archive_key
from voices.sync import sync_once
from worker.task import process_task


class FakeManagement:
    """TorchServe's management API for model registration, in memory."""

    def __init__(self, key: str = "mgmt-key") -> None:
        self.key = key
        self.models: dict[str, dict[str, dict[str, Any]]] = {}
        self.defaults: dict[str, str] = {}
        self.calls: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.headers.get("authorization") != f"Bearer {self.key}":
            return httpx.Response(400, json={"code": 400, "type": "InvalidKeyException"})
        parts = [p for p in request.url.path.split("/") if p]
        params = dict(request.url.params)
        if request.method == "POST" and parts == ["models"]:
            url = params["url"]
            name, version = url[: -len(".mar")].rsplit(".v", 1)
            self.models.setdefault(name, {})[version] = {
                "modelVersion": version,
                "workers": [{"status": "READY"}] * int(params["initial_workers"]),
                "batchSize": int(params["batch_size"]),
            }
            self.defaults.setdefault(name, version)
            return httpx.Response(200, json={"status": "registered"})
        name = parts[1] if len(parts) > 1 else ""
        if name not in self.models:
            return httpx.Response(404, json={"code": 404, "message": f"Model not found: {name}"})
        versions = self.models[name]
        if request.method == "GET" and parts[2:] == ["all"]:
            return httpx.Response(200, json=list(versions.values()))
        if request.method == "GET" and len(parts) == 2:
            return httpx.Response(200, json=[versions[self.defaults[name]]])
        if request.method == "PUT" and parts[3:] == ["set-default"]:
            self.defaults[name] = parts[2]
            return httpx.Response(200, json={"status": "ok"})
        if request.method == "PUT" and len(parts) == 3:
            versions[parts[2]]["workers"] = [{"status": "READY"}] * int(params["min_worker"])
            return httpx.Response(200, json={"status": "scaled"})
        return httpx.Response(405)


def client_for(fake: FakeManagement, key: str | None = None) -> ManagementClient:
    keys = iter([key or fake.key]) if key else None

    def current() -> str:
        if keys is not None:
            return next(keys, fake.key)
        return fake.key

    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    return ManagementClient("http://127.0.0.1:8081", current, http=http)


SPEC = VoiceSpec(
    name="narrator",
    pool="cpu",
    default_version="1",
    versions=(VersionSpec("1", "narrator.v1.mar"),),
    workers=2,
)


def test_a_new_voice_is_registered_with_its_workers_and_default() -> None:
    fake = FakeManagement()

    changes = apply_voice(client_for(fake), SPEC)

    assert changes == ["registered narrator 1"]
    assert len(fake.models["narrator"]["1"]["workers"]) == 2
    assert apply_voice(client_for(fake), SPEC) == []  # applying again changes nothing


def test_a_second_version_stands_by_until_it_is_made_the_default() -> None:
    fake = FakeManagement()
    client = client_for(fake)
    apply_voice(client, SPEC)
    two = VoiceSpec(
        **{**SPEC.__dict__, "versions": (*SPEC.versions, VersionSpec("2", "narrator.v2.mar"))}
    )

    apply_voice(client, two)
    assert fake.defaults["narrator"] == "1"
    assert len(fake.models["narrator"]["2"]["workers"]) == 1  # standby

    switched = VoiceSpec(**{**two.__dict__, "default_version": "2"})
    changes = apply_voice(client, switched)
    assert fake.defaults["narrator"] == "2"
    assert "default of narrator is now 2" in changes
    assert len(fake.models["narrator"]["2"]["workers"]) == 2
    assert len(fake.models["narrator"]["1"]["workers"]) == 1
    health = voice_health(client, "narrator")
    assert health["default_version"] == "2"
    assert {v["version"]: v["ready_workers"] for v in health["versions"]} == {"1": 1, "2": 2}


def test_a_stale_management_key_is_re_read_once() -> None:
    fake = FakeManagement()
    apply_voice(client_for(fake, key="old-key"), SPEC)
    assert fake.models["narrator"]


def test_errors_and_unsafe_targets_are_refused() -> None:
    fake = FakeManagement()
    client = client_for(fake)
    with pytest.raises(ValueError, match="bare archive names"):
        client.register("../etc/x.mar", workers=1, batch_size=1, max_batch_delay_ms=1)
    with pytest.raises(ValueError, match="bare archive names"):
        client.register("http://example.com/x.mar", workers=1, batch_size=1, max_batch_delay_ms=1)
    with pytest.raises(ManagementError) as caught:
        client.set_default("nobody", "1")
    assert caught.value.status == 404
    with pytest.raises(ValueError, match="loopback or cluster"):
        ManagementClient("http://203.0.113.7:8081", lambda: "k")


@pytest.mark.parametrize(
    ("url", "internal"),
    [
        ("http://127.0.0.1:8081", True),
        ("http://localhost:8081", True),
        ("http://[::1]:8081", True),
        ("http://10.0.3.4:8081", True),
        ("http://voxmill-torchserve-cpu:8081", True),
        ("http://ts.voxmill.svc.cluster.local:8081", True),
        ("http://example.com:8081", False),
        ("http://8.8.8.8:8081", False),
        ("", False),
    ],
)
def test_management_urls_must_be_internal(url: str, internal: bool) -> None:
    assert is_internal_url(url) is internal


def test_settings_refuse_a_public_management_url() -> None:
    with pytest.raises(ValueError, match="loopback or the cluster network"):
        Settings(torchserve_management_url="https://ts.example.com:8081")


def test_voice_sync_applies_the_catalog_of_its_pool(tmp_path: Path) -> None:
    store = LocalVoiceStore(tmp_path)
    (tmp_path / "narrator.v1.mar").write_bytes(b"mar")
    gpu = VoiceSpec("big", "gpu", "1", (VersionSpec("1", "big.v1.mar"),))
    store.write_catalog({"voices": [SPEC.to_json(), gpu.to_json()]})
    fake = FakeManagement()

    changes = sync_once(client_for(fake), tmp_path, "cpu")

    assert changes == ["registered narrator 1"]
    assert "big" not in fake.models  # another pool's voice


def test_store_keys_are_flat_file_names(tmp_path: Path) -> None:
    assert archive_key("narrator", "12") == "narrator.v12.mar"
    with pytest.raises(ValueError):
        archive_key("../x", "1")
    source = tmp_path / "built.mar"
    source.write_bytes(b"archive")
    store = LocalVoiceStore(tmp_path / "store")
    digest = store.put("narrator.v1.mar", source)
    assert len(digest) == 64 and (tmp_path / "store" / "narrator.v1.mar").read_bytes() == b"archive"
    with pytest.raises(ValueError):
        store.put("../../evil.mar", source)


def test_api_keys_carry_roles_and_stay_backward_compatible() -> None:
    settings = Settings(api_keys="plain-key-0123,boss-key-0123:admin,odd:colon-key")
    roles = settings.api_key_roles()
    assert roles == {
        "plain-key-0123": frozenset({"user"}),
        "boss-key-0123": frozenset({"admin"}),
        "odd:colon-key": frozenset({"user"}),
    }


def test_the_task_carries_the_voice_version_and_pool_to_torchserve() -> None:
    task = TaskMessage(
        task_id="t",
        project_id=1,
        segment_id=2,
        voice="narrator",
        text="Hi.",
        voice_version="3",
        pool="gpu",
    )
    again = TaskMessage.from_wire(task.to_wire().body)
    assert again.voice_target() == {"version": "3", "pool": "gpu"}
    assert (
        TaskMessage(task_id="t", project_id=1, segment_id=2, voice="joe", text="Hi.").voice_target()
        == {}
    )

    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        # The handler's answer: the audio in the asked format, described by its headers.
        headers = {"content-type": "audio/flac", "X-Sample-Rate": "22050", "X-Audio-Samples": "3"}
        return httpx.Response(200, content=b"fLaC-audio", headers=headers)

    settings = Settings(
        torchserve_url="http://ts-cpu:8080",
        torchserve_token="tok",
        torchserve_pools=json.dumps({"gpu": "http://ts-gpu:8080"}),
    )
    synth = TorchServeSynthesizer(
        settings, http=httpx.Client(transport=httpx.MockTransport(answer))
    )
    # The worker's path: the task's version and pool reach TorchServe's URL.
    result = process_task(task, synth, policy=settings.retry_policy(), worker="w")
    assert result.status == "done" and result.audio == b"fLaC-audio"
    synth.synthesize_encoded("joe", "Hi.")
    assert seen == [
        "http://ts-gpu:8080/predictions/narrator/3",
        "http://ts-cpu:8080/predictions/joe",
    ]


def test_resampling_keeps_the_announced_length() -> None:
    tone = (3000 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype(np.int16)
    out = resample(tone, 16000, 22050)
    assert len(out) == resampled_length(16000, 16000, 22050) == 22050
    assert out.dtype == np.int16 and np.abs(out).max() > 2000
    assert resample(tone, 16000, 16000) is tone
