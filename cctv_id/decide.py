"""Open-set decisions per track: thresholds per face-size band, one hit per (track, person).

Pure functions over typed records, no I/O. The thresholds come from impostor-pair
calibration stored with each recogniser in ``weights/MANIFEST.yaml`` (a cosine threshold
per face-size band at a stated false-match rate); a track whose faces are all smaller
than ``min_identify_px`` is marked ``too_small`` instead of being guessed at.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol, Sequence

import numpy as np

from .config import DecisionConfig
from .recognize.manifest import band_for
from .types import Hit, Match, TrackDecision, TrackIdentity


class ThresholdBand(Protocol):
    """What a face-size band offers (``cctv_id.recognize.manifest.Band`` is one)."""

    name: str
    min_px: float
    max_px: float
    threshold: float


def representative_face_px(identity: TrackIdentity) -> float:
    """Face size the recogniser actually saw: quality-weighted mean over the embedded samples."""
    best = identity.track.best
    if not best:
        return identity.track.max_face_px
    px = np.array([s.face_px for s in best], np.float64)
    w = np.array([max(s.quality, 1e-6) for s in best], np.float64)
    return float((px * w).sum() / w.sum())


def apply_overrides(
    bands: Sequence[ThresholdBand], overrides: dict[str, float] | None
) -> list[ThresholdBand]:
    """Bands with thresholds replaced where ``overrides`` names them."""
    if not overrides:
        return list(bands)
    known = {b.name for b in bands}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown threshold band(s) {unknown}; bands are {sorted(known)}")
    return [
        replace(b, threshold=float(overrides[b.name])) if b.name in overrides else b
        for b in bands
    ]


def decide_track(
    identity: TrackIdentity,
    matches: Sequence[Match],
    bands: Sequence[ThresholdBand],
    cfg: DecisionConfig,
    min_detections: int = 1,
) -> TrackDecision:
    """Status and hits of one track given its matches against the watchlist.

    ``matches`` holds at most one entry per person (the person's best enrolment score).
    At most one person is named per track: the best, if it clears the band's threshold
    and beats the runner-up by ``cfg.margin``.
    """
    track = identity.track
    ordered = sorted(matches, key=lambda m: m.score, reverse=True)
    best = ordered[0] if ordered else None
    best_score = best.score if best else None
    best_person = best.person_name if best else None
    if track.n_detections < min_detections:
        return TrackDecision(identity, "too_short", (), best_score, best_person)
    if identity.embedding is None or track.max_face_px < cfg.min_identify_px:
        return TrackDecision(identity, "too_small", (), best_score, best_person)
    if best is None:
        return TrackDecision(identity, "unknown", (), None, None)
    band = band_for(representative_face_px(identity), bands)
    runner_up = ordered[1].score if len(ordered) > 1 else -1.0
    if best.score < band.threshold or best.score - runner_up < cfg.margin:
        return TrackDecision(identity, "unknown", (), best_score, best_person)
    return TrackDecision(
        identity, "matched", (make_hit(identity, best, band.threshold),), best_score, best_person
    )


def make_hit(identity: TrackIdentity, match: Match, threshold: float) -> Hit:
    track = identity.track
    shot = track.best[0]
    return Hit(
        track_id=track.track_id,
        person_id=match.person_id,
        person_name=match.person_name,
        score=float(match.score),
        threshold=float(threshold),
        face_px=float(shot.face_px),
        quality=float(identity.quality),
        first_frame=track.first_frame,
        last_frame=track.last_frame,
        first_pts_s=track.first_pts_s,
        last_pts_s=track.last_pts_s,
        first_wall_time=track.first_wall_time,
        last_wall_time=track.last_wall_time,
        best_shot_frame=shot.frame_index,
        best_shot_pts_s=shot.pts_s,
        best_shot_wall_time=shot.wall_time,
        best_shot_bbox=tuple(float(v) for v in shot.box),
    )
