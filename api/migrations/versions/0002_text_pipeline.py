"""Text pipeline: each segment's spoken form (and whether a user wrote it), the per-project
pronunciation lexicon, and the kind of file a document was uploaded as.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("spoken_text", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("spoken_override", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=True))
    op.create_table(
        "lexicon_entries",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "project_id",
            BigId,
            sa.ForeignKey(
                "projects.id", ondelete="CASCADE", name="fk_lexicon_entries_project_id_projects"
            ),
            nullable=False,
        ),
        sa.Column("grapheme", sa.String(100), nullable=False),
        sa.Column("alias", sa.String(200), nullable=True),
        sa.Column("phoneme", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "grapheme", name="uq_lexicon_entries_project_grapheme"),
    )
    op.create_index("ix_lexicon_entries_project_id", "lexicon_entries", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_lexicon_entries_project_id", table_name="lexicon_entries")
    op.drop_table("lexicon_entries")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("segments") as batch:
        batch.drop_column("spoken_override")
        batch.drop_column("spoken_text")
