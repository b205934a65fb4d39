"""Tracker logic: size-scaled gating, re-linking, best-K samples, track ends."""

from __future__ import annotations

import numpy as np
import pytest

from cctv_id.config import TrackerConfig
from cctv_id.track.tracker import FaceTracker
from cctv_id.types import FaceDetections, Frame

FPS = 10.0
H, W = 576, 768


def _frame(i: int, image=None) -> Frame:
    img = image if image is not None else np.full((H, W, 3), 128, np.uint8)
    return Frame(index=i, pts_s=i / FPS, image=img)


def _dets(i: int, faces: list[tuple[float, float, float]]) -> FaceDetections:
    """faces: (cx, cy, size) -> boxes with plausible landmarks."""
    boxes, lms = [], []
    for cx, cy, s in faces:
        boxes.append([cx - 0.4 * s, cy - 0.5 * s, cx + 0.4 * s, cy + 0.5 * s])
        lms.append([[cx - 0.2 * s, cy - 0.1 * s], [cx + 0.2 * s, cy - 0.1 * s], [cx, cy + 0.1 * s],
                    [cx - 0.15 * s, cy + 0.3 * s], [cx + 0.15 * s, cy + 0.3 * s]])
    return FaceDetections(i, np.array(boxes), np.full(len(faces), 0.9), np.array(lms))


def _run(tracker, frames):
    out = []
    for i, faces in enumerate(frames):
        out += tracker.update(_frame(i), _dets(i, faces))
    return out + tracker.flush()


def test_small_fast_face_is_one_track():
    # a 10 px face moving 12 px per frame: more than its width, boxes never overlap
    tracker = FaceTracker(TrackerConfig(), FPS)
    tracks = _run(tracker, [[(100 + 12 * i, 300, 10)] for i in range(30)])
    assert len(tracks) == 1
    assert tracks[0].n_detections == 30
    assert tracks[0].first_frame == 0 and tracks[0].last_frame == 29


def test_two_crossing_faces_stay_apart():
    frames = [[(100 + 8 * i, 200, 20), (500 - 8 * i, 260, 20)] for i in range(40)]
    tracks = _run(FaceTracker(TrackerConfig(), FPS), frames)
    assert len(tracks) == 2
    for t in tracks:
        ys = {round(float(s.box[1] + s.box[3]) / 2) for s in t.best}
        assert len(ys) == 1, "a track swapped identities"


def test_gate_scales_with_face_size():
    # a jump of 40 px is plausible for nobody of size 10 in one frame, but a large face
    # (size 60) may move that much: the large one continues, the small one breaks.
    cfg = TrackerConfig(relink_max_gap_s=0.0)
    small = _run(FaceTracker(cfg, FPS), [[(100, 100, 10)], [(140, 100, 10)]])
    large = _run(FaceTracker(cfg, FPS), [[(100, 100, 60)], [(140, 100, 60)]])
    assert len(small) == 2
    assert len(large) == 1


def test_size_change_breaks_association():
    tracks = _run(FaceTracker(TrackerConfig(relink_max_gap_s=0.0), FPS),
                  [[(100, 100, 10)], [(101, 100, 30)]])
    assert len(tracks) == 2


def test_missed_detections_are_relinked():
    # seen for 10 frames, missed for 15 (1.5 s > max_missed_s), then seen again on its path
    frames = [[(100 + 5 * i, 300, 14)] if not 10 <= i < 25 else [] for i in range(40)]
    tracker = FaceTracker(TrackerConfig(max_missed_s=1.0, relink_max_gap_s=2.5), FPS)
    tracks = _run(tracker, frames)
    assert len(tracks) == 1
    assert tracker.n_relinked == 1
    assert tracks[0].n_detections == 25


def test_track_ends_after_gap_without_relink():
    frames = [[(100, 300, 14)] if i < 5 or i > 60 else [] for i in range(70)]
    tracks = _run(FaceTracker(TrackerConfig(max_missed_s=1.0, relink_max_gap_s=2.5), FPS), frames)
    assert len(tracks) == 2


def test_finished_tracks_are_emitted_online():
    tracker = FaceTracker(TrackerConfig(max_missed_s=0.5, relink_max_gap_s=1.0), FPS)
    emitted = []
    for i in range(40):
        faces = [(100 + i, 300, 14)] if i < 10 else []
        emitted += tracker.update(_frame(i), _dets(i, faces))
    assert len(emitted) == 1 and tracker.live_tracks == 0


