"""Web application users: accounts with a role, login sessions and API tokens.

Revision ID: 0005_web_users
Revises: 0004_investigator
Create Date: 2026-12-02

- ``users``: username (unique), role (viewer / reviewer / admin), scrypt password hash
  (nullable: token-only users), created_at;
- ``user_tokens``: sha256 of a session or API token (the token itself is never stored), its
  kind, creation and expiry time; deleted with their user.

Two new tables only: instant on a database that holds data. Hand-written and self-contained.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_web_users"
down_revision = "0004_investigator"
branch_labels = None
depends_on = None

USER_ROLES = "'viewer', 'reviewer', 'admin'"
TOKEN_KINDS = "'session', 'api'"


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.CheckConstraint(f"role IN ({USER_ROLES})", name="ck_users_role"),
    )
    op.create_table(
        "user_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=False), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_tokens"),
        sa.UniqueConstraint("token_sha256", name="uq_user_tokens_token_sha256"),
        sa.CheckConstraint(f"kind IN ({TOKEN_KINDS})", name="ck_user_tokens_kind"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_tokens_user_id_users",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_user_tokens_user_id", "user_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_user_tokens_user_id", table_name="user_tokens")
    op.drop_table("user_tokens")
    op.drop_table("users")
