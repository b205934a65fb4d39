"""Plain records that cross the repository boundary (never ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from cctv_id.types import Hit, TrackDecision


@dataclass(frozen=True)
class HitRecord:
    """One identity hit of a track, as stored in ``hits``."""

    person_id: int
    score: float
    threshold: float
    face_px: float
    quality: float
    first_frame: int
    last_frame: int
    first_pts_s: float
    last_pts_s: float
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    best_shot_frame: int
    best_shot_pts_s: float
    best_shot_at: datetime | None
    best_shot_bbox: tuple[float, float, float, float]
    crop_path: str | None = None
    context_path: str | None = None  # the whole frame of the best shot (under data_dir)
    origin: str = "auto"  # one of models.HIT_ORIGINS

    @classmethod
    def from_hit(cls, hit: Hit, crop_path: str | None = None,
                 context_path: str | None = None) -> HitRecord:
        return cls(
            person_id=int(hit.person_id),
            score=float(hit.score),
            threshold=float(hit.threshold),
            face_px=float(hit.face_px),
            quality=float(hit.quality),
            first_frame=int(hit.first_frame),
            last_frame=int(hit.last_frame),
            first_pts_s=float(hit.first_pts_s),
            last_pts_s=float(hit.last_pts_s),
            first_seen_at=hit.first_wall_time,
            last_seen_at=hit.last_wall_time,
            best_shot_frame=int(hit.best_shot_frame),
            best_shot_pts_s=float(hit.best_shot_pts_s),
            best_shot_at=hit.best_shot_wall_time,
            best_shot_bbox=tuple(float(v) for v in hit.best_shot_bbox),  # type: ignore[arg-type]
            crop_path=crop_path,
            context_path=context_path,
        )


@dataclass(frozen=True)
class TrackRecord:
    """One finished track, as stored in ``tracks``, with its hits (zero or more)."""

    track_key: int  # the tracker's id, unique within the run
    status: str  # "matched" | "unknown" | "too_small" | "too_short"
    first_frame: int
    last_frame: int
    first_pts_s: float
    last_pts_s: float
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    n_detections: int
    max_face_px: float
    quality: float
    model: str
    embedding: np.ndarray | None = None  # (D,) float32
    best_score: float | None = None
    best_person: str | None = None
    best_shot_frame: int | None = None
    best_shot_pts_s: float | None = None
    best_shot_at: datetime | None = None
    best_shot_bbox: tuple[float, float, float, float] | None = None
    crop_path: str | None = None
    hits: tuple[HitRecord, ...] = field(default_factory=tuple)
    # the best shot's landmarks in crop coordinates (5 x [x, y]): re-embedding from the crop
    crop_landmarks: tuple[tuple[float, float], ...] | None = None
    context_path: str | None = None  # the whole frame of the best shot (under data_dir)
    # boxes where the face was: ((frame, x1, y1, x2, y2), ...), for evidence clips
    trajectory: tuple[tuple[float, ...], ...] | None = None

    @classmethod
    def from_decision(
        cls,
        decision: TrackDecision,
        crop_path: str | None = None,
        hit_crop_paths: dict[int, str] | None = None,
    ) -> TrackRecord:
        """Build from the decision stage's output.

        The best shot is the track's first (best) sample, when it has one. ``crop_path`` is the
        saved best-shot crop of the track; ``hit_crop_paths`` maps person_id to a hit's own
        crop (default: the track's crop).
        """
        ident = decision.identity
        track = ident.track
        best = track.best[0] if track.best else None
        hit_crop_paths = hit_crop_paths or {}
        return cls(
            track_key=int(track.track_id),
            status=decision.status,
            first_frame=int(track.first_frame),
            last_frame=int(track.last_frame),
            first_pts_s=float(track.first_pts_s),
            last_pts_s=float(track.last_pts_s),
            first_seen_at=track.first_wall_time,
            last_seen_at=track.last_wall_time,
            n_detections=int(track.n_detections),
            max_face_px=float(track.max_face_px),
            quality=float(ident.quality),
            model=ident.model,
            embedding=ident.embedding,
            best_score=None if decision.best_score is None else float(decision.best_score),
            best_person=decision.best_person,
            best_shot_frame=None if best is None else int(best.frame_index),
            best_shot_pts_s=None if best is None else float(best.pts_s),
            best_shot_at=None if best is None else best.wall_time,
            best_shot_bbox=None if best is None else tuple(float(v) for v in best.box),  # type: ignore[arg-type]
            crop_path=crop_path,
            hits=tuple(
                HitRecord.from_hit(h, hit_crop_paths.get(h.person_id, crop_path))
                for h in decision.hits
            ),
        )


@dataclass(frozen=True)
class Checkpoint:
    """Where a run can resume: every result up to ``frame_index`` (inclusive) is stored, and
    ``state`` is the caller's opaque serialised state (e.g. the tracker's) at that frame.

    The store keeps the bytes as they are, with their sha256 to detect corruption.
    """

    frame_index: int
    pts_s: float
    state: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.state, (bytes, bytearray, memoryview)):
            raise TypeError(f"Checkpoint.state must be bytes, got {type(self.state).__name__}")


@dataclass(frozen=True)
class WatchlistData:
    """Every enrolment of one recogniser, in one consistent read (one row per enrolment)."""

    generation: int
    person_ids: np.ndarray  # (M,) int64
    names: list[str]  # (M,) person names, aligned with person_ids
    embeddings: np.ndarray  # (M, D) float32; (0, 0) when nothing is enrolled for the model

    def __len__(self) -> int:
        return len(self.names)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1]) if self.embeddings.ndim == 2 else 0
