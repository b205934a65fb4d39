"""Small hand-made tracks and decisions for evidence tests (no video, no models)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from cctv_id.track.tracker import encode_context
from cctv_id.types import FaceSample, Hit, Track, TrackDecision, TrackIdentity

T0 = datetime(2026, 5, 1, 8, 0, 0, tzinfo=timezone.utc)


def track(track_id=4, context=True, context_frame=12):
    """A 3-detection track whose best shot is frame 12; its context frame is of
    ``context_frame`` (another frame than the best shot's when it differs)."""
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[40:80, 60:100] = (30, 200, 90)
    box = np.array([62, 42, 98, 78], np.float32)
    lms = np.array([[70, 55], [90, 55], [80, 62], [72, 70], [88, 70]], np.float32)
    sample = FaceSample(frame_index=12, pts_s=1.2, wall_time=T0, box=box, landmarks=lms,
                        score=0.9, face_px=36.0, quality=0.8,
                        patch=frame[30:90, 50:110].copy(), patch_origin=(50, 30))
    return Track(track_id=track_id, camera="cam", first_frame=10, last_frame=14, first_pts_s=1.0,
                 last_pts_s=1.4, first_wall_time=T0, last_wall_time=T0 + timedelta(seconds=0.4),
                 n_detections=3, max_face_px=36.0, best=(sample,),
                 trajectory=((10, 60, 40, 96, 76), (12, 62, 42, 98, 78), (14, 64, 44, 100, 80)),
                 context=encode_context(frame, context_frame) if context else None)


def decision(t, persons=(7,)):
    """A decision on track ``t`` with one hit per person id (none: "unknown")."""
    hits = tuple(Hit(track_id=t.track_id, person_id=p, person_name=str(p), score=0.6,
                     threshold=0.4, face_px=36.0, quality=0.8, first_frame=10, last_frame=14,
                     first_pts_s=1.0, last_pts_s=1.4, first_wall_time=T0, last_wall_time=T0,
                     best_shot_frame=12, best_shot_pts_s=1.2, best_shot_wall_time=T0,
                     best_shot_bbox=(62, 42, 98, 78)) for p in persons)
    ident = TrackIdentity(t, np.ones(4, np.float32) / 2, "m1", 0.8)
    return TrackDecision(ident, "matched" if hits else "unknown", hits, 0.6, "7")