@pytest.mark.parametrize("k", [1, 3, 5])
def test_best_k_prefers_large_sharp_faces(k):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)  # texture: sharpness is non-zero
    tracker = FaceTracker(TrackerConfig(best_k=k), FPS)
    sizes = [20, 22, 30, 26, 40, 28, 35, 24]
    for i, s in enumerate(sizes):
        tracker.update(_frame(i, image), _dets(i, [(200 + i, 300, s)]))
    (track,) = tracker.flush()
    assert len(track.best) == k
    kept = [s.face_px for s in track.best]
    assert kept == sorted(kept, reverse=True)
    assert kept[0] == pytest.approx(40, abs=0.5)
    assert all(s.patch.size > 0 for s in track.best)
    # landmarks in patch coordinates fall inside the patch
    for s in track.best:
        lm = s.patch_landmarks
        assert (lm >= 0).all() and (lm[:, 0] < s.patch.shape[1]).all()


def test_relink_refuses_a_different_face_where_a_track_ended():
    # one face walks right and leaves at x=400 at 18 px; a second later another, twice as
    # large, appears behind it: a new person, not the same track
    frames = [[(200 + 20 * i, 300, 18)] for i in range(10)] + [[] for _ in range(10)]
    frames += [[(390 - 10 * i, 300, 36)] for i in range(10)]
    tracker = FaceTracker(TrackerConfig(), FPS)
    tracks = _run(tracker, frames)
    assert len(tracks) == 2 and tracker.n_relinked == 0


def test_snapshot_reports_long_live_tracks_without_ending_them():
    tracker = FaceTracker(TrackerConfig(), FPS)
    for i in range(30):
        faces = [(100 + i, 200, 20)] + ([(400, 300, 18)] if i >= 25 else [])
        tracker.update(_frame(i), _dets(i, faces))
    now = 29 / FPS
    long_ones = tracker.snapshot(now, min_age_s=20 / FPS)
    assert len(long_ones) == 1 and long_ones[0].n_detections == 30 and long_ones[0].best
    assert tracker.live_tracks == 2 and tracker.open_tracks == 2  # nothing ended
    final = tracker.flush()
    assert [t.track_id for t in final] == sorted(t.track_id for t in final)
    assert long_ones[0].track_id in {t.track_id for t in final}


def _searched_rounds(every: int, step=lambda i: (100 + 6 * i, 300), rounds: int = 14):
    """Rounds on which the tracker's one face was due (searched); it is detected then."""
    tracker = FaceTracker(TrackerConfig(), FPS)
    due_rounds = []
    for i in range(rounds):
        due, resting = tracker.search_hints(i / FPS, every)
        assert len(due) + len(resting) == tracker.live_tracks
        searched = i == 0 or len(due) == 1
        if searched:
            due_rounds.append(i)
        tracker.update(_frame(i), _dets(i, [(*step(i), 20)] if searched else []))
    return due_rounds, tracker


def test_search_hints_let_a_predictable_track_rest_between_its_rounds():
    # every round while it is young; once confirmed (3 detections) and where it was
    # predicted, on every 2nd (every 3rd) round
    assert _searched_rounds(1)[0] == list(range(14))
    assert _searched_rounds(2)[0] == [0, 1, 2, 4, 6, 8, 10, 12]
    assert _searched_rounds(3)[0] == [0, 1, 2, 5, 8, 11]
    # a face that turns round is seen off its prediction (round 10): searched on the next
    # round too, and rests again once its sightings fit the prediction
    turn = lambda i: (100 + 6 * min(i, 8) - 6 * max(0, i - 8), 300)  # noqa: E731
    rounds, turned = _searched_rounds(2, step=turn)
    assert rounds == [0, 1, 2, 4, 6, 8, 10, 11, 13] and turned.open_tracks == 1
    # the round count travels in the tracker's state (a resumed run rests the same tracks)
    _, tracker = _searched_rounds(2, rounds=5)
    again = FaceTracker(TrackerConfig(), FPS)
    again.restore(tracker.state())
    for a, b in zip(tracker.search_hints(0.5, 2), again.search_hints(0.5, 2)):
        np.testing.assert_array_equal(a, b)
