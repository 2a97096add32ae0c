"""Start and stop a TorchServe on loopback with the archives in a model store.

Used by ``make torchserve`` / ``make torchserve-stop``, ``make stack`` and the integration tests.
TorchServe writes its token file (``key_file.json``) into its working directory; callers read the
inference key from there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("model-store/config.properties")
_VERSIONED = re.compile(r"^[a-z0-9][a-z0-9_-]*\.v[0-9]+\.mar$")


@dataclass(frozen=True)
class LocalTorchServe:
    """Where a local TorchServe runs and how to reach it."""

    workdir: Path
    inference_port: int = 8080
    management_port: int = 8081
    metrics_port: int = 8082

    @property
    def inference_url(self) -> str:
        """Base URL of the inference API."""
        return f"http://127.0.0.1:{self.inference_port}"

    @property
    def management_url(self) -> str:
        """Base URL of the management API (loopback only)."""
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def tmp_dir(self) -> Path:
        """This instance's temp dir (pid file, worker sockets, extracted archives)."""
        return self.workdir / "tmp"

    @property
    def pid_file(self) -> Path:
        """Where the process group id is kept for :func:`stop`."""
        return self.workdir / "torchserve.pid"

    @property
    def key_file(self) -> Path:
        """TorchServe's token file."""
        return self.workdir / "key_file.json"

    def key(self, kind: str = "inference") -> str:
        """The current ``inference`` / ``management`` / ``API`` key."""
        return str(json.loads(self.key_file.read_text())[kind]["key"])


def write_config(base: Path, target: LocalTorchServe, model_store: Path) -> Path:
    """Copy ``base`` config.properties with this instance's ports and model store."""
    text = base.read_text()
    for prop, port in (
        ("inference_address", target.inference_port),
        ("management_address", target.management_port),
        ("metrics_address", target.metrics_port),
    ):
        text = re.sub(rf"^{prop}=.*$", f"{prop}=http://127.0.0.1:{port}", text, flags=re.M)
    text = re.sub(
        r"^grpc_inference_port=.*$",
        f"grpc_inference_port={target.inference_port + 3}",
        text,
        flags=re.M,
    )
    text = re.sub(
        r"^grpc_management_port=.*$",
        f"grpc_management_port={target.inference_port + 4}",
        text,
        flags=re.M,
    )
    store = model_store.resolve()
    # Registration is limited to this instance's own store (bare archive names resolve there;
    # any URL must match this, and no http URL does).
    allowed = re.escape(str(store)).replace("\\", "\\\\")
    text = re.sub(
        r"^allowed_urls=.*$",
        lambda _m: f"allowed_urls=^file://{allowed}/[A-Za-z0-9_.-]+\\\\.mar$",
        text,
        flags=re.M,
    )
    text += f"\nmodel_store={store}\n"
    # Worker sockets and extracted archives go under the instance's own temp dir, so two
    # TorchServes (say `make torchserve` and a test run) never share /tmp/.ts.sock.9000.
    text += f"vmargs=-Xmx1g -XX:-UseContainerSupport -Djava.io.tmpdir={target.tmp_dir}\n"
    path = target.workdir / "config.properties"
    path.write_text(text)
    return path


