"""InsightFaceEncoder on a tiny recognition ONNX built here with onnx.helper (no downloads)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from cctv_id.config import RecognizerConfig
from cctv_id.errors import ModelError
from cctv_id.recognize.base import build_encoder

onnx = pytest.importorskip("onnx")
pytest.importorskip("insightface")

DIM = 16


def _tiny_recognizer(path, batch="N"):
    """1x3x112x112 -> AveragePool 28x28 (3x4x4 = 48 features) -> Flatten -> MatMul -> 16-d."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(42)
    w = numpy_helper.from_array(rng.standard_normal((48, DIM)).astype(np.float32), "fc_w")
    nodes = [
        helper.make_node("AveragePool", ["data"], ["pooled"], name="pool", kernel_shape=[28, 28], strides=[28, 28]),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
        helper.make_node("MatMul", ["flat", "fc_w"], ["fc1"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [batch, DIM])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    return _tiny_recognizer(tmp_path_factory.mktemp("pack") / "tiny_rec.onnx")


def _faces(insightface_images):
    img = cv2.imread(str(insightface_images / "t1.jpg"))
    assert img is not None
    from cctv_id.recognize.offline_landmarks import detect_landmarks

    _, _, lms = detect_landmarks(img)
    assert len(lms) >= 3
    return img, lms


def test_embeddings_shape_norm_determinism(onnx_file, insightface_images):
    enc = build_encoder(RecognizerConfig(backend="insightface", model_path=str(onnx_file), batch_size=2))
    assert enc.dim == DIM and enc.align_spec.size == 112 and len(enc.model_sha256) == 64
    assert enc.name == "insightface-tiny_rec"
    img, lms = _faces(insightface_images)
    emb = enc.embed_faces(img, lms)
    assert emb.vectors.shape == (len(lms), DIM) and emb.vectors.dtype == np.float32
    assert emb.model == enc.name
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    again = enc.embed_faces(img, lms)
    np.testing.assert_allclose(again.vectors, emb.vectors, atol=1e-6)
    single = enc.embed_faces(img, lms[:1])
    np.testing.assert_allclose(single.vectors[0], emb.vectors[0], atol=1e-5)
    sims = emb.vectors @ emb.vectors.T
    off = sims[~np.eye(len(lms), dtype=bool)]
    assert off.max() < 0.9999  # different faces give different embeddings
    assert len(enc.embed_chips(np.zeros((0, 112, 112, 3), np.uint8))) == 0


def test_folder_and_v2_manifest_pack(onnx_file, tmp_path, insightface_images):
    folder = tmp_path / "mypack"
    folder.mkdir()
    _tiny_recognizer(folder / "rec.onnx")
    enc = build_encoder(RecognizerConfig(backend="insightface", model_path=str(folder), options={"name": "tiny"}))
    assert enc.name == "tiny" and enc.dim == DIM
    # insightface's V2 manifest: explicit preprocessing and sha256, routed by task
    (folder / "MODEL.LICENSE").write_text("test model, no rights reserved\n")
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "manifest_version": 2,
                "model_id": "tiny-pack",
                "license": "MODEL.LICENSE",
                "tasks": {
                    "recognition": {
                        "file": "rec.onnx",
                        "sha256": enc.model_sha256,
                        "preprocessing": {"mean": 127.5, "std": 127.5},
                        "input_size": [112, 112],
                        "embedding_dimension": DIM,
                    }
                },
            }
        )
    )
    enc2 = build_encoder(RecognizerConfig(backend="insightface", model_path=str(folder)))
    img, lms = _faces(insightface_images)
    np.testing.assert_allclose(enc2.embed_faces(img, lms).vectors, enc.embed_faces(img, lms).vectors, atol=1e-5)


def test_missing_or_bad_model_is_model_error(tmp_path):
    with pytest.raises(ModelError):
        build_encoder(RecognizerConfig(backend="insightface", model_path=str(tmp_path / "nope.onnx")))
    with pytest.raises(ModelError):
        build_encoder(RecognizerConfig(backend="insightface"))
    with pytest.raises(ModelError):
        build_encoder(RecognizerConfig(backend="insightface", model_path=str(tmp_path)))  # empty folder
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(ModelError):
        build_encoder(RecognizerConfig(backend="insightface", model_path=str(bad)))
