"""Which voice and exact version each segment is queued with (SQLite): the project's, a
chapter's or a paragraph's voice, pinned versions, and re-synthesis keeping the old version; and
what serves a registered voice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.db import make_engine, make_session_factory, migrate
from api.models import (
    Block,
    Chapter,
    OutboxMessage,
    Segment,
    SegmentStatus,
    Voice,
    VoiceVersion,
    utcnow,
)
from api.voice_registry import VoiceRegistry
from contract.messages import TaskMessage
from contract.settings import Settings
from synthesis.factory import default_synthesizer
from synthesis.torchserve import TorchServeSynthesizer
from text_processing.structure.document import split_document
from voices.management import ManagementClient

TEXT = '# One\n\nThe narrator speaks.\n\n"I am quoted," she said.\n\n# Two\n\nChapter two.'


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'test.db'}"
    migrate(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def add_voice(session: Session, name: str, versions: int, default: str, pool: str) -> None:
    voice = Voice(
        name=name,
        language="en",
        pool=pool,
        default_version=default,
        workers=1,
        batch_size=1,
        max_batch_delay_ms=5,
        created_by="test",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    session.add(voice)
    session.flush()
    for n in range(1, versions + 1):
        session.add(
            VoiceVersion(
                voice_id=voice.id,
                number=n,
                family="piper",
                archive_key=f"{name}.v{n}.mar",
                archive_sha256="0" * 64,
                archive_bytes=1,
                sample_text="hi",
                sample_audio=b"",
                sample_rate=22050,
                sample_duration_ms=1,
                created_at=utcnow(),
                created_by="test",
            )
        )


def tasks(session: Session) -> dict[int, TaskMessage]:
    rows = session.scalars(select(OutboxMessage.body)).all()
    parsed = [TaskMessage.from_wire(body.encode()) for body in rows]
    return {t.segment_id: t for t in parsed}  # type: ignore[attr-defined]


def test_each_segment_is_queued_with_its_voice_version_and_pool(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        add_voice(session, "narrator", 2, "2", "cpu")
        add_voice(session, "speaker", 1, "1", "gpu")
        project = crud.create_project(session, name="book", voice="narrator")
        crud.add_document(
            session,
            project=project,
            text=TEXT,
            fmt="markdown",
            filename=None,
            chapters=split_document(TEXT, fmt="markdown"),
        )
        one, two = session.scalars(select(Chapter).order_by(Chapter.position)).all()
        quoted = session.scalars(
            select(Block).where(Block.chapter_id == one.id).order_by(Block.position)
        ).all()[-1]
        quoted.voice = "speaker"
        two.voice, two.voice_version = "narrator", "1"
        crud.start_conversion(session, project=project)
    with factory() as session:
        queued = tasks(session)
        segments = session.scalars(select(Segment).order_by(Segment.id)).all()
        by_block = {s.block_id: s for s in segments}
        quoted_segment = by_block[quoted.id]
        chapter_two = next(s for s in segments if s.chapter_id == two.id)
        narrator = next(s for s in segments if s.chapter_id == one.id and s.block_id != quoted.id)
        assert (narrator.voice, narrator.voice_version) == ("narrator", "2")  # the default
        assert queued[narrator.id].voice_target() == {"version": "2", "pool": "cpu"}
        assert (quoted_segment.voice, quoted_segment.voice_version) == ("speaker", "1")
        assert queued[quoted_segment.id].voice_target() == {"version": "1", "pool": "gpu"}
        assert chapter_two.voice_version == "1"  # pinned by the chapter


def test_resynthesis_keeps_the_version_that_spoke_unless_asked(
    factory: sessionmaker[Session],
) -> None:
    with factory.begin() as session:
        add_voice(session, "narrator", 2, "1", "cpu")
        project = crud.create_project(session, name="old book", voice="narrator")
        crud.add_document(
            session,
            project=project,
            text="Once upon a time.",
            fmt="text",
            filename=None,
            chapters=split_document("Once upon a time.", fmt="text"),
        )
        crud.start_conversion(session, project=project)
        segment = session.scalars(select(Segment)).one()
        segment.status = SegmentStatus.DONE
        session.execute(OutboxMessage.__table__.delete())
        session.scalars(select(Voice)).one().default_version = "2"  # the voice moved on
    with factory.begin() as session:
        segment = session.scalars(select(Segment)).one()
        crud.resynthesize(session, segment=segment)
        assert segment.voice_version == "1"
        assert tasks(session)[segment.id].voice_version == "1"
        segment.status = SegmentStatus.DONE
        session.execute(OutboxMessage.__table__.delete())
    with factory.begin() as session:
        segment = session.scalars(select(Segment)).one()
        crud.resynthesize(session, segment=segment, latest_voice=True)
        assert segment.voice_version == "2"
        assert tasks(session)[segment.id].voice_version == "2"


def test_a_builtin_voice_has_no_version_or_pool(factory: sessionmaker[Session]) -> None:
    with factory.begin() as session:
        project = crud.create_project(session, name="plain", voice="joe")
        crud.add_document(
            session,
            project=project,
            text="Hello.",
            fmt="text",
            filename=None,
            chapters=split_document("Hello.", fmt="text"),
        )
        crud.start_conversion(session, project=project)
        (task,) = tasks(session).values()
        assert task.voice == "joe" and task.voice_target() == {}


class _InProcess:
    """Stands in for the embedded mode's InProcessSynthesizer (it serves registered voices)."""

    def __init__(self) -> None:
        self.served: dict[str, tuple[dict[str, str], str | None]] = {}

    def set_voice(self, name: str, archives: dict[str, str], default: str | None) -> None:
        self.served[name] = (archives, default)


