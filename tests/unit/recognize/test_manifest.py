"""weights/MANIFEST.yaml: provenance entries, calibrated thresholds, band lookup."""

from __future__ import annotations

import hashlib
import math

import pytest

from cctv_id.errors import ModelError
from cctv_id.recognize.manifest import Band, band_for, load_manifest, model_entry, thresholds_for

EXPECTED_BANDS = ["lt12", "12-16", "16-24", "24-40", "ge40"]


def test_entries_present_with_provenance():
    models = load_manifest()["models"]
    for name in ("retinaface-mnet025", "centerface", "dlib-resnet-v1"):
        entry = models[name]
        for key in ("file", "sha256", "source", "licence", "input_size", "normalisation", "alignment", "dim"):
            assert key in entry, (name, key)
        assert len(entry["sha256"]) == 64
    assert models["dlib-resnet-v1"]["dim"] == 128


def test_sha256_of_shipped_bytes():
    from retinaface.weights import WEIGHTS

    assert hashlib.sha256(WEIGHTS).hexdigest() == model_entry("retinaface-mnet025")["sha256"]
    from cctv_id.recognize.base import file_sha256
    from cctv_id.recognize.dlib_resnet import default_model_path

    assert file_sha256(default_model_path()) == model_entry("dlib-resnet-v1")["sha256"]


@pytest.mark.parametrize("fmr", [1e-3, 1e-2])
def test_dlib_thresholds_monotone_and_sensible(fmr):
    bands = thresholds_for("dlib-resnet-v1", fmr)
    assert [b.name for b in bands] == EXPECTED_BANDS
    for lo, hi in zip(bands, bands[1:]):
        assert lo.max_px == hi.min_px  # contiguous
    assert bands[0].min_px == 0 and math.isinf(bands[-1].max_px)
    ts = [b.threshold for b in bands]
    assert all(0.5 < t < 1.0 for t in ts)
    # smaller faces look more alike: the impostor tail (hence the threshold) does not fall
    # as faces shrink, and the TAR it buys does not rise
    assert all(a >= b - 0.005 for a, b in zip(ts, ts[1:])), ts
    tars = [b.tar for b in bands]
    assert all(a <= b + 0.02 for a, b in zip(tars, tars[1:])), tars
    rows = [r for r in model_entry("dlib-resnet-v1")["thresholds"] if math.isclose(r["fmr"], fmr)]
    assert all(r["n_impostor"] >= 10_000 for r in rows)
    assert all(r["measured_fmr"] <= fmr for r in rows)


def test_stricter_fmr_means_higher_threshold():
    strict = thresholds_for("dlib-resnet-v1", 1e-3)
    loose = thresholds_for("dlib-resnet-v1", 1e-2)
    for s, lo in zip(strict, loose):
        assert s.threshold >= lo.threshold


def test_band_for():
    bands = thresholds_for("dlib-resnet-v1", 1e-3)
    assert band_for(8.0, bands).name == "lt12"
    assert band_for(11.99, bands).name == "lt12"
    assert band_for(12.0, bands).name == "12-16"
    assert band_for(23.0, bands).name == "16-24"
    assert band_for(24.0, bands).name == "24-40"
    assert band_for(40.0, bands).name == "ge40"
    assert band_for(1000.0, bands).name == "ge40"
    gapped = [Band("a", 10, 20, 0.9), Band("b", 20, 30, 0.8)]
    assert band_for(5, gapped).name == "a" and band_for(35, gapped).name == "b"
    with pytest.raises(ValueError):
        band_for(10, [])


def test_unknown_model_or_fmr():
    with pytest.raises(ModelError):
        thresholds_for("no-such-model", 1e-3)
    with pytest.raises(ModelError):
        thresholds_for("dlib-resnet-v1", 0.3)
    with pytest.raises(ModelError):
        load_manifest("/nonexistent/MANIFEST.yaml")


def test_resolve_and_verify_shipped_files():
    from cctv_id.recognize.manifest import entry_sha256_ok, resolve_model_file

    for name in ("retinaface-mnet025", "centerface", "dlib-resnet-v1"):
        assert entry_sha256_ok(model_entry(name)) is True, name
    assert resolve_model_file(model_entry("dlib-resnet-v1")).is_file()
    assert resolve_model_file(model_entry("centerface")).name == "centerface.onnx"
    with pytest.raises(ModelError):
        resolve_model_file(model_entry("retinaface-mnet025"))
