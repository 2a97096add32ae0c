"""Voices as managed models: the voice registry, and the voice (version) of projects, chapters,
paragraphs and segments.

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Which tables get which voice columns: what a user picks (projects, chapters, blocks) and what
# a segment was last queued with.
VOICE_COLUMNS = {
    "projects": ("voice_version",),
    "chapters": ("voice", "voice_version"),
    "blocks": ("voice", "voice_version"),
    "segments": ("voice", "voice_version"),
}


def _column(name: str) -> sa.Column:
    return sa.Column(name, sa.String(100 if name == "voice" else 20), nullable=True)


def upgrade() -> None:
    op.create_table(
        "voices",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("gender", sa.String(20), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("pool", sa.String(20), nullable=False),
        sa.Column("default_version", sa.String(20), nullable=True),
        sa.Column("workers", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("max_batch_delay_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", name="uq_voices_name"),
    )
    op.create_table(
        "voice_versions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "voice_id",
            BigId,
            sa.ForeignKey(
                "voices.id", ondelete="CASCADE", name="fk_voice_versions_voice_id_voices"
            ),
            nullable=False,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("family", sa.String(20), nullable=False),
        sa.Column("archive_key", sa.String(200), nullable=False),
        sa.Column("archive_sha256", sa.String(64), nullable=False),
        sa.Column("archive_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sample_text", sa.Text(), nullable=False),
        sa.Column("sample_audio", sa.LargeBinary(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("sample_duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.UniqueConstraint("voice_id", "number", name="uq_voice_versions_voice_id"),
    )
    op.create_index("ix_voice_versions_voice_id", "voice_versions", ["voice_id"])
    for table, columns in VOICE_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name in columns:
                batch.add_column(_column(name))


def downgrade() -> None:
    for table, columns in VOICE_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name in columns:
                batch.drop_column(name)
    op.drop_index("ix_voice_versions_voice_id", table_name="voice_versions")
    op.drop_table("voice_versions")
    op.drop_table("voices")
