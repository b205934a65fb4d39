"""Evidence the tracker keeps per track: trajectory (thinned evenly for long tracks, first and
last kept), a context frame of the best sample (encoded only when the best changes), and
both surviving a checkpoint round trip, old checkpoints included."""

from __future__ import annotations

import pickle

import cv2
import numpy as np

from cctv_id.config import TrackerConfig
from cctv_id.track.quality import face_quality
from cctv_id.track.state import FORMAT, dump_tracker, load_tracker
from cctv_id.track.tracker import MAX_TRAJECTORY_POINTS, FaceTracker
from cctv_id.types import FaceDetections, Frame

FPS = 10.0


def _dets(i, faces):
    boxes, lms = [], []
    for cx, cy, s in faces:
        boxes.append([cx - 0.4 * s, cy - 0.5 * s, cx + 0.4 * s, cy + 0.5 * s])
        lms.append([[cx - 0.2 * s, cy - 0.1 * s], [cx + 0.2 * s, cy - 0.1 * s], [cx, cy + 0.1 * s],
                    [cx - 0.15 * s, cy + 0.3 * s], [cx + 0.15 * s, cy + 0.3 * s]])
    return FaceDetections(i, np.array(boxes), np.full(len(faces), 0.9), np.array(lms))


def _image(i, h=240, w=320):
    """A frame whose brightness encodes its index, with texture so faces have sharpness."""
    rng = np.random.default_rng(i)
    img = np.full((h, w, 3), (i * 7) % 200 + 20, np.uint8)
    img[::4] = rng.integers(0, 255, (len(img[::4]), w, 3), dtype=np.uint8)
    return img


def _feed(tracker, faces_per_frame, start=0, image=_image):
    out = []
    for i, faces in enumerate(faces_per_frame[start:], start):
        out += tracker.update(Frame(i, i / FPS, image(i)), _dets(i, faces))
    return out


def test_trajectory_holds_every_detection_of_a_short_track():
    frames = [[(40 + 3 * i, 100 + i, 20)] for i in range(30)]
    tracker = FaceTracker(TrackerConfig(), FPS)
    (track,) = _feed(tracker, frames) + tracker.flush()
    assert len(track.trajectory) == 30
    for i, (frame, x1, y1, x2, y2) in enumerate(track.trajectory):
        cx, cy, s = frames[i][0]
        assert frame == i
        assert np.allclose([x1, y1, x2, y2], [cx - 0.4 * s, cy - 0.5 * s, cx + 0.4 * s, cy + 0.5 * s],
                           atol=0.01)


def test_trajectory_skips_frames_without_a_detection_and_follows_a_relink():
    # detected on frames 0-9, missed 10-19 (relinked after the gap), detected 20-29
    frames = [[(50 + 2 * i, 120, 20)] if not 10 <= i < 20 else [] for i in range(30)]
    tracker = FaceTracker(TrackerConfig(max_missed_s=0.5, relink_max_gap_s=2.0), FPS)
    tracks = _feed(tracker, frames) + tracker.flush()
    assert len(tracks) == 1 and tracker.n_relinked == 1
    assert [p[0] for p in tracks[0].trajectory] == list(range(10)) + list(range(20, 30))


def test_long_track_is_thinned_evenly_keeping_first_and_last():
    n = 2 * MAX_TRAJECTORY_POINTS + 345
    frames = [[(100 + 0.05 * i, 120, 20)] for i in range(n)]
    tracker = FaceTracker(TrackerConfig(), FPS, context_frames=False)
    (track,) = _feed(tracker, frames, image=lambda i: _image(0)) + tracker.flush()
    points = [p[0] for p in track.trajectory]
    assert len(points) <= MAX_TRAJECTORY_POINTS
    assert len(points) > MAX_TRAJECTORY_POINTS // 4, "thinned far more than needed"
    assert points[0] == 0 and points[-1] == n - 1
    assert points == sorted(set(points))
    steps = set(np.diff(points[:-1]))
    assert len(steps) == 1, f"uneven grid: {sorted(steps)}"  # the last point may be off-grid
    assert np.diff(points)[-1] <= steps.pop()