def start(
    target: LocalTorchServe,
    *,
    model_store: Path,
    config: Path = DEFAULT_CONFIG,
    timeout_s: float = 180.0,
) -> None:
    """Start TorchServe in the background and wait until every model has a ready worker."""
    # Built-in voices only: uploaded voice versions (<name>.v<N>.mar) are registered by the API
    # through the management API, with their default version.
    archives = sorted(p.name for p in model_store.glob("*.mar") if not _VERSIONED.match(p.name))
    if not archives:
        raise RuntimeError(f"no .mar in {model_store}: run 'make mar' first")
    target.workdir.mkdir(parents=True, exist_ok=True)
    target.key_file.unlink(missing_ok=True)
    ts_config = write_config(config, target, model_store)
    logs = target.workdir / "logs"
    target.tmp_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LOG_LOCATION": str(logs),
        "METRICS_LOCATION": str(logs),
        # The launcher keeps a pid file in the temp dir and refuses a second instance.
        "TMPDIR": str(target.tmp_dir),
    }
    command = [
        _binary(),
        "--foreground",
        "--ncs",
        "--model-store",
        str(model_store.resolve()),
        "--ts-config",
        str(ts_config),
        # Name the archives: "all" would also register the per-voice config folders.
        "--models",
        *archives,
    ]
    logs.mkdir(parents=True, exist_ok=True)
    # Our own process group (not `torchserve --start`): its pid file is global to the machine,
    # which would stop a test's TorchServe from running beside `make torchserve`.
    with (logs / "console.log").open("ab") as console:
        process = subprocess.Popen(
            command,
            cwd=target.workdir,
            env=env,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    target.pid_file.write_text(str(process.pid))
    try:
        wait_ready(target, timeout_s=timeout_s, process=process)
    except BaseException:
        stop(target)
        raise


def wait_ready(
    target: LocalTorchServe, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll the management API until every registered model reports a READY worker."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            last = f"TorchServe exited with {process.returncode}"
            break
        try:
            if target.key_file.exists():
                headers = {"Authorization": f"Bearer {target.key('management')}"}
                listed = httpx.get(f"{target.management_url}/models", headers=headers, timeout=5)
                names = [m["modelName"] for m in listed.json().get("models", [])]
                ready = names and all(_model_ready(target, n, headers) for n in names)
                if ready:
                    return
                last = f"models {names} not ready"
        except (httpx.HTTPError, ValueError, KeyError) as e:
            last = str(e)
        time.sleep(0.5)
    log = target.workdir / "logs" / "console.log"
    tail = log.read_text()[-2000:] if log.exists() else "(no log)"
    raise TimeoutError(f"TorchServe not ready after {timeout_s:.0f} s ({last}); log tail:\n{tail}")


def _model_ready(target: LocalTorchServe, name: str, headers: dict[str, str]) -> bool:
    answer = httpx.get(f"{target.management_url}/models/{name}", headers=headers, timeout=5)
    workers = answer.json()[0].get("workers", [])
    return any(w.get("status") == "READY" for w in workers)


def _binary() -> str:
    return shutil.which("torchserve", path=str(Path(sys.executable).parent)) or "torchserve"


def stop(target: LocalTorchServe, timeout_s: float = 30.0) -> None:
    """Stop the TorchServe started from ``target.workdir`` (no error if none runs)."""
    if not target.pid_file.exists():
        return
    pid = int(target.pid_file.read_text())
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if not _alive(pid):
            break
    target.pid_file.unlink(missing_ok=True)


def kill(target: LocalTorchServe, timeout_s: float = 10.0) -> None:
    """``kill -9`` the TorchServe started from ``target.workdir``: its whole process group (the
    launcher, the Java frontend and the Python model workers) at once, as a crashed node. For
    fault tests; :func:`start` starts it again (with a new key).

    Raises:
        RuntimeError: None runs, or a process of its group still ran after ``timeout_s``.
    """
    if not target.pid_file.exists():
        raise RuntimeError(f"no TorchServe runs from {target.workdir}")
    pid = int(target.pid_file.read_text())
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    while _group_running(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"TorchServe's process group {pid} outlived SIGKILL")
        time.sleep(0.05)
    target.pid_file.unlink(missing_ok=True)


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (Linux ``/proc``). Zombies do not count:
    the frontend's model workers are reaped by whoever inherits them, maybe never in a container.
    """
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # the launcher, when this process started it
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After "pid (comm)": state, ppid, pgrp, ...
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if int(group) == pgid and state != "Z":
            return True
    return False


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    except ChildProcessError:
        pass
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def cli(argv: list[str] | None = None) -> int:
    """``python -m devtools.torchserve_local start|stop``."""
    parser = argparse.ArgumentParser(prog="devtools.torchserve_local")
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("--workdir", default=".run/torchserve")
    parser.add_argument("--model-store", default="model-store")
    parser.add_argument(
        "--port", type=int, default=8080, help="inference port (+1 mgmt, +2 metrics, +3/+4 gRPC)"
    )
    args = parser.parse_args(argv)
    target = LocalTorchServe(Path(args.workdir).resolve(), args.port, args.port + 1, args.port + 2)
    if args.action == "stop":
        stop(target)
        print("torchserve stopped")
        return 0
    try:
        start(target, model_store=Path(args.model_store))
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as e:
        print(f"torchserve: {e}", file=sys.stderr)
        return 1
    print(f"torchserve ready on {target.inference_url}; token file: {target.key_file}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
