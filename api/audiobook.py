"""Audiobook exports: the project as an M4B with chapters, or a ZIP of one tagged file per chapter,
mastered to a preset; built in the background with their progress.

A book can take minutes to master and encode, longer than an HTTP request should wait, so an
export is a job: ``POST /v1/projects/{id}/exports`` starts it, ``GET /v1/exports/{id}`` reports
how many chapters are done, ``GET /v1/exports/{id}/file`` downloads the result. Jobs run on one
background thread per API replica and live in that replica's memory (a replica restart loses
them: start the export again); their files are spooled to disk, one chapter in memory at a time.
At most :data:`contract.limits.MAX_EXPORTS_KEPT` finished exports are kept, the oldest first out.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import exports
from api.models import Chapter, Project
from audio.audiobook import BookInfo, ChapterAudio, write_chapter_file, write_m4b
from audio.mastering import Preset, preset
from contract import limits

log = logging.getLogger(__name__)

ExportKind = Literal["m4b", "zip"]
# The M4B's rate when no preset names one: AAC at the voice's rate if it can, see audio.audiobook.
NO_MASTERING = "none"


def chosen_preset(name: str | None, project: Project) -> Preset | None:
    """The preset a download uses: the one asked for, else the project's default; ``"none"``
    asks for none.

    Raises:
        ValueError: An unknown preset name.
    """
    name = name or project.mastering
    if not name or name == NO_MASTERING:
        return None
    return preset(name)


@dataclass
class ExportJob:
    """One export and how far it got."""

    id: str
    project_id: int
    kind: ExportKind
    format: str
    mastering: str | None
    chapters_total: int
    chapters_done: int = 0
    state: Literal["running", "done", "failed"] = "running"
    error: str | None = None
    path: Path | None = None
    filename: str = ""
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voxmill-book-")))


class ExportJobs:
    """The replica's export jobs: started on one background thread, kept until evicted."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._jobs: OrderedDict[str, ExportJob] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voxmill-export")

    def get(self, job_id: str) -> ExportJob | None:
        """The job with this id, if this replica has it."""
        with self._lock:
            return self._jobs.get(job_id)

    def start(
        self,
        project: Project,
        plan: exports.Layout,
        *,
        kind: ExportKind,
        fmt: str,
        mastering: Preset | None,
    ) -> ExportJob:
        """Start building the export; returns its job at once."""
        job = ExportJob(
            id=uuid.uuid4().hex,
            project_id=project.id,
            kind=kind,
            format=fmt,
            mastering=mastering.name if mastering else None,
            chapters_total=len(plan.chapter_ids),
        )
        info = BookInfo(title=project.name, author=project.author)
        cover = getattr(project, "cover", None)
        if cover:
            info = BookInfo(project.name, project.author, cover, project.cover_type)
        with self._lock:
            self._jobs[job.id] = job
            self._evict()
        self._pool.submit(self._run, job, plan, info, mastering)
        return job

    def _evict(self) -> None:
        finished = [j for j in self._jobs.values() if j.state != "running"]
        while len(finished) > limits.MAX_EXPORTS_KEPT:
            old = finished.pop(0)
            self._jobs.pop(old.id, None)
            shutil.rmtree(old.folder, ignore_errors=True)

    def _run(
        self, job: ExportJob, plan: exports.Layout, info: BookInfo, mastering: Preset | None
    ) -> None:
        try:
            if job.kind == "m4b":
                self._m4b(job, plan, info, mastering)
            else:
                self._zip(job, plan, info, mastering)
            job.state = "done"
        except Exception as e:  # reported on the job; the server goes on
            log.exception("export %s of project %d failed", job.id, job.project_id)
            job.error = f"the export failed: {e}"
            job.state = "failed"

    def _chapters(
        self, job: ExportJob, plan: exports.Layout, mastering: Preset | None
    ) -> Iterator[ChapterAudio]:
        with self.session_factory() as session:
            titles = dict(
                session.execute(
                    select(Chapter.id, Chapter.title).where(Chapter.id.in_(plan.chapter_ids))
                ).all()
            )
            for chapter_id in plan.chapter_ids:
                samples, rate = exports.mastered_chapter(session, chapter_id, plan, mastering)
                session.expunge_all()  # one chapter's audio in memory, not the book's
                yield ChapterAudio(titles.get(chapter_id) or "", samples, rate)

    def _m4b(
        self, job: ExportJob, plan: exports.Layout, info: BookInfo, mastering: Preset | None
    ) -> None:
        path = job.folder / f"project-{job.project_id}.m4b"

        def done(n: int) -> None:
            job.chapters_done = n

        write_m4b(
            path,
            self._chapters(job, plan, mastering),
            info,
            gap_ms=exports.CHAPTER_PAUSE_MS,
            progress=done,
        )
        job.path, job.filename = path, path.name

    def _zip(
        self, job: ExportJob, plan: exports.Layout, info: BookInfo, mastering: Preset | None
    ) -> None:
        path = job.folder / f"project-{job.project_id}-{job.format}.zip"
        total = len(plan.chapter_ids)
        width = len(str(total))
        bit_rate = mastering.bit_rate if mastering and mastering.format == job.format else None
        # Compressed audio does not shrink: stored, not deflated.
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            for n, chapter in enumerate(self._chapters(job, plan, mastering), start=1):
                name = f"{n:0{width}d} {_safe(chapter.title) or 'Chapter'}.{job.format}"
                part = job.folder / f"part.{job.format}"
                write_chapter_file(
                    part, chapter, job.format, info, track=n, tracks=total, bit_rate=bit_rate
                )
                archive.write(part, name)
                part.unlink()
                job.chapters_done = n
        job.path, job.filename = path, path.name


def _safe(title: str) -> str:
    """A chapter title fit for a file name inside the ZIP."""
    kept = "".join(ch if ch.isalnum() or ch in " -_,.'" else " " for ch in title)
    return " ".join(kept.split())[:80].strip(". ")
