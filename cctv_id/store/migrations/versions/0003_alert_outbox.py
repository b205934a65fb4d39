"""Webhook alert outbox: alerts kept until delivered, so a restart neither loses nor repeats them.

Revision ID: 0003_alert_outbox
Revises: 0002_run_checkpoints
Create Date: 2025-01-03

- ``alert_outbox``: one row per alert, unique ``dedup_key`` (run:track:person), its status
  (pending, sent, failed, dropped, suppressed), delivery attempts and when the next is due;
- indexes on ``person`` (the cooldown look-up) and ``(status, next_attempt_at)`` (due alerts).

A new table only: instant on a database that holds data. Hand-written and self-contained,
like 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_alert_outbox"
down_revision = "0002_run_checkpoints"
branch_labels = None
depends_on = None

ALERT_STATUSES = "'pending', 'sent', 'failed', 'dropped', 'suppressed'"


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=False),
        sa.Column("person", sa.String(255), nullable=False),
        sa.Column("camera", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=False), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_outbox"),
        sa.UniqueConstraint("dedup_key", name="uq_alert_outbox_dedup_key"),
        sa.CheckConstraint(f"status IN ({ALERT_STATUSES})", name="ck_alert_outbox_status"),
    )
    op.create_index("ix_alert_outbox_person", "alert_outbox", ["person"])
    op.create_index("ix_alert_outbox_status_next_attempt_at", "alert_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_status_next_attempt_at", table_name="alert_outbox")
    op.drop_index("ix_alert_outbox_person", table_name="alert_outbox")
    op.drop_table("alert_outbox")
