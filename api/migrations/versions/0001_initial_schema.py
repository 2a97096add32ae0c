"""Initial schema: projects, documents, chapters, blocks, segments, conversions, outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = ("pending", "queued", "done", "failed")


def _id() -> sa.Column:
    return sa.Column("id", BigId, primary_key=True)


def _fk(
    column: str, target: str, *, nullable: bool = False, ondelete: str = "CASCADE"
) -> sa.Column:
    return sa.Column(
        column, BigId, sa.ForeignKey(f"{target}.id", ondelete=ondelete), nullable=nullable
    )


def _created(name: str = "created_at") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "projects",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("voice", sa.String(100), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        _created(),
    )
    op.create_table(
        "documents",
        _id(),
        _fk("project_id", "projects"),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        _created(),
    )
    op.create_index("ix_documents_project_id", "documents", ["project_id"])
    op.create_table(
        "conversions",
        _id(),
        _fk("project_id", "projects"),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        _created("started_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_conversions_project_id", "conversions", ["project_id"])
    op.create_table(
        "chapters",
        _id(),
        _fk("project_id", "projects"),
        _fk("document_id", "documents"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
    )
    op.create_index("ix_chapters_project_id", "chapters", ["project_id"])
    op.create_index("ix_chapters_document_id", "chapters", ["document_id"])
    op.create_table(
        "blocks",
        _id(),
        _fk("chapter_id", "chapters"),
        sa.Column("position", sa.Integer(), nullable=False),
    )
    op.create_index("ix_blocks_chapter_id", "blocks", ["chapter_id"])
    op.create_table(
        "segments",
        _id(),
        _fk("project_id", "projects"),
        _fk("chapter_id", "chapters"),
        _fk("block_id", "blocks"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source_start", sa.Integer(), nullable=False),
        sa.Column("source_end", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                *STATUSES,
                name="segment_status",
                native_enum=False,
                length=16,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("task_id", sa.String(64), nullable=True),
        _fk("conversion_id", "conversions", nullable=True, ondelete="SET NULL"),
        sa.Column("audio", sa.LargeBinary(), nullable=True),
        sa.Column("sample_rate", sa.Integer(), nullable=True),
        sa.Column("num_samples", sa.BigInteger(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_segments_block_id", "segments", ["block_id"])
    op.create_index("ix_segments_chapter_id", "segments", ["chapter_id"])
    op.create_index("ix_segments_conversion_id", "segments", ["conversion_id"])
    op.create_index("ix_segments_project_status", "segments", ["project_id", "status"])
    op.create_table(
        "outbox",
        _id(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _created(),
    )


def downgrade() -> None:
    for table in ("outbox", "segments", "blocks", "chapters", "conversions", "documents"):
        op.drop_table(table)
    op.drop_table("projects")
