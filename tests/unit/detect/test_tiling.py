"""The tiny-face strategy on real footage: CelebA faces shrunk to 10-14 px in a vtest.avi frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cctv_id.config import DetectorConfig
from cctv_id.detect import TiledDetector, build_detector, tile_grid
from cctv_id.detect.boxes import iou_matrix, nms
from cctv_id.types import FaceDetections

# CelebA crops are 250x250, framed like LFW: the face box (dlib's) is 250 / 2.2 px, centred
CELEBA_FACE_PX = 250 / 2.2
# Tiled set-up under test: 2x, 640 px tiles, 96 px overlap. On the 768x576 frame the
# enlarged frame is 1536x1152; inner tile edges lie at frame x = 224, 320, 448, 544 and
# frame y = 256, 320.
TILED = dict(upscale=2.0, tile_size=640, tile_overlap=96, native_pass=True, min_face_px=4.0)
# places (frame x, y of the face centre) on grass and road, away from the three walkers of
# frame 0; the first one straddles the tile edge at x = 320, the second the edge at y = 320
PLACES = [(320, 420), (110, 320), (60, 380), (180, 470), (420, 500), (560, 520), (700, 430),
          (130, 190), (600, 360), (380, 240)]
SIZES = [14, 13, 12, 10, 11, 12, 11, 13, 14, 10]


@pytest.fixture(scope="module")
def street_frame(vtest_path) -> np.ndarray:
    av = pytest.importorskip("av")
    with av.open(str(vtest_path)) as container:
        for frame in container.decode(video=0):
            return frame.to_ndarray(format="bgr24")
    pytest.fail("vtest.avi has no frames")


@pytest.fixture(scope="module")
def celeba_faces(celeba_dir) -> list[np.ndarray]:
    people = sorted(p for p in celeba_dir.iterdir() if p.is_dir())[:40:4]
    faces = []
    for person in people:
        img = cv2.imread(str(sorted(person.glob("*.jpg"))[0]))
        assert img is not None
        faces.append(img)
    if len(faces) < len(PLACES):
        pytest.skip("not enough CelebA identities")
    return faces


def paste_face(frame: np.ndarray, face: np.ndarray, centre, face_px: float) -> np.ndarray:
    """``face`` (a CelebA crop) shrunk so its face is ``face_px`` tall, blended in at ``centre``.

    Returns the expected face box (dlib-style) in frame pixels."""
    scale = face_px / CELEBA_FACE_PX
    size = max(3, int(round(250 * scale)))
    small = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    # feathered ellipse, so no hard square edge
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    c = (size - 1) / 2
    r = np.sqrt(((xx - c) / (0.42 * size)) ** 2 + ((yy - c) / (0.48 * size)) ** 2)
    alpha = np.clip((1.0 - r) / 0.25, 0.0, 1.0)[..., None]
    cx, cy = centre
    x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
    roi = frame[y0 : y0 + size, x0 : x0 + size].astype(np.float32)
    frame[y0 : y0 + size, x0 : x0 + size] = np.clip(alpha * small + (1 - alpha) * roi, 0, 255).astype(np.uint8)
    ox, oy = x0 + size * 0.5 - 0.5 * face_px, y0 + size * 0.5 - 0.5 * face_px
    return np.array([ox, oy, ox + face_px, oy + face_px], np.float32)


@pytest.fixture(scope="module")
def scene(street_frame, celeba_faces):
    frame = street_frame.copy()
    truth = np.stack([paste_face(frame, f, p, s) for f, p, s in zip(celeba_faces, PLACES, SIZES)])
    return frame, truth


def _found(det: FaceDetections, truth: np.ndarray) -> np.ndarray:
    """Per true face: how many detections sit on it (centre within half a face size)."""
    tc = (truth[:, :2] + truth[:, 2:]) / 2
    tsize = truth[:, 3] - truth[:, 1]
    if len(det) == 0:
        return np.zeros(len(truth), int)
    d = np.linalg.norm(tc[:, None, :] - det.centers[None, :, :], axis=2)
    size_ok = (det.heights[None, :] > 0.5 * tsize[:, None]) & (det.heights[None, :] < 2.2 * tsize[:, None])
    return ((d < 0.5 * tsize[:, None]) & size_ok).sum(axis=1)


@pytest.fixture(scope="module")
def native_detector():
    return build_detector(DetectorConfig(upscale=1.0, tile_size=0, native_pass=True, min_face_px=0, threads=2))


@pytest.fixture(scope="module")
def tiled_detector():
    return build_detector(DetectorConfig(threads=2, **TILED))


def test_native_scale_misses_tiny_faces(native_detector, scene):
    frame, truth = scene
    hits = _found(native_detector.detect(frame), truth)
    assert (hits > 0).sum() <= len(truth) // 2, hits


def test_tiled_upscaled_finds_tiny_faces_once(tiled_detector, scene):
    frame, truth = scene
    det = tiled_detector.detect(frame, frame_index=3)
    assert det.frame_index == 3
    hits = _found(det, truth)
    assert (hits > 0).mean() >= 0.8, hits
    assert hits.max() <= 1, hits  # never the same face twice (tile edges, two scales)
    # boxes at the pasted place, in frame pixels
    m = iou_matrix(truth, det.boxes).max(axis=1)
    assert np.median(m[hits > 0]) > 0.3
    # the faces pasted across tile edges are found, once
    assert hits[0] == 1 and hits[1] == 1
    # landmarks of the found faces lie in their boxes
    inside = (det.landmarks >= det.boxes[:, None, :2] - 1) & (det.landmarks <= det.boxes[:, None, 2:] + 1)
    assert inside.all()
    assert tiled_detector.timings.tiles >= 7  # 1 native + 6 tiles


def test_tiles_match_whole_frame(tiled_detector, scene):
    """Cutting the enlarged frame into tiles finds what the whole enlarged frame finds."""
    frame, truth = scene
    whole = build_detector(DetectorConfig(threads=2, **{**TILED, "tile_size": 0}))
    a = _found(whole.detect(frame), truth)
    b = _found(tiled_detector.detect(frame), truth)
    assert abs(int((a > 0).sum()) - int((b > 0).sum())) <= 1


@pytest.mark.parametrize("nms_iou", [0.4, 0.9])
def test_cut_face_merged_when_other_tile_holds_it(street_frame, celeba_faces, nms_iou):
    """A 40 px face centred on the tile edge at frame x = 320 (enlarged x = 640): the left
    tile sees a cut face, the middle tile the whole one; the merge keeps exactly one, even
    when plain IoU suppression is made too lax (0.9) to join them."""
    from cctv_id.detect.backends.retinaface import RetinaFaceDetector

    frame = street_frame.copy()
    truth = paste_face(frame, celeba_faces[4], (320.0, 420.0), 40.0)[None]
    big = cv2.resize(frame, (1536, 1152), interpolation=cv2.INTER_LINEAR)
    base = RetinaFaceDetector(DetectorConfig(threads=2))
    left = base.detect(big[512:1152, 0:640]).scaled(0.5, (0.0, 256.0))
    middle = base.detect(big[512:1152, 448:1088]).scaled(0.5, (224.0, 256.0))
    cut = (np.abs(left.boxes[:, 2] - 320.0) < 4.0) & (np.abs(left.centers[:, 1] - 420.0) < 20.0)
    assert cut.sum() == 1, "the left tile should see the face cut by its right edge"
    assert _found(middle, truth)[0] == 1
    cfg = DetectorConfig(threads=2, upscale=2.0, tile_size=640, tile_overlap=96, native_pass=False,
                         min_face_px=0, nms_iou=nms_iou)
    det = build_detector(cfg).detect(frame)
    near = np.abs(det.centers - (truth[0, :2] + truth[0, 2:]) / 2).max(axis=1) < 40
    assert near.sum() == 1
    assert _found(det, truth)[0] == 1
    assert iou_matrix(truth, det.boxes[near])[0, 0] > 0.5


def test_tile_grid_covers_with_overlap():
    tiles = tile_grid(1536, 1152, 640, 96)
    assert len({(x1 - x0, y1 - y0) for x0, y0, x1, y1 in tiles}) == 1  # equal sizes batch together
    xs = sorted({t[0] for t in tiles})
    ys = sorted({t[1] for t in tiles})
    assert xs[0] == 0 and ys[0] == 0
    assert max(t[2] for t in tiles) == 1536 and max(t[3] for t in tiles) == 1152
    assert all(b - a <= 640 - 96 for a, b in zip(xs, xs[1:]))
    assert tile_grid(300, 200, 640, 96) == [(0, 0, 300, 200)]
    assert tile_grid(300, 200, 0, 96) == [(0, 0, 300, 200)]


def test_batch_of_frames_matches_single(tiled_detector, scene, street_frame):
    frame, _ = scene
    singles = [tiled_detector.detect(frame, 0), tiled_detector.detect(street_frame, 1)]
    batch = tiled_detector.detect_batch([frame, street_frame], [0, 1])
    for s, b in zip(singles, batch):
        assert s.frame_index == b.frame_index
        assert len(s) == len(b)
        np.testing.assert_allclose(s.boxes, b.boxes, atol=0.05)


def test_size_filter(scene):
    frame, truth = scene
    det = build_detector(DetectorConfig(threads=2, **{**TILED, "min_face_px": 12.0, "max_face_px": 30.0})).detect(frame)
    assert len(det) > 0
    assert (det.heights >= 12.0).all() and (det.heights <= 30.0).all()


def test_nms_helper():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    keep = nms(boxes, np.array([0.5, 0.9, 0.7], np.float32), 0.4)
    assert keep.tolist() == [1, 2]


def test_name_and_provenance(tiled_detector):
    assert isinstance(tiled_detector, TiledDetector)
    assert "x2" in tiled_detector.name and "tile640" in tiled_detector.name
    assert len(tiled_detector.model_sha256) == 64
