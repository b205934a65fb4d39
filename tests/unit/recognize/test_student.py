"""The student backend: weights format, sha256 check, batched inference, routing by face size."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cctv_id.config import RecognizerConfig  # noqa: E402
from cctv_id.distill.recipe import Recipe  # noqa: E402
from cctv_id.distill.trainer import build_student, export_student  # noqa: E402
from cctv_id.errors import ConfigError, ModelError  # noqa: E402
from cctv_id.recognize import student as student_mod  # noqa: E402
from cctv_id.recognize.student import StudentEncoder  # noqa: E402


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    recipe = Recipe.model_validate({"name": "unit", "student": {"input_size": 40}})
    torch.manual_seed(0)
    model = build_student(recipe).eval()
    path = tmp_path_factory.mktemp("w") / "student.pt"
    return export_student(model, recipe, "0" * 64, path)


def cfg(path=None, **kw):
    return RecognizerConfig(backend="student", model_path=str(path) if path else None, small_faces=None, **kw)


def test_loads_a_weights_file_and_embeds_in_batches(weights_file):
    enc = StudentEncoder(cfg(weights_file, batch_size=7))
    assert enc.align_spec.size == 40 and enc.dim == 128
    assert enc.name.startswith("student:")
    chips = np.random.default_rng(0).integers(0, 256, (20, 40, 40, 3), dtype=np.uint8)
    out = enc.embed_chips(chips).vectors
    assert out.shape == (20, 128)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([enc.embed_chips(chips[i:i + 1]).vectors for i in range(3)])
    assert np.allclose(out[:3], one_by_one, atol=1e-4)  # batching does not change results (eval BN)


def test_input_normalisation_travels_with_the_weights(tmp_path, weights_file):
    from cctv_id.recognize.input_norm import equalize_luma, normalise_chips

    recipe = Recipe.model_validate({"name": "unit-eq", "student": {"input_size": 40, "input_norm": "equalize"}})
    torch.manual_seed(0)
    path = export_student(build_student(recipe).eval(), recipe, "0" * 64, tmp_path / "eq.pt")
    plain, equalised = StudentEncoder(cfg(weights_file)), StudentEncoder(cfg(path))
    assert plain.input_norm == "none" and equalised.input_norm == "equalize"
    # a dim, low-contrast chip: equalising spreads its grey levels over the whole range
    chips = np.random.default_rng(1).integers(10, 40, (4, 40, 40, 3), dtype=np.uint8)
    eq = normalise_chips(chips, "equalize")
    assert eq.shape == chips.shape and eq.dtype == np.uint8 and eq.max() > 200
    assert np.array_equal(eq[0], equalize_luma(chips[0])) and normalise_chips(chips, "none") is chips
    half = normalise_chips(chips, "equalize-half").astype(float)
    assert np.abs(half - (eq.astype(float) + chips) / 2).max() <= 0.5
    # same weights, so the equalising backend's output is the plain model's on equalised chips
    same = StudentEncoder(cfg(weights_file))
    same.model.load_state_dict(equalised.model.state_dict())
    assert np.allclose(equalised.embed_chips(chips).vectors, same.embed_chips(eq).vectors, atol=1e-5)
    assert not np.allclose(equalised.embed_chips(chips).vectors, same.embed_chips(chips).vectors, atol=1e-3)
    payload = torch.load(path, weights_only=True)
    payload["input_norm"] = "retinex"
    torch.save(payload, tmp_path / "unknown.pt")
    with pytest.raises(ModelError, match="unknown input normalisation 'retinex'"):
        StudentEncoder(cfg(tmp_path / "unknown.pt"))


def test_bad_weights_give_one_clear_error(tmp_path, weights_file):
    with pytest.raises(ModelError, match="not found"):
        StudentEncoder(cfg(tmp_path / "missing.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="cannot read student weights"):
        StudentEncoder(cfg(junk))
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(ModelError, match="not a cctv-id student"):
        StudentEncoder(cfg(other))
    with pytest.raises(ConfigError, match="unknown student recognizer option"):
        StudentEncoder(cfg(weights_file, options={"speed": 3}))


def test_shipped_weights_are_checked_against_the_manifest(tmp_path, monkeypatch):
    path, expected = student_mod.default_weights()
    enc = StudentEncoder(cfg())
    assert enc.name == student_mod.DEFAULT_STUDENT and enc.model_sha256 == expected
    tampered = tmp_path / "tampered.pt"
    shutil.copy(path, tampered)
    with open(tampered, "ab") as fh:
        fh.write(b"\0")
    monkeypatch.setattr(student_mod, "default_weights", lambda: (tampered, expected))
    with pytest.raises(ModelError, match="do not match the manifest"):
        StudentEncoder(cfg())
    monkeypatch.setattr(student_mod, "default_weights", lambda: (tmp_path / "gone.pt", expected))
    with pytest.raises(ModelError, match="missing"):
        StudentEncoder(cfg())


def test_routing_by_face_size_and_merged_bands():
    from cctv_id.recognize.base import build_small_face_encoder
    from cctv_id.recognize.routed import RoutedEncoder

    enc = build_small_face_encoder(RecognizerConfig())
    assert isinstance(enc, RoutedEncoder)
    assert enc.name == "dlib-resnet-v1"  # the teacher's space: one watchlist for both
    assert enc.below_px == 12.0
    assert enc.encoder_for(11.0) is enc.small and enc.encoder_for(12.0) is enc.large
    bands = enc.threshold_bands(1e-3)
    assert [b.name for b in bands] == ["lt12", "12-16", "16-24", "24-40", "ge40"]
    from cctv_id.recognize.manifest import thresholds_for

    student_bands = {b.name: b.threshold for b in thresholds_for(student_mod.DEFAULT_STUDENT, 1e-3)}
    teacher_bands = {b.name: b.threshold for b in thresholds_for("dlib-resnet-v1", 1e-3)}
    assert bands[0].threshold == student_bands["lt12"] and bands[-1].threshold == teacher_bands["ge40"]
    enc.below_px = 24.0
    assert [b.threshold for b in enc.threshold_bands(1e-3)][:3] == [student_bands[n] for n in ("lt12", "12-16", "16-24")]
    enc.below_px = 20.0
    with pytest.raises(ConfigError, match="band edge"):
        enc.threshold_bands(1e-3)
    plain = build_small_face_encoder(RecognizerConfig(small_faces={"enabled": False}))
    assert not isinstance(plain, RoutedEncoder)