def test_where_a_registered_voice_is_served(factory: sessionmaker[Session], tmp_path: Path) -> None:
    with factory.begin() as session:
        add_voice(session, "narrator", 2, "2", "cpu")
    with factory() as session:
        voice = session.scalars(select(Voice)).one()
        voice.versions  # noqa: B018 - loaded while the session is open

    # The embedded mode's own synthesizer: in this process, no TorchServe involved.
    embedded = Settings(model_store=tmp_path, torchserve_management_url="http://127.0.0.1:1")
    in_process = _InProcess()
    registry = VoiceRegistry(embedded, factory, in_process)
    assert registry.serve(voice) == ["narrator: served in-process"]
    assert in_process.served["narrator"] == (
        {"1": "narrator.v1.mar", "2": "narrator.v2.mar"},
        "2",
    )

    # An embedded API pointed at TorchServe registers through its management API.
    calls: list[str] = []

    def management(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            return httpx.Response(404, json={"message": "not found"})
        return httpx.Response(200, json={"status": "ok"})

    pointed = Settings(
        model_store=tmp_path,
        torchserve_url="http://127.0.0.1:2",
        torchserve_token="t",
        torchserve_management_url="http://127.0.0.1:3",
    )
    synthesizer = default_synthesizer(pointed)
    assert isinstance(synthesizer, TorchServeSynthesizer)
    registry = VoiceRegistry(
        pointed,
        factory,
        synthesizer,
        management=lambda _pool: ManagementClient(
            "http://127.0.0.1:3",
            lambda: "",
            http=httpx.Client(transport=httpx.MockTransport(management)),
        ),
    )
    assert not registry.serves_in_process()
    changes = registry.serve(voice)
    assert "registered narrator 1" in changes and "registered narrator 2" in changes
    assert "POST /models" in calls and "PUT /models/narrator/2/set-default" in calls
    synthesizer.close()


def test_a_torchserve_pool_alone_means_torchserve() -> None:
    settings = Settings(
        torchserve_pools='{"gpu": "http://ts-gpu:8080"}', torchserve_token="t", mode="distributed"
    )
    synthesizer = default_synthesizer(settings)
    assert isinstance(synthesizer, TorchServeSynthesizer)
    synthesizer.close()
