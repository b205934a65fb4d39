"""The evaluation recognisers' table: sides, weights, and a clear error for a missing backend."""

from __future__ import annotations

import pytest

from cctv_id import registry
from cctv_id.errors import CctvIdError, ModelError
from cctv_id.evaluate.recognizers import RECOGNIZERS, build_recognizer


def test_table():
    assert set(RECOGNIZERS) == {"dlib", "dlib-torch", "student", "student-only"}
    s = RECOGNIZERS["student"]
    assert (s.gallery_backend, s.probe_backend, s.weights_to) == ("dlib-torch", "student", "probe")
    assert RECOGNIZERS["student-only"].gallery_backend == "student"


def test_dlib_shares_one_encoder():
    pytest.importorskip("dlib")
    rec = build_recognizer("dlib")
    assert rec.gallery is rec.probe and rec.gallery.name == "dlib-resnet-v1"
    assert rec.describe()["gallery_sha256"] == rec.gallery.model_sha256


def test_missing_backend_is_one_clear_line(monkeypatch):
    monkeypatch.delitem(registry.RECOGNIZERS, "student", raising=False)
    with pytest.raises(ModelError) as info:
        build_recognizer("student")
    msg = str(info.value)
    assert "'student' is not available" in msg and "\n" not in msg and "--recognizer dlib" in msg


def test_unknown_name_and_missing_weights(tmp_path):
    with pytest.raises(CctvIdError, match="unknown evaluation recogniser 'resnet'"):
        build_recognizer("resnet")
    with pytest.raises(ModelError, match="weights file not found"):
        build_recognizer("student", weights=tmp_path / "absent.pt")
