"""Crash safety: run checkpoints, the config hash that finds a run to resume, liveness.

Revision ID: 0002_run_checkpoints
Revises: 0001_initial
Create Date: 2025-01-02

- ``run_checkpoints``: one row per run (last stored frame + the caller's opaque state);
- ``runs.config_sha256`` (indexed): hash of the resolved config, part of the resume key;
- ``runs.pid`` and ``runs.heartbeat_at``: tell a live run from one whose process died.

Every new column is nullable, so the upgrade is instant on a database that holds data.
Hand-written and self-contained, like 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_run_checkpoints"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ALTER TABLE ... ADD COLUMN on both dialects (no table copy on SQLite)
    op.add_column("runs", sa.Column("config_sha256", sa.String(64), nullable=True))
    op.add_column("runs", sa.Column("pid", sa.Integer(), nullable=True))
    op.add_column("runs", sa.Column("heartbeat_at", sa.DateTime(timezone=False), nullable=True))
    op.create_index("ix_runs_config_sha256", "runs", ["config_sha256"])
    op.create_table(
        "run_checkpoints",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("frame_index", sa.Integer(), nullable=False),
        sa.Column("pts_s", sa.Double(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("state_sha256", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_run_checkpoints"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_checkpoints_run_id_runs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    op.drop_table("run_checkpoints")
    op.drop_index("ix_runs_config_sha256", table_name="runs")
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), never batch mode: copying ``runs`` on
    # SQLite would drop the original table, and with it (ON DELETE CASCADE) every track.
    for column in ("heartbeat_at", "pid", "config_sha256"):
        op.drop_column("runs", column)
