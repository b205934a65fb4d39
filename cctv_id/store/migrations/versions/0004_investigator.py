"""Investigator workflow: search index bookkeeping, evidence, reviews, audit log.

Revision ID: 0004_investigator
Revises: 0003_alert_outbox
Create Date: 2026-12-02

- ``tracks``: ``crop_landmarks`` (re-embedding from the crop), ``context_path`` (whole frame
  of the best shot), ``trajectory`` (boxes per frame, for evidence clips), ``index_seq``
  (position in the track search index's write order) and ``cluster_id`` (merged tracks);
  existing tracks with an embedding get ``index_seq = id`` and the counter starts after them;
- ``hits``: ``origin`` (auto / retro / manual; existing rows: auto), review status, reviewer,
  review time, ``context_path``;
- ``enrolments.stored_photo``: the photo's copy under data_dir;
- ``reviews``: reviewers' decisions keyed by source, camera and frame span (they survive
  re-processing);
- ``audit_log``: append-only (UPDATE, DELETE and, on PostgreSQL, TRUNCATE are refused by
  triggers installed here).

New columns are nullable or have a server default (no table copy on SQLite): instant on a
database that holds data. ``hits.origin`` and ``hits.review_status`` are checked by the
repository, not by constraints (adding one to an existing SQLite table means copying it). Hand-written and
self-contained, like 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_investigator"
down_revision = "0003_alert_outbox"
branch_labels = None
depends_on = None

REVIEW_KINDS = "'confirm', 'reject', 'name', 'merge'"
APPEND_ONLY = "audit_log is append-only"


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("crop_landmarks", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("context_path", sa.Text(), nullable=True))
        batch.add_column(sa.Column("trajectory", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("index_seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("cluster_id", sa.Integer(), nullable=True))
    op.create_index("ix_tracks_model_index_seq", "tracks", ["model", "index_seq"])
    op.create_index("ix_tracks_cluster_id", "tracks", ["cluster_id"])

    with op.batch_alter_table("hits") as batch:
        batch.add_column(sa.Column("origin", sa.String(16), nullable=False, server_default="auto"))
        batch.add_column(sa.Column("review_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("reviewed_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("reviewed_at", sa.DateTime(timezone=False), nullable=True))
        batch.add_column(sa.Column("context_path", sa.Text(), nullable=True))

    with op.batch_alter_table("enrolments") as batch:
        batch.add_column(sa.Column("stored_photo", sa.Text(), nullable=True))

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("first_frame", sa.Integer(), nullable=False),
        sa.Column("last_frame", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("group_key", sa.Integer(), nullable=True),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("trajectory", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.CheckConstraint(f"kind IN ({REVIEW_KINDS})", name="ck_reviews_kind"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name="fk_reviews_source_id_sources",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name="fk_reviews_camera_id_cameras",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], name="fk_reviews_person_id_persons",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], name="fk_reviews_track_id_tracks",
                                ondelete="SET NULL"),
    )
    op.create_index("ix_reviews_source_id_camera_id", "reviews", ["source_id", "camera_id"])
    op.create_index("ix_reviews_track_id", "reviews", ["track_id"])

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=False), nullable=False),
        sa.Column("operator", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])

    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION cctv_id_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION cctv_id_audit_append_only()")
        op.execute("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION cctv_id_audit_append_only()")
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{event.lower()} BEFORE {event} ON audit_log "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")

    # existing track embeddings join the index in id order; the counter starts after them
    op.execute("UPDATE tracks SET index_seq = id WHERE embedding IS NOT NULL")
    op.execute("INSERT INTO meta (key, value) "
               "SELECT 'track_index_seq', CAST(COALESCE(MAX(id), 0) AS VARCHAR(32)) FROM tracks")
    op.execute("INSERT INTO meta (key, value) VALUES ('track_index_epoch', '0')")


def downgrade() -> None:
    op.execute("DELETE FROM meta WHERE key IN ('track_index_seq', 'track_index_epoch')")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS cctv_id_audit_append_only()")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_reviews_track_id", table_name="reviews")
    op.drop_index("ix_reviews_source_id_camera_id", table_name="reviews")
    op.drop_table("reviews")
    with op.batch_alter_table("enrolments") as batch:
        batch.drop_column("stored_photo")
    with op.batch_alter_table("hits") as batch:
        for col in ("context_path", "reviewed_at", "reviewed_by", "review_status", "origin"):
            batch.drop_column(col)
    op.drop_index("ix_tracks_cluster_id", table_name="tracks")
    op.drop_index("ix_tracks_model_index_seq", table_name="tracks")
    with op.batch_alter_table("tracks") as batch:
        for col in ("cluster_id", "index_seq", "trajectory", "context_path", "crop_landmarks"):
            batch.drop_column(col)