def test_context_frame_is_the_best_samples_frame_and_encoded_only_when_the_best_changes():
    # the face grows then shrinks: the best sample is where it is largest
    sizes = [14 + 2 * i for i in range(8)] + [28 - 2 * i for i in range(8)]
    frames = [[(160, 120, s)] for s in sizes]
    tracker = FaceTracker(TrackerConfig(), FPS)
    (track,) = _feed(tracker, frames) + tracker.flush()
    # expected encodes: every time a sample beats the best so far (by the real quality)
    best_q, expected = -1.0, 0
    for i, faces in enumerate(frames):
        d = _dets(i, faces)
        q = face_quality(_image(i), d.boxes[0], d.landmarks[0], float(d.scores[0]))
        if q > best_q:
            best_q, expected = q, expected + 1
    assert tracker.n_context_encodes == expected
    assert expected < len(frames), "the test needs samples that are not a new best"
    ctx = track.context
    assert ctx is not None and ctx.frame_index == track.best[0].frame_index
    decoded = cv2.imdecode(np.frombuffer(ctx.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3) and ctx.scale == 1.0
    # the right frame: its plain rows have the brightness that encodes the frame index
    fill = (ctx.frame_index * 7) % 200 + 20
    assert abs(float(np.median(decoded[2::4])) - fill) <= 3


def test_context_frame_is_downscaled_to_960_px_long_side():
    tracker = FaceTracker(TrackerConfig(), FPS)
    frames = [[(900, 500, 40)] for _ in range(3)]
    (track,) = _feed(tracker, frames, image=lambda i: _image(i, 1080, 1920)) + tracker.flush()
    ctx = track.context
    assert (ctx.width, ctx.height) == (960, 540) and ctx.scale == 0.5
    assert len(ctx.jpeg) < 1080 * 1920 * 3 / 10


def test_context_frames_can_be_turned_off():
    tracker = FaceTracker(TrackerConfig(), FPS, context_frames=False)
    (track,) = _feed(tracker, [[(160, 120, 20)]] * 5) + tracker.flush()
    assert track.context is None and tracker.n_context_encodes == 0
    assert len(track.trajectory) == 5


def _evidence(tracks):
    return sorted((t.track_id, t.trajectory, t.context.frame_index if t.context else None,
                   t.context.jpeg if t.context else None) for t in tracks)


def test_checkpoint_round_trip_keeps_trajectory_and_context():
    frames = [[(40 + 3 * i, 100, 14 + i % 9), (250 - 2 * i, 150, 22)] for i in range(40)]
    cfg = TrackerConfig()
    straight = FaceTracker(cfg, FPS)
    expected = _feed(straight, frames) + straight.flush()
    first = FaceTracker(cfg, FPS)
    got = _feed(first, frames[:17])
    resumed = load_tracker(dump_tracker(first), cfg, FPS)
    got += _feed(resumed, frames, start=17) + resumed.flush()
    assert _evidence(got) == _evidence(expected)
    assert all(t.context is not None and len(t.trajectory) == 40 for t in got)


def test_snapshot_of_a_live_track_carries_its_evidence_so_far():
    tracker = FaceTracker(TrackerConfig(), FPS)
    _feed(tracker, [[(100, 100, 20 + i)] for i in range(12)])
    (snap,) = tracker.snapshot(11 / FPS, min_age_s=0.5)
    assert [p[0] for p in snap.trajectory] == list(range(12))
    assert snap.context is not None and snap.context.frame_index == snap.best[0].frame_index
    assert tracker.live_tracks == 1


def test_a_checkpoint_from_before_trajectories_still_resumes():
    cfg = TrackerConfig()
    frames = [[(60 + 2 * i, 100, 16 + i)] for i in range(20)]
    old = FaceTracker(cfg, FPS)
    _feed(old, frames[:10])
    state = old.state()
    for t in state["live"] + state["closing"]:  # what a tracker of the previous version held
        for name in ("traj", "traj_step", "traj_count", "traj_tail", "best_quality", "context"):
            del t.__dict__[name]
    blob = pickle.dumps({"format": FORMAT, "state": state}, protocol=5)
    resumed = load_tracker(blob, cfg, FPS)
    (track,) = _feed(resumed, frames, start=10) + resumed.flush()
    assert [p[0] for p in track.trajectory] == list(range(10, 20))
    # the best-quality bookkeeping was rebuilt from the samples: the context is the best's
    assert track.context is None or track.context.frame_index == track.best[0].frame_index
    assert track.n_detections == 20
