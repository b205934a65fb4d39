"""Initial schema: cameras, sources, runs, persons, enrolments, tracks, hits, meta.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01

Hand-written and self-contained (it does not import the models, which will move on);
``tests/unit/store`` checks that it produces exactly the schema of ``cctv_id.store.models``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

RUN_STATUSES = "'running', 'completed', 'failed', 'interrupted'"
TRACK_STATUSES = "'matched', 'unknown', 'too_small', 'too_short'"


def _ts(name: str, nullable: bool = True) -> sa.Column:
    """A naive-UTC timestamp column (the models' UTCDateTime)."""
    return sa.Column(name, sa.DateTime(timezone=False), nullable=nullable)


def _dbl(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _int(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _bbox(nullable: bool) -> list[sa.Column]:
    return [_dbl(f"bbox_{c}", nullable) for c in ("x1", "y1", "x2", "y2")]


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_cameras"),
        sa.UniqueConstraint("name", name="uq_cameras_name"),
    )
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        _dbl("duration_s", nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("sha256", name="uq_sources_sha256"),
    )
    op.create_table(
        "persons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_persons"),
        sa.UniqueConstraint("name", name="uq_persons_name"),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        _int("source_id"),
        _int("camera_id"),
        _ts("started_at", nullable=False),
        _ts("finished_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _int("frames_processed"),
        _int("last_frame_index", nullable=True),
        sa.Column("model_sha256s", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("tool_version", sa.String(64), nullable=False),
        _ts("start_time"),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint(f"status IN ({RUN_STATUSES})", name="ck_runs_status"),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], name="fk_runs_source_id_sources"),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name="fk_runs_camera_id_cameras"),
    )
    op.create_index("ix_runs_source_id", "runs", ["source_id"])
    op.create_index("ix_runs_camera_id", "runs", ["camera_id"])
    op.create_index("ix_runs_status", "runs", ["status"])

    op.create_table(
        "enrolments",
        sa.Column("id", sa.Integer(), nullable=False),
        _int("person_id"),
        sa.Column("photo_path", sa.Text(), nullable=False),
        sa.Column("photo_sha256", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        _int("dim"),
        _dbl("face_px"),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrolments"),
        sa.UniqueConstraint(
            "person_id", "photo_sha256", "model", name="uq_enrolments_person_id_photo_sha256_model"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name="fk_enrolments_person_id_persons", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_enrolments_model", "enrolments", ["model"])

    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        _int("run_id"),
        _int("track_key"),
        _int("camera_id"),
        sa.Column("status", sa.String(16), nullable=False),
        _int("first_frame"),
        _int("last_frame"),
        _dbl("first_pts_s"),
        _dbl("last_pts_s"),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        _int("n_detections"),
        _dbl("max_face_px"),
        _dbl("quality"),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        _int("dim", nullable=True),
        _dbl("best_score", nullable=True),
        sa.Column("best_person", sa.String(255), nullable=True),
        _int("best_shot_frame", nullable=True),
        _dbl("best_shot_pts_s", nullable=True),
        _ts("best_shot_at"),
        *_bbox(nullable=True),
        sa.Column("crop_path", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tracks"),
        sa.UniqueConstraint("run_id", "track_key", name="uq_tracks_run_id_track_key"),
        sa.CheckConstraint(f"status IN ({TRACK_STATUSES})", name="ck_tracks_status"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_tracks_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["camera_id"], ["cameras.id"], name="fk_tracks_camera_id_cameras"),
    )
    op.create_index("ix_tracks_camera_id_first_seen_at", "tracks", ["camera_id", "first_seen_at"])
    op.create_index("ix_tracks_first_seen_at", "tracks", ["first_seen_at"])
    op.create_index("ix_tracks_status", "tracks", ["status"])

    op.create_table(
        "hits",
        sa.Column("id", sa.Integer(), nullable=False),
        _int("run_id"),
        _int("track_id"),
        _int("person_id"),
        _dbl("score"),
        _dbl("threshold"),
        _dbl("face_px"),
        _dbl("quality"),
        _int("first_frame"),
        _int("last_frame"),
        _dbl("first_pts_s"),
        _dbl("last_pts_s"),
        _ts("first_seen_at"),
        _ts("last_seen_at"),
        _int("best_shot_frame"),
        _dbl("best_shot_pts_s"),
        _ts("best_shot_at"),
        *_bbox(nullable=False),
        sa.Column("crop_path", sa.Text(), nullable=True),
        _ts("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hits"),
        sa.UniqueConstraint(
            "run_id", "track_id", "person_id", name="uq_hits_run_id_track_id_person_id"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_hits_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["track_id"], ["tracks.id"], name="fk_hits_track_id_tracks", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], name="fk_hits_person_id_persons"),
    )
    op.create_index("ix_hits_person_id_first_seen_at", "hits", ["person_id", "first_seen_at"])
    op.create_index("ix_hits_first_seen_at", "hits", ["first_seen_at"])
    op.create_index("ix_hits_track_id", "hits", ["track_id"])

    meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
    op.bulk_insert(meta, [{"key": "watchlist_generation", "value": "0"}])


def downgrade() -> None:
    for index, table in [
        ("ix_hits_track_id", "hits"),
        ("ix_hits_first_seen_at", "hits"),
        ("ix_hits_person_id_first_seen_at", "hits"),
    ]:
        op.drop_index(index, table_name=table)
    op.drop_table("hits")
    for index in ("ix_tracks_status", "ix_tracks_first_seen_at", "ix_tracks_camera_id_first_seen_at"):
        op.drop_index(index, table_name="tracks")
    op.drop_table("tracks")
    op.drop_index("ix_enrolments_model", table_name="enrolments")
    op.drop_table("enrolments")
    for index in ("ix_runs_status", "ix_runs_camera_id", "ix_runs_source_id"):
        op.drop_index(index, table_name="runs")
    op.drop_table("runs")
    op.drop_table("meta")
    op.drop_table("persons")
    op.drop_table("sources")
    op.drop_table("cameras")
