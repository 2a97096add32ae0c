"""The proofing studio: a conversion can be paused or cancelled, a sentence can be flagged for
review and keeps its previous take after a re-synthesis.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEGMENT_COLUMNS = (
    ("needs_review", sa.Boolean(), sa.false()),
    ("previous_audio", sa.LargeBinary(), None),
    ("previous_text", sa.Text(), None),
    ("previous_sample_rate", sa.Integer(), None),
    ("previous_num_samples", sa.BigInteger(), None),
    ("previous_duration_ms", sa.Integer(), None),
)


def upgrade() -> None:
    with op.batch_alter_table("conversions") as batch:
        batch.add_column(sa.Column("stopped", sa.String(20), nullable=True))
    with op.batch_alter_table("segments") as batch:
        for name, kind, default in SEGMENT_COLUMNS:
            batch.add_column(
                sa.Column(
                    name,
                    kind,
                    nullable=default is None,
                    server_default=default,
                )
            )


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        for name, _kind, _default in reversed(SEGMENT_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("conversions") as batch:
        batch.drop_column("stopped")
