"""The previous take in the object store and its timings: ``segments.previous_audio_key`` (the
object of the take a re-synthesis replaced, when segment audio lives in the object store) and
``segments.previous_timings`` (its word and sentence times), so comparing and swapping takes
works in every audio store and keeps each take's timings.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("previous_audio_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("previous_timings", sa.JSON(), nullable=True))
        batch.create_index("ix_segments_previous_audio_key", ["previous_audio_key"])


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.drop_index("ix_segments_previous_audio_key")
        batch.drop_column("previous_timings")
        batch.drop_column("previous_audio_key")
