"""Property-based tests of the tracker on random detections: bookkeeping invariants,
determinism, and that a checkpoint/restore part-way changes nothing."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cctv_id.config import TrackerConfig
from cctv_id.track.state import dump_tracker, load_tracker
from cctv_id.track.tracker import FaceTracker
from cctv_id.types import FaceDetections, Frame

FPS = 10.0
IMAGE = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)

face = st.tuples(st.floats(10, 310), st.floats(10, 230), st.floats(6, 60))
frames_strategy = st.lists(st.lists(face, max_size=4), min_size=1, max_size=40)


def _dets(i, faces):
    boxes, lms = [], []
    for cx, cy, s in faces:
        boxes.append([cx - 0.4 * s, cy - 0.5 * s, cx + 0.4 * s, cy + 0.5 * s])
        lms.append([[cx - 0.2 * s, cy - 0.1 * s], [cx + 0.2 * s, cy - 0.1 * s], [cx, cy + 0.1 * s],
                    [cx - 0.15 * s, cy + 0.3 * s], [cx + 0.15 * s, cy + 0.3 * s]])
    return FaceDetections(i, np.array(boxes), np.full(len(faces), 0.9), np.array(lms))


def _feed(tracker, frames, start=0):
    out = []
    for i, faces in enumerate(frames[start:], start):
        out += tracker.update(Frame(i, i / FPS, IMAGE), _dets(i, faces))
    return out


def _summary(tracks):
    return sorted((t.track_id, t.first_frame, t.last_frame, t.n_detections,
                   tuple(s.frame_index for s in t.best)) for t in tracks)


@settings(max_examples=60, deadline=None)
@given(frames=frames_strategy)
def test_every_detection_lands_in_exactly_one_track(frames):
    tracks = _feed(FaceTracker(TrackerConfig(), FPS), frames)
    tracker = FaceTracker(TrackerConfig(), FPS)
    tracks = _feed(tracker, frames) + tracker.flush()
    assert sum(t.n_detections for t in tracks) == sum(len(f) for f in frames)
    ids = [t.track_id for t in tracks]
    assert len(ids) == len(set(ids))
    for t in tracks:
        assert t.first_frame <= t.last_frame
        assert 1 <= len(t.best) <= TrackerConfig().best_k
        qualities = [s.quality for s in t.best]
        assert qualities == sorted(qualities, reverse=True)
        frames_of_best = [s.frame_index for s in t.best]
        assert len(frames_of_best) == len(set(frames_of_best)), "one face per frame per track"
        assert all(t.first_frame <= f <= t.last_frame for f in frames_of_best)


@settings(max_examples=40, deadline=None)
@given(frames=frames_strategy, data=st.data())
def test_checkpoint_and_restore_changes_nothing(frames, data):
    cfg = TrackerConfig()
    straight = FaceTracker(cfg, FPS)
    expected = _feed(straight, frames) + straight.flush()

    cut = data.draw(st.integers(0, len(frames)))
    first = FaceTracker(cfg, FPS)
    got = _feed(first, frames[:cut])
    blob = dump_tracker(first)
    resumed = load_tracker(blob, cfg, FPS)
    got += _feed(resumed, frames, start=cut) + resumed.flush()
    assert _summary(got) == _summary(expected)


def test_checkpoint_refuses_foreign_types():
    evil = pickle.dumps({"format": 1, "state": {"live": [print]}})
    with pytest.raises(pickle.UnpicklingError):
        load_tracker(evil, TrackerConfig(), FPS)
