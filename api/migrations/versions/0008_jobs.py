"""Batch jobs: segment audio keys in the object store, jobs, ingested objects, webhook messages
and their delivery attempts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.add_column(sa.Column("audio_key", sa.String(200), nullable=True))
        batch.create_index("ix_segments_audio_key", ["audio_key"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "project_id",
            BigId,
            sa.ForeignKey("projects.id", ondelete="SET NULL", name="fk_jobs_project_id_projects"),
            nullable=True,
        ),
        sa.Column(
            "conversion_id",
            BigId,
            sa.ForeignKey(
                "conversions.id", ondelete="SET NULL", name="fk_jobs_conversion_id_conversions"
            ),
            nullable=True,
        ),
        sa.Column("voice", sa.String(100), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("timings", sa.String(100), nullable=False),
        sa.Column("output_bucket", sa.String(255), nullable=False),
        sa.Column("output_prefix", sa.String(700), nullable=False),
        sa.Column("output_name", sa.String(255), nullable=False),
        sa.Column("callback_url", sa.String(2048), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("source_ref", sa.String(1200), nullable=True),
        sa.Column("outputs", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("idempotency_key", name="uq_jobs_idempotency_key"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])
    op.create_table(
        "ingested_objects",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(200), nullable=False),
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.id", ondelete="SET NULL", name="fk_ingested_objects_job_id_jobs"),
            nullable=True,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("bucket", "key", "etag", name="uq_ingested_objects_bucket_key_etag"),
    )
    op.create_table(
        "webhook_messages",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey("jobs.id", ondelete="CASCADE", name="fk_webhook_messages_job_id_jobs"),
            nullable=False,
        ),
        sa.Column("event_type", sa.String(40), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_messages_job_id", "webhook_messages", ["job_id"])
    op.create_index("ix_webhook_messages_state", "webhook_messages", ["state"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigId, primary_key=True),
        sa.Column(
            "message_id",
            sa.String(40),
            sa.ForeignKey(
                "webhook_messages.id",
                ondelete="CASCADE",
                name="fk_webhook_attempts_message_id_webhook_messages",
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_attempts_message_id", "webhook_attempts", ["message_id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_messages")
    op.drop_table("ingested_objects")
    op.drop_table("jobs")
    with op.batch_alter_table("segments") as batch:
        batch.drop_index("ix_segments_audio_key")
        batch.drop_column("audio_key")
