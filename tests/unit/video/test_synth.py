"""Composite clips: real CelebA faces pasted into real street frames, with known ground truth."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cctv_id.video.source import open_video
from cctv_id.video.synth import (
    FaceActor,
    GroundTruth,
    available_video_codec,
    compose_video,
    default_face_box,
    generated_background,
    render_actor,
)
from cctv_id.video.demo_scene import demo_assets, make_demo_clip

pytest.importorskip("av")


def _two_people(celeba_dir):
    people = sorted(p for p in celeba_dir.iterdir() if p.is_dir())[:2]
    photos = [cv2.imread(str(sorted(p.glob("*.jpg"))[0])) for p in people]
    assert all(ph is not None and ph.shape == (250, 250, 3) for ph in photos)
    return [p.name for p in people], photos


@pytest.fixture(scope="module")
def composite(celeba_dir, vtest_path, tmp_path_factory):
    names, photos = _two_people(celeba_dir)
    actors = [
        FaceActor(names[0], photos[0], 0.0, 3.0, (120, 220), (620, 260), 40, 20, wobble_px=3),
        FaceActor(names[1], photos[1], 0.5, 2.5, (700, 320), (300, 300), 12, 24),
    ]
    out = tmp_path_factory.mktemp("synth") / "clip.mp4"
    gt = compose_video(out, vtest_path, actors, duration_s=3.0, seed=7)
    return out, gt, names


def test_composite_reopens_with_expected_frames(composite):
    out, gt, names = composite
    assert gt.codec in ("libx264", "mpeg4") and gt.codec == available_video_codec()
    assert (gt.fps, gt.width, gt.height, gt.n_frames) == (10.0, 768, 576, 30)
    with open_video(out) as src:
        assert src.fps == pytest.approx(10.0)
        assert (src.width, src.height) == (768, 576)
        frames = list(src)
    assert len(frames) == 30
    assert gt.identities == sorted(names)
    a0, a1 = gt.actors
    assert (a0.first_frame, a0.last_frame) == (0, 29)
    assert (a1.first_frame, a1.last_frame) == (5, 24)
    assert [f.name for f in gt.faces_at(2)] == [names[0]]
    assert len(gt.faces_at(10)) == 2


def test_ground_truth_boxes_and_pixels(composite, vtest_path):
    out, gt, names = composite
    with open_video(out) as comp, open_video(vtest_path) as bg:
        pairs = list(zip(comp, bg))
    for (cf, bf) in pairs:
        for face in gt.faces_at(cf.index):
            x1, y1, x2, y2 = face.box
            assert 0 <= x1 < x2 <= gt.width and 0 <= y1 < y2 <= gt.height
            assert face.visible == 1.0
            xi1, yi1, xi2, yi2 = int(x1), int(y1), int(np.ceil(x2)), int(np.ceil(y2))
            diff = np.abs(
                cf.image[yi1:yi2, xi1:xi2].astype(np.int16) - bf.image[yi1:yi2, xi1:xi2]
            ).mean()
            assert diff > 12, (cf.index, face, diff)  # a face was drawn there
    # face size follows the actor's schedule (linear 40 -> 20 px over 3 s)
    f0 = gt.faces_at(0)[0]
    assert f0.face_px == pytest.approx(40, abs=1.0)
    f15 = [f for f in gt.faces_at(15) if f.name == names[0]][0]
    assert f15.face_px == pytest.approx(30, abs=1.0)
    # away from any face the composite is the (re-encoded) background
    cf, bf = pairs[0]
    far = np.abs(cf.image[450:570, 10:200].astype(np.int16) - bf.image[450:570, 10:200]).mean()
    assert far < 6


def test_ground_truth_json_round_trip(composite, tmp_path):
    _, gt, _ = composite
    again = GroundTruth.from_json(gt.to_json())
    assert again == gt
    p = tmp_path / "gt.json"
    gt.to_json(p)
    assert GroundTruth.from_json(p) == gt


def test_render_actor_geometry():
    photo = np.full((250, 250, 3), 200, np.uint8)
    assert default_face_box(photo.shape) == pytest.approx((68.18, 68.18, 181.82, 181.82), abs=0.01)
    actor = FaceActor("x", photo, 0, 1, (0, 0), (0, 0), 20, 20)
    frame = np.zeros((100, 100, 3), np.uint8)
    gt = render_actor(frame, actor, 50, 40, 20)
    x1, y1, x2, y2 = gt.box
    assert (x1 + x2) / 2 == pytest.approx(50, abs=0.6)
    assert (y1 + y2) / 2 == pytest.approx(40, abs=0.6)
    assert gt.face_px == pytest.approx(20, abs=0.2)
    assert frame[40, 50].min() == 200  # opaque at the face centre
    assert frame[40, 50 + 17].max() < 200  # soft edge (context 1.7 -> radius 17 px)
    assert frame[5, 5].max() == 0  # untouched outside the patch
    # partly outside the frame: clipped box, visible fraction recorded
    gt2 = render_actor(np.zeros((100, 100, 3), np.uint8), actor, 2, 50, 20)
    assert gt2.box[0] == 0 and 0.5 < gt2.visible < 0.7


def test_generated_background_is_deterministic():
    a = generated_background((320, 180), seed=3)
    b = generated_background((320, 180), seed=3)
    assert a.shape == (180, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, generated_background((320, 180), seed=4))


def test_demo_assets_and_clip(insightface_images, tmp_path):
    pytest.importorskip("retinaface")
    assets = demo_assets(seed=0, background_size=(640, 360))
    assert len(assets.people) == 6
    assert [p.name for p in assets.people] == [f"person{i}" for i in range(1, 7)]
    for p in assets.people:
        assert p.enrol_image.shape == (250, 250, 3) and p.probe_image.shape == (250, 250, 3)
        assert np.abs(p.enrol_image.astype(int) - p.probe_image).mean() > 10
    again = demo_assets(seed=0, background_size=(640, 360))
    for a, b in zip(assets.people, again.people):
        assert np.array_equal(a.probe_image, b.probe_image)
    # a caller's detector is used when given (here: boxes of the first two people only)
    boxes = np.array([[55, 256, 165, 398], [270, 149, 366, 268]], np.float32)
    two = demo_assets(lambda img: boxes, background_size=(320, 180))
    assert len(two.people) == 2
    gt = make_demo_clip(tmp_path / "demo.mp4", assets, seconds=3.0, people=["person1", "person2"])
    assert gt.n_frames == 30 and set(gt.identities) == {"person1", "person2"}
    assert sum(len(v) for v in gt.frames.values()) > 20
    with open_video(tmp_path / "demo.mp4") as src:
        assert len(list(src)) == 30
