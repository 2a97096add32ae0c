"""``voxmill voice-sync``: keep one TorchServe in line with the voice catalog in its model store.

In Kubernetes each TorchServe pod runs this beside TorchServe. The API writes uploaded archives
and ``voices.json`` (the catalog) into the shared model store; this sidecar reads the catalog and
registers, scales and sets the default of every voice of its pool through TorchServe's management
API on loopback, with the management key from TorchServe's key file. So every replica (and a
restarted one) serves the same voices and versions, and the management API never leaves the pod.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from pathlib import Path

from voices.management import ManagementClient, ManagementError, VoiceSpec, apply_voice
from voices.store import CATALOG

log = logging.getLogger(__name__)


def read_catalog(model_store: Path) -> list[VoiceSpec]:
    """The voices of the catalog ([] when there is none yet)."""
    path = model_store / CATALOG
    if not path.is_file():
        return []
    raw = json.loads(path.read_text())
    return [VoiceSpec.from_json(entry) for entry in raw.get("voices", [])]


def sync_once(client: ManagementClient, model_store: Path, pool: str) -> list[str]:
    """Apply every voice of ``pool`` once; a failing voice does not stop the others."""
    changes: list[str] = []
    for spec in read_catalog(model_store):
        if spec.pool != pool:
            continue
        missing = [v.archive for v in spec.versions if not (model_store / v.archive).is_file()]
        if missing:
            log.warning("voice %s: archives %s not in the store yet", spec.name, missing)
            continue
        try:
            changes += apply_voice(client, spec)
        except ManagementError as e:
            log.warning("voice %s not applied: %s", spec.name, e)
    return changes


def run(
    client: ManagementClient,
    model_store: Path,
    pool: str,
    *,
    interval_s: float,
    stop: threading.Event | None = None,
) -> None:
    """Sync every ``interval_s`` seconds until ``stop`` is set."""
    stopping = stop or threading.Event()
    while not stopping.is_set():
        started = time.monotonic()
        try:
            sync_once(client, model_store, pool)
        except (OSError, ValueError) as e:  # an unreadable catalog: try again next round
            log.warning("voice catalog unreadable: %s", e)
        stopping.wait(max(0.5, interval_s - (time.monotonic() - started)))


def cli(argv: list[str] | None = None) -> int:
    """``voxmill voice-sync --pool cpu [--interval 5]`` (settings from ``VOXMILL_*``)."""
    from contract.settings import get_settings

    parser = argparse.ArgumentParser(prog="voxmill voice-sync", description=__doc__.split("\n")[0])
    parser.add_argument("--pool", required=True, help="the pool this TorchServe serves (cpu, gpu)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between syncs")
    parser.add_argument("--once", action="store_true", help="sync once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = get_settings()
    url = settings.torchserve_management_url or "http://127.0.0.1:8081"
    client = ManagementClient(url, settings.management_key)
    try:
        if args.once:
            for change in sync_once(client, settings.model_store, args.pool):
                print(change)
            return 0
        run(client, settings.model_store, args.pool, interval_s=args.interval)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
