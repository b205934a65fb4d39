"""The insightface model-pack detector, on a tiny SCRFD-layout ONNX model built here.

The model has insightface's 9-output SCRFD layout (scores, boxes, landmarks for strides
8/16/32, two anchors per cell) and really depends on its input: the stride-8 score map is
sigmoid(20 * mean of the normalised pixels of each 8x8 cell), so a white 8x8 block on a
black image lights exactly one cell; box and landmark offsets are constants. Decoded by
insightface's SCRFD class, the block at cell (cx, cy) must give the box
(8cx - 8, 8cy - 12, 8cx + 8, 8cy + 12) and the landmarks below.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from cctv_id.config import DetectorConfig
from cctv_id.errors import ConfigError, ModelError

onnx = pytest.importorskip("onnx")
pytest.importorskip("insightface")
from onnx import TensorProto, helper  # noqa: E402

BOX_DIST = np.array([1.0, 1.5, 1.0, 1.5], np.float32)  # left, top, right, bottom, in strides
KPS_OFF = np.array([[-0.4, -0.4], [0.4, -0.4], [0.0, 0.2], [-0.3, 0.8], [0.3, 0.8]], np.float32)


def build_scrfd_like(path: Path, *, with_kps: bool = True) -> Path:
    nodes, inits, outputs = [], [], []
    groups = {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        pool = f"pool{stride}"
        nodes.append(helper.make_node("AveragePool", ["input.1"], [pool], kernel_shape=[stride, stride],
                                      strides=[stride, stride]))
        heads = [("score", 1), ("bbox", 4)] + ([("kps", 10)] if with_kps else [])
        for kind, width in heads:
            ch = 2 * width  # two anchors per cell
            w = np.zeros((ch, 3, 1, 1), np.float32)
            if kind == "score":
                b = np.full(ch, -10.0 if stride != 8 else 0.0, np.float32)
                if stride == 8:
                    w[:] = 20.0 / 3.0
            elif kind == "bbox":
                b = np.tile(BOX_DIST, 2)
            else:
                b = np.tile((KPS_OFF / 8.0 * 8.0).reshape(-1), 2)  # offsets in strides
            wn, bn = f"{kind}{stride}_w", f"{kind}{stride}_b"
            inits += [helper.make_tensor(wn, TensorProto.FLOAT, w.shape, w.ravel()),
                      helper.make_tensor(bn, TensorProto.FLOAT, b.shape, b.ravel())]
            conv, nhwc, out = f"{kind}{stride}_conv", f"{kind}{stride}_nhwc", f"{kind}_{stride}"
            nodes.append(helper.make_node("Conv", [pool, wn, bn], [conv]))
            if kind == "score":
                sig = f"{kind}{stride}_sig"
                nodes.append(helper.make_node("Sigmoid", [conv], [sig]))
                conv = sig
            nodes.append(helper.make_node("Transpose", [conv], [nhwc], perm=[0, 2, 3, 1]))
            shape_name = f"shape_{width}"
            if not any(t.name == shape_name for t in inits):
                inits.append(helper.make_tensor(shape_name, TensorProto.INT64, [2], [-1, width]))
            nodes.append(helper.make_node("Reshape", [nhwc, shape_name], [out]))
            groups[kind].append(helper.make_tensor_value_info(out, TensorProto.FLOAT, [f"n{stride}", width]))
    outputs = groups["score"] + groups["bbox"] + groups["kps"]
    graph = helper.make_graph(
        nodes, "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "height", "width"])],
        outputs, initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="cctv-id-test")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def build_not_a_detector(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["data"], ["fc1"], axes=[2, 3], keepdims=0)], "recog",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def scene(cell=(12, 8), size=(256, 192)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    cx, cy = cell
    img[cy * 8 : cy * 8 + 8, cx * 8 : cx * 8 + 8] = 255
    ax, ay = cx * 8.0, cy * 8.0  # SCRFD anchor centres sit on the cell's top-left corner
    box = np.array([ax - 8 * BOX_DIST[0], ay - 8 * BOX_DIST[1], ax + 8 * BOX_DIST[2], ay + 8 * BOX_DIST[3]],
                   np.float32)
    kps = np.array([ax, ay], np.float32) + KPS_OFF * 8
    return img, box, kps


def make_detector(model_path, **kw):
    from cctv_id.detect.backends.insightface_pack import InsightFaceDetector

    return InsightFaceDetector(DetectorConfig(backend="insightface", model_path=str(model_path), threads=1, **kw))


def test_folder_pack_decodes_known_box(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    build_not_a_detector(pack / "w600k_r50.onnx")  # a recogniser beside it, sorted last
    det_file = build_scrfd_like(pack / "det_tiny.onnx")
    assert det_file.stat().st_size < 20_000
    detector = make_detector(pack)
    assert detector.model_file.name == "det_tiny.onnx"
    assert detector.model_sha256 == hashlib.sha256(det_file.read_bytes()).hexdigest()
    img, box, kps = scene()
    out = detector.detect(img, frame_index=5)
    assert out.frame_index == 5
    assert len(out) == 1
    np.testing.assert_allclose(out.boxes[0], box, atol=1e-3)
    np.testing.assert_allclose(out.landmarks[0], kps, atol=1e-3)
    assert out.scores[0] > 0.99
    # another place, another image size (not a multiple of 32: fed at its own scale)
    img2, box2, kps2 = scene(cell=(3, 20), size=(250, 210))
    batch = detector.detect_batch([img2, img], [0, 1])
    np.testing.assert_allclose(batch[0].boxes[0], box2, atol=1e-3)
    np.testing.assert_allclose(batch[0].landmarks[0], kps2, atol=1e-3)
    np.testing.assert_allclose(batch[1].boxes, out.boxes, atol=1e-3)
    assert len(detector.detect(np.zeros((192, 256, 3), np.uint8))) == 0


def test_detector_chosen_by_outputs_and_direct_file(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    build_not_a_detector(pack / "a_recognition.onnx")
    f = build_scrfd_like(pack / "model.onnx")
    assert make_detector(pack).model_file.name == "model.onnx"
    img, box, _ = scene()
    out = make_detector(f).detect(img)
    np.testing.assert_allclose(out.boxes, box[None], atol=1e-3)


def test_through_factory_and_tiling(tmp_path):
    """The registry builds it; the tiled wrapper maps boxes back to frame pixels."""
    from cctv_id.detect import build_detector

    f = build_scrfd_like(tmp_path / "scrfd_tiny.onnx")
    img, box, kps = scene(cell=(20, 14), size=(256, 192))
    det = build_detector(DetectorConfig(backend="insightface", model_path=str(f), upscale=1.0, tile_size=128,
                                        tile_overlap=64, native_pass=False, min_face_px=0))
    out = det.detect(img)
    assert len(out) == 1
    np.testing.assert_allclose(out.boxes[0], box, atol=1e-3)
    np.testing.assert_allclose(out.landmarks[0], kps, atol=1e-3)


def test_model_without_landmarks_gets_estimated_points(tmp_path):
    f = build_scrfd_like(tmp_path / "det_nokps.onnx", with_kps=False)
    img, box, _ = scene()
    out = make_detector(f).detect(img)
    assert out.landmarks.shape == (1, 5, 2)
    lm = out.landmarks[0]
    assert lm[0, 0] < lm[1, 0] and (lm >= box[:2]).all() and (lm <= box[2:]).all()


def test_missing_or_unusable_models(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        make_detector(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="model_path"):
        from cctv_id.detect.backends.insightface_pack import InsightFaceDetector

        InsightFaceDetector(DetectorConfig(backend="insightface"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no .onnx"):
        make_detector(empty)
    recog_only = tmp_path / "recog"
    recog_only.mkdir()
    build_not_a_detector(recog_only / "w600k_r50.onnx")
    with pytest.raises(ModelError, match="no face-detection model"):
        make_detector(recog_only)
    with pytest.raises(ModelError, match="not a face-detection model"):
        make_detector(recog_only / "w600k_r50.onnx")
    with pytest.raises(ConfigError, match="unknown option"):
        make_detector(recog_only, options={"bogus": True})
