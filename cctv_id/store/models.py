"""SQLAlchemy 2.0 models: the database schema, the project's source of truth.

The schema here and the Alembic migrations in ``migrations/versions`` must agree; a test
compares them (``alembic.autogenerate.compare_metadata``) on SQLite and PostgreSQL.

Conventions:
- every datetime column is :class:`UTCDateTime`: stored as naive UTC, returned as aware UTC,
  so SQLite and PostgreSQL behave identically; naive datetimes are refused on the way in;
- embeddings are raw little-endian float32 bytes (``LargeBinary``) with their ``dim`` beside;
- constraint and index names follow :data:`NAMING_CONVENTION` so migrations can name them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_STATUSES = ("running", "completed", "failed", "interrupted")
TRACK_STATUSES = ("matched", "unknown", "too_small", "too_short")
ALERT_STATUSES = ("pending", "sent", "failed", "dropped", "suppressed")
HIT_ORIGINS = ("auto", "retro", "manual")  # pipeline decision, retro-matching, a reviewer
REVIEW_STATUSES = ("confirmed", "rejected")
REVIEW_KINDS = ("confirm", "reject", "name", "merge")
USER_ROLES = ("viewer", "reviewer", "admin")  # web users (0005), lowest to highest
TOKEN_KINDS = ("session", "api")  # a login cookie (expires) or an API token (until revoked)
WATCHLIST_GENERATION_KEY = "watchlist_generation"
# track search index bookkeeping (0004): every write of a track embedding takes the next
# sequence number (in the writing transaction, so numbers follow commit order); anything
# that deletes track embeddings or changes their meaning bumps the epoch (index rebuilt)
TRACK_INDEX_SEQ_KEY = "track_index_seq"
TRACK_INDEX_EPOCH_KEY = "track_index_epoch"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_utc(value: datetime | None, what: str = "datetime") -> datetime | None:
    """An aware datetime converted to UTC; ``None`` passes; naive values are refused."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"{what}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what}: naive datetime {value.isoformat()}; use timezone-aware UTC")
    return value.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes stored as naive UTC (``TIMESTAMP WITHOUT TIME ZONE``)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> datetime | None:
        aware = to_utc(value)
        return None if aware is None else aware.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:  # a driver that returns aware values
            return value.astimezone(timezone.utc)
        return value.replace(tzinfo=timezone.utc)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Source(Base):
    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float | None] = mapped_column(Double, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(RUN_STATUSES)})", name="status"),
        Index(None, "source_id"),
        Index(None, "camera_id"),
        Index(None, "status"),
        Index(None, "config_sha256"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    frames_processed: Mapped[int] = mapped_column(Integer, default=0)
    last_frame_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_sha256s: Mapped[dict] = mapped_column(JSON)
    config: Mapped[dict] = mapped_column(JSON)
    tool_version: Mapped[str] = mapped_column(String(64))
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # sha256 of the resolved config: with the source, camera and model hashes, the key under
    # which an unfinished run is found again to resume it (0002)
    config_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the process that runs it and when it last showed life: tells a live run from a dead one
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RunCheckpoint(Base):
    """Where a run can resume: the last frame whose results are stored, and the caller's
    opaque state (e.g. the serialised tracker) at that frame. One row per run, replaced
    in the same transaction as the tracks and hits it accounts for."""

    __tablename__ = "run_checkpoints"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    frame_index: Mapped[int] = mapped_column(Integer)
    pts_s: Mapped[float] = mapped_column(Double)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    state_sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Person(Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Enrolment(Base):
    __tablename__ = "enrolments"
    __table_args__ = (
        UniqueConstraint("person_id", "photo_sha256", "model"),
        Index(None, "model"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"))
    photo_path: Mapped[str] = mapped_column(Text)
    photo_sha256: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    dim: Mapped[int] = mapped_column(Integer)
    face_px: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # the enrolment photo's copy under data_dir (relative path; 0004): what re-embedding and
    # the web pages read, and what remove-person deletes
    stored_photo: Mapped[str | None] = mapped_column(Text, nullable=True)


class TrackRow(Base):
    __tablename__ = "tracks"
    __table_args__ = (
        UniqueConstraint("run_id", "track_key"),
        CheckConstraint(f"status IN ({_in(TRACK_STATUSES)})", name="status"),
        Index(None, "camera_id", "first_seen_at"),
        Index(None, "first_seen_at"),
        Index(None, "status"),
        Index(None, "model", "index_seq"),
        Index(None, "cluster_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    track_key: Mapped[int] = mapped_column(Integer)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    status: Mapped[str] = mapped_column(String(16))
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    first_pts_s: Mapped[float] = mapped_column(Double)
    last_pts_s: Mapped[float] = mapped_column(Double)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    n_detections: Mapped[int] = mapped_column(Integer)
    max_face_px: Mapped[float] = mapped_column(Double)
    quality: Mapped[float] = mapped_column(Double)
    model: Mapped[str] = mapped_column(String(128))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_score: Mapped[float | None] = mapped_column(Double, nullable=True)
    best_person: Mapped[str | None] = mapped_column(String(255), nullable=True)
    best_shot_frame: Mapped[int | None] = mapped_column(Integer, nullable=True)
    best_shot_pts_s: Mapped[float | None] = mapped_column(Double, nullable=True)
    best_shot_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    bbox_x1: Mapped[float | None] = mapped_column(Double, nullable=True)
    bbox_y1: Mapped[float | None] = mapped_column(Double, nullable=True)
    bbox_x2: Mapped[float | None] = mapped_column(Double, nullable=True)
    bbox_y2: Mapped[float | None] = mapped_column(Double, nullable=True)
    crop_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # 0004 --------------------------------------------------------------------------------
    # the best shot's 5 landmarks in crop coordinates ([[x, y] * 5]): re-embedding from the crop
    crop_landmarks: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # the whole frame of the best shot (downscaled, relative path under data_dir)
    context_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    # where the face was: [[frame, x1, y1, x2, y2], ...] (thinned for long tracks)
    trajectory: Mapped[list | None] = mapped_column(JSON, nullable=True)
    # position in the track search index's write order (see TRACK_INDEX_SEQ_KEY)
    index_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # tracks a reviewer merged as one person share a cluster id (the smallest track id)
    cluster_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class HitRow(Base):
    __tablename__ = "hits"
    __table_args__ = (
        UniqueConstraint("run_id", "track_id", "person_id"),
        Index(None, "person_id", "first_seen_at"),
        Index(None, "track_id"),
        Index(None, "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("tracks.id", ondelete="CASCADE"))
    # no cascade: removing a person from the watchlist must not silently erase evidence
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    score: Mapped[float] = mapped_column(Double)
    threshold: Mapped[float] = mapped_column(Double)
    face_px: Mapped[float] = mapped_column(Double)
    quality: Mapped[float] = mapped_column(Double)
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    first_pts_s: Mapped[float] = mapped_column(Double)
    last_pts_s: Mapped[float] = mapped_column(Double)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    best_shot_frame: Mapped[int] = mapped_column(Integer)
    best_shot_pts_s: Mapped[float] = mapped_column(Double)
    best_shot_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    bbox_x1: Mapped[float] = mapped_column(Double)
    bbox_y1: Mapped[float] = mapped_column(Double)
    bbox_x2: Mapped[float] = mapped_column(Double)
    bbox_y2: Mapped[float] = mapped_column(Double)
    crop_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # 0004 (origin in HIT_ORIGINS, review_status in REVIEW_STATUSES or NULL: checked by the
    # repository) ---------------------------------------------------------------------------
    origin: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    review_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    context_path: Mapped[str | None] = mapped_column(Text, nullable=True)


class Review(Base):
    """A reviewer's decision, kept apart from the rows it changed so that it survives
    re-processing (0004).

    Identified by what was seen, not by row ids: the source, the camera and the frame span
    of the track, plus the person. When tracks of the same source and camera are stored again
    (``process --restart``, other settings), a new track whose frames overlap the span gets
    the same decision. ``track_id`` is the track it was made on (NULL once that row is gone).
    kind: confirm / reject (a hit of ``person_id``), name (an unknown track is ``person_id``),
    merge (tracks sharing ``group_key`` are one person).
    """

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(REVIEW_KINDS)})", name="kind"),
        Index(None, "source_id", "camera_id"),
        Index(None, "track_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"))
    first_frame: Mapped[int] = mapped_column(Integer)
    last_frame: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id", ondelete="CASCADE"),
                                                  nullable=True)
    group_key: Mapped[int | None] = mapped_column(Integer, nullable=True)
    track_id: Mapped[int | None] = mapped_column(ForeignKey("tracks.id", ondelete="SET NULL"),
                                                 nullable=True)
    operator: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # where the face was on the reviewed track ([[frame, x1, y1, x2, y2], ...]): tells apart
    # people seen at the same time when the decision is applied to tracks stored again
    trajectory: Mapped[list | None] = mapped_column(JSON, nullable=True)


class AuditEntry(Base):
    """Append-only audit log (0004): who did what, when, with which parameters.

    The migration installs triggers that refuse UPDATE and DELETE on this table (SQLite and
    PostgreSQL alike); the repository only ever inserts and reads.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index(None, "at"),
        Index(None, "action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    operator: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON)
    outcome: Mapped[dict] = mapped_column(JSON)


class AlertOutbox(Base):
    """Webhook alerts waiting to be delivered, and what became of them (0003).

    One row per (run, track, person) alert, identified by ``dedup_key``: "pending" until
    delivered ("sent") or given up ("failed"); "dropped" when the outbox overflowed before
    delivery; "suppressed" when the same person had an alert within the cooldown (written
    anyway, so the key is consumed and the decision can be seen). ``payload`` is the JSON
    body minus ``alert_id`` and ``dedup_key``, which are added when it is sent.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (
        CheckConstraint(f"status IN ({_in(ALERT_STATUSES)})", name="status"),
        Index(None, "person"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), unique=True)
    person: Mapped[str] = mapped_column(String(255))
    camera: Mapped[str] = mapped_column(String(255))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class User(Base):
    """A user of the web application (0005): a role and, optionally, a password.

    ``password_hash`` is ``scrypt$n$r$p$salt_hex$hash_hex`` (see :mod:`cctv_id.store.users`);
    None = no password login (API tokens only).
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN ({_in(USER_ROLES)})", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class UserToken(Base):
    """A login session or API token of a user (0005), stored only as its sha256."""

    __tablename__ = "user_tokens"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_in(TOKEN_KINDS)})", name="kind"),
        Index(None, "user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Meta(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


TABLES = {t.name: t for t in Base.metadata.sorted_tables}
