"""Production outputs: each segment's word and sentence timings (from the voice's duration
predictor, stored with its audio), and a project's default mastering preset, author and cover
(audiobook exports).

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("segments", sa.Column("timings", sa.JSON(), nullable=True))
    op.add_column("projects", sa.Column("mastering", sa.String(20), nullable=True))
    op.add_column("projects", sa.Column("author", sa.String(200), nullable=True))
    op.add_column("projects", sa.Column("cover", sa.LargeBinary(), nullable=True))
    op.add_column("projects", sa.Column("cover_type", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("projects", "cover_type")
    op.drop_column("projects", "cover")
    op.drop_column("projects", "author")
    op.drop_column("projects", "mastering")
    op.drop_column("segments", "timings")
