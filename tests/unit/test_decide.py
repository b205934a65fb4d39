"""Open-set decision rules: bands, too-small / too-short, one hit per track."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cctv_id.config import DecisionConfig
from cctv_id.decide import apply_overrides, band_for, decide_track
from cctv_id.recognize.manifest import Band
from cctv_id.types import FaceSample, Match, Track, TrackIdentity

BANDS = [Band("lt16", 0, 16, 0.90), Band("16-32", 16, 32, 0.85), Band("ge32", 32, float("inf"), 0.80)]


def _identity(face_px=20.0, n=5, emb=True) -> TrackIdentity:
    sample = FaceSample(3, 0.3, None, np.array([10, 10, 10 + face_px * 0.8, 10 + face_px], np.float32),
                        np.zeros((5, 2), np.float32), 0.9, face_px, 0.7,
                        np.zeros((4, 4, 3), np.uint8), (0, 0))
    track = Track(7, "cam", 0, 9, 0.0, 0.9, None, None, n, face_px, (sample,))
    return TrackIdentity(track, np.ones(4, np.float32) / 2 if emb else None, "m", 0.7)


def test_band_lookup_and_extremes():
    assert band_for(10, BANDS).name == "lt16"
    assert band_for(16, BANDS).name == "16-32"
    assert band_for(500, BANDS).name == "ge32"
    assert band_for(-1, BANDS).name == "lt16"


def test_match_above_band_threshold_gives_one_hit():
    d = decide_track(_identity(20), [Match(7, 1, "ann", 0.87), Match(7, 2, "bob", 0.86)],
                     BANDS, DecisionConfig())
    assert d.status == "matched"
    assert [h.person_name for h in d.hits] == ["ann"]
    assert d.hits[0].threshold == 0.85
    assert d.hits[0].best_shot_frame == 3


def test_smaller_face_needs_higher_score():
    d = decide_track(_identity(12), [Match(7, 1, "ann", 0.87)], BANDS, DecisionConfig())
    assert d.status == "unknown" and not d.hits
    assert d.best_person == "ann"


def test_margin_rejects_ambiguous():
    d = decide_track(_identity(40), [Match(7, 1, "ann", 0.90), Match(7, 2, "bob", 0.89)],
                     BANDS, DecisionConfig(margin=0.05))
    assert d.status == "unknown"


def test_too_small_and_too_short():
    assert decide_track(_identity(8), [Match(7, 1, "a", 0.99)], BANDS,
                        DecisionConfig(min_identify_px=10)).status == "too_small"
    assert decide_track(_identity(30, n=2), [Match(7, 1, "a", 0.99)], BANDS,
                        DecisionConfig(), min_detections=3).status == "too_short"
    assert decide_track(_identity(30, emb=False), [], BANDS, DecisionConfig()).status == "too_small"


def test_overrides():
    bands = apply_overrides(BANDS, {"ge32": 0.5})
    assert band_for(40, bands).threshold == 0.5
    with pytest.raises(ValueError):
        apply_overrides(BANDS, {"nope": 0.5})


@settings(max_examples=200, deadline=None)
@given(face_px=st.floats(0, 200), scores=st.lists(st.floats(-1, 1), max_size=6),
       margin=st.floats(0, 0.2))
def test_decision_invariants(face_px, scores, margin):
    matches = [Match(7, i + 1, f"p{i}", s) for i, s in enumerate(scores)]
    d = decide_track(_identity(face_px), matches, BANDS, DecisionConfig(margin=margin))
    assert len(d.hits) <= 1
    if d.hits:
        hit = d.hits[0]
        assert hit.score == max(scores)
        assert hit.score >= band_for(face_px, BANDS).threshold
        assert d.status == "matched"
    else:
        assert d.status in {"unknown", "too_small"}
