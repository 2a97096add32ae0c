"""Migrations build exactly the schema the models describe; ``voxmill migrate`` applies them."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from api.db import SchemaError, check_schema, head_revision, make_engine, migrate, migrate_cli
from api.models import Base


def test_migrations_match_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        check_schema(engine)
    finally:
        engine.dispose()
    assert diff == []


def test_an_unmigrated_database_is_refused_with_the_fix(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaError, match="run 'voxmill migrate' first"):
            check_schema(engine)
    finally:
        engine.dispose()


def test_migrate_cli_uses_the_configured_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contract.settings import get_settings

    db = tmp_path / "sub" / "cli.db"
    monkeypatch.setenv("VOXMILL_DATABASE_URL", f"sqlite:///{db}")
    get_settings.cache_clear()
    try:
        assert migrate_cli([]) == 0
        assert migrate_cli([]) == 0  # idempotent
    finally:
        get_settings.cache_clear()
    assert db.is_file()
    assert head_revision() in capsys.readouterr().out
