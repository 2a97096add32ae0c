"""Segment audio in Postgres rows (the default) against the object store (issue 13).

The real code paths on a real Postgres: the result consumer's ``apply_result`` storing N results
(each a FLAC of a few seconds, as the voice handler sends them), then a whole-project FLAC export
reading them back (``api.job_outputs.export_audio``). Three stores: database rows (the peer),
a local directory (the embedded mode), and S3 (``moto_server`` on loopback, as in the tests; a
real object store adds network latency, so treat that row as a lower bound).

Run (Postgres on 127.0.0.1 as on every dev machine; ``moto[server]`` from requirements-dev)::

    .venv/bin/python bench/audio_store_bench.py [--segments 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

RATE = 22050
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped like speech loudness (FLAC compresses it about as much as a voice)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    envelope = 0.5 + 0.5 * np.sin(np.arange(n) * 2 * np.pi * 3 / RATE)
    return (rng.normal(0, 3000, n) * envelope).astype(np.int16)


def run(mode: str, url: str, n: int, workdir: Path, s3_url: str | None) -> tuple[float, float]:
    from sqlalchemy import select

    from api import crud
    from api.audio_store import AudioStore, attach
    from api.db import make_engine, make_session_factory
    from api.job_outputs import export_audio
    from api.models import Segment
    from api.results import apply_result
    from api.storage import LocalObjectStore, S3ObjectStore, s3_client
    from audio.codecs import encode
    from contract.messages import ResultMessage
    from contract.settings import Settings
    from text_processing.structure import split_document

    engine = make_engine(url)
    factory = make_session_factory(engine)
    if mode == "local":
        attach(factory, AudioStore(LocalObjectStore(workdir / "objects"), "audio"))
    elif mode == "s3":
        assert s3_url is not None
        settings = Settings(
            s3_endpoint_url=s3_url, s3_access_key_id="bench", s3_secret_access_key="bench"
        )
        objects = S3ObjectStore(s3_client(settings))
        objects.ensure_bucket("voxmill-bench-audio")
        attach(factory, AudioStore(objects, "voxmill-bench-audio"))
    text = " ".join(f"This is sentence {i} of the benchmark." for i in range(n))
    with factory.begin() as session:
        project = crud.create_project(session, name=f"bench {mode}", voice="joe")
        session.flush()
        crud.add_document(
            session,
            project=project,
            text=text,
            fmt="text",
            filename=None,
            chapters=split_document(text, fmt="text"),
        )
        session.flush()
        crud.start_conversion(session, project=project)
        project_id = project.id
    with factory() as session:
        rows = session.execute(
            select(Segment.id, Segment.task_id).where(Segment.project_id == project_id)
        ).all()
    results = []
    for i, (segment_id, task_id) in enumerate(rows):
        samples = speechlike(3.0, i)
        results.append(
            ResultMessage(
                task_id=task_id,
                segment_id=segment_id,
                project_id=project_id,
                status="done",
                audio=encode(samples, RATE, "flac"),
                sample_rate=RATE,
                num_samples=len(samples),
            )
        )
    started = time.perf_counter()
    for result in results:
        with factory.begin() as session:
            assert apply_result(session, result) is not None
    store_s = time.perf_counter() - started
    started = time.perf_counter()
    with export_audio(factory, project_id, "flac") as out:
        out.seek(0, 2)
    export_s = time.perf_counter() - started
    engine.dispose()
    return store_s, export_s


def main() -> int:
    import psycopg
    from s3kit import S3Server

    from api.db import migrate

    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=200)
    args = parser.parse_args()
    name = f"voxmill_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with tempfile.TemporaryDirectory() as tmp:
        server = S3Server(Path(tmp) / "moto.log")
        try:
            migrate(url)
            table = {m: run(m, url, args.segments, Path(tmp), server.url) for m in MODES}
        finally:
            server.stop()
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    base_store, base_export = table["database"]
    print(f"\n{args.segments} results of 3 s each (FLAC), then one FLAC export of the project\n")
    print("| segment audio in | store ms/result | vs database | export s | vs database |")
    print("|---|---:|---:|---:|---:|")
    for mode, (store_s, export_s) in table.items():
        print(
            f"| {LABELS[mode]} | {1000 * store_s / args.segments:.2f} | "
            f"{store_s / base_store:.2f} | {export_s:.2f} | {export_s / base_export:.2f} |"
        )
    return 0


MODES = ("database", "local", "s3")
LABELS = {
    "database": "Postgres rows (default)",
    "local": "local directory (embedded)",
    "s3": "S3, moto_server on loopback",
}

if __name__ == "__main__":
    raise SystemExit(main())
