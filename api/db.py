"""Engines, sessions and migrations.

Postgres in the distributed mode, SQLite (one file under ``data_dir``) in the embedded mode. The
schema is owned by the Alembic migrations in ``api/migrations``: ``voxmill migrate`` applies them to
``VOXMILL_DATABASE_URL``; the embedded mode applies them to its SQLite file at start-up.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from contract.settings import Settings, get_settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant shared by every replica: concurrent `voxmill migrate` runs take turns on it.
_MIGRATION_LOCK_ID = 0x766F786D


class SchemaError(RuntimeError):
    """The database schema is not the one this code needs."""


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgres://`` and ``postgresql://`` URLs (psycopg2 is not installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` with Voxmill's per-backend settings.

    SQLite (the embedded mode): WAL, foreign keys, a generous busy timeout, and ``BEGIN
    IMMEDIATE`` for every transaction, so the relay, the result consumer and requests take turns
    instead of failing with "database is locked" when a read transaction tries to write.
    """
    url = normalize_url(url)
    if is_sqlite(url):
        db_path = make_url(url).database
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below start transactions, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (responses are built after it)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """An Alembic configuration for ``url`` without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation would read a '%' in a password as a reference.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema (creating it when empty).

    On Postgres an advisory lock serialises concurrent runs (several replicas or a job and a
    developer at once).
    """
    config = alembic_config(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
                connection.commit()
            try:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            finally:
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                    )
                    connection.commit()
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaError` unless the database is at the newest migration.

    Raises:
        SchemaError: The database is older (or newer) than this code, or unreachable.
    """
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as e:
        raise SchemaError(f"cannot read the database schema version: {e}") from e
    expected = head_revision()
    if current != expected:
        raise SchemaError(
            f"the database schema is at revision {current or 'none (empty database)'} but this "
            f"version of Voxmill needs {expected}; run 'voxmill migrate' first"
        )


def migrate_cli(argv: list[str] | None = None) -> int:
    """``voxmill migrate``: apply the migrations to ``VOXMILL_DATABASE_URL`` (or ``--url``)."""
    parser = argparse.ArgumentParser(
        prog="voxmill migrate", description="Apply database migrations (alembic upgrade head)."
    )
    parser.add_argument("--url", help="database URL (default: VOXMILL_DATABASE_URL)")
    args = parser.parse_args(argv)
    settings: Settings = get_settings()
    url = args.url or settings.effective_database_url()
    try:
        migrate(url)
    except SQLAlchemyError as e:
        print(f"voxmill migrate: error: {e}", file=sys.stderr)
        return 1
    print(f"database at {make_url(normalize_url(url)).render_as_string()} is at {head_revision()}")
    return 0
