"""Every documented operation answers only documented codes, in documented shapes.

Schemathesis generates requests from the API's own OpenAPI document (valid and invalid ones:
ids past 2^63, NUL characters, undecodable bodies, wrong types, other methods) and sends them
to the API on loopback (Postgres, RabbitMQ, a stand-in voice server). The run is bounded (a
fixed number of examples per operation) and repeatable (a fixed seed); any 5xx, undocumented
status, content type or header, schema violation or wrong ``Allow`` header fails the test.

Left out, with the reasons: the check ``positive_data_acceptance`` (a request can match the
schema and still be refused for what it means, such as an unknown voice name, which is 422 by
design); and ``POST /v1/voices``, the voice upload, which answers 503 on a server whose model store
TorchServe cannot read (as here) and otherwise tries each upload in a sandboxed process for up to
minutes (tests/integration/test_voice_*.py cover it); and the live event stream, which never
ends by design (tests/integration/test_pipeline*.py read it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contract.settings import Settings

pytestmark = pytest.mark.integration

SEED = 16
EXAMPLES = int(os.environ.get("VOXMILL_FUZZ_EXAMPLES", "10"))
KEY = "fuzz-admin-key"


def test_schemathesis_finds_no_failure(
    pipeline_settings: Settings,
    start_api: Callable[..., Any],
    stub_torchserve: Any,
    tmp_path: Path,
) -> None:
    settings = pipeline_settings.model_copy(
        update={
            "torchserve_url": stub_torchserve.url,
            "api_keys": [f"{KEY}:admin"],
            "voice_uploads": False,
            # The fuzzer is one client sending hundreds of requests: not what is tested here.
            "client_rate_per_minute": 0,
        }
    )
    api = start_api(settings)
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "run",
        f"{api.url}/openapi.json",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--header",
        f"Authorization: Bearer {KEY}",
        "--request-timeout",
        "20",
        "--no-shrink",
        "--exclude-operation-id",
        "upload_voice_v1_voices_post",
        "--exclude-operation-id",
        "project_events_v1_projects__project_id__events_get",
    ]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    report = done.stdout[-20000:] + done.stderr[-5000:]
    assert done.returncode == 0, report
    assert "Tested:" in report
