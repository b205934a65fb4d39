"""Motion-gated detection on fixed cameras: the background model, ROI planning, and the gated
detector against full detection on a real street clip with pasted CelebA faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cctv_id.config import DetectorConfig, MotionConfig, TrackerConfig
from cctv_id.detect import build_detector
from cctv_id.detect.gated import MIN_ROI, ROI_ROUND, GatedDetector, plan_rois
from cctv_id.detect.motion import MotionMap, merge_boxes
from cctv_id.types import Frame
from cctv_id.video.synth import FaceActor, generated_background, render_actor

FPS = 10.0


def noisy(still: np.ndarray, rng: np.random.Generator, sigma: float = 2.0) -> np.ndarray:
    return np.clip(still.astype(np.float32) + rng.normal(0, sigma, still.shape), 0, 255).astype(np.uint8)


def contains(box, point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.fixture(scope="module")
def detector():
    return build_detector(DetectorConfig())


@pytest.fixture(scope="module")
def face_photo(celeba_dir) -> np.ndarray:
    img = cv2.imread(str(celeba_dir / "7201" / "7201_0001.jpg"))
    if img is None:
        pytest.skip("CelebA photo 7201_0001.jpg is missing")
    return img


# ------------------------------------------------------------------ MotionMap


def test_motion_map_static_scene_is_quiet_and_a_moving_patch_is_found(face_photo):
    rng = np.random.default_rng(1)
    still = generated_background((960, 540), seed=3)
    m = MotionMap(MotionConfig())
    first = m.update(noisy(still, rng))
    np.testing.assert_array_equal(first, [[0, 0, 960, 540]])  # nothing known yet: all of it
    for _ in range(15):
        assert len(m.update(noisy(still, rng))) == 0  # sensor noise is not motion

    actor = FaceActor("p", face_photo, 0.0, 10.0, (0, 0), (0, 0), 24, 24)
    for k in range(10):
        frame = noisy(still, rng)
        centre = (200 + 25 * k, 300 + 5 * k)
        render_actor(frame, actor, centre[0], centre[1], 24)
        boxes = m.update(frame)
        assert len(boxes) >= 1
        assert any(contains(b, centre) for b in boxes), (k, centre, boxes)
        # only around the patch: a small part of the frame
        area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).sum()
        assert area < 0.05 * 960 * 540
    # the face leaves: the region fades out again
    for _ in range(20):
        last = m.update(noisy(still, rng))
    assert len(last) == 0


def test_examined_places_are_not_reported_again_until_they_change(face_photo):
    """The ghost a passing patch leaves in the running background is motion for many frames;
    once searched (marked examined) it is not reported again, while a real change is."""
    rng = np.random.default_rng(2)
    still = generated_background((960, 540), seed=5)
    m = MotionMap(MotionConfig())
    m.update(noisy(still, rng))
    m.mark_examined([(0, 0, 960, 540)])  # the first full look
    actor = FaceActor("p", face_photo, 0.0, 10.0, (0, 0), (0, 0), 30, 30)
    for k in range(80):  # a face stands long enough to sink into the background, searched
        frame = noisy(still, rng)
        render_actor(frame, actor, 300, 300, 30)
        boxes = m.update(frame)
        assert len(boxes) or k > 0
        m.mark_examined([(200, 200, 400, 400)])
    # it leaves: its place is motion against the background (a ghost) and differs from what
    # was searched there: reported once
    boxes = m.update(noisy(still, rng))
    assert any(contains(b, (300, 300)) for b in boxes)
    m.mark_examined([(0, 0, 960, 540)])
    ghost_frames = 0
    for _ in range(5):
        boxes = m.update(noisy(still, rng))
        ghost_frames += bool(cv2.countNonZero(m.mask))  # the background still has the ghost
        assert len(boxes) == 0  # but it equals what was searched: nothing to search
        assert len(m.regions(unexamined=True)) == 0
    assert ghost_frames == 5, "no ghost in the background model: the test tests nothing"
    # a real change is reported, by update and as an unexamined change; excluding the
    # rectangle that holds it (searched another way) leaves nothing
    frame = noisy(still, rng)
    render_actor(frame, actor, 700, 200, 30)
    boxes = m.update(frame)
    assert any(contains(b, (700, 200)) for b in boxes)
    assert any(contains(b, (700, 200)) for b in m.regions(unexamined=True))
    assert len(m.regions(exclude=[(600, 100, 800, 300)])) == 0


def test_motion_map_restarts_on_a_new_frame_size():
    rng = np.random.default_rng(0)
    m = MotionMap()
    m.update(noisy(generated_background((320, 240)), rng))
    out = m.update(noisy(generated_background((640, 360)), rng))
    np.testing.assert_array_equal(out, [[0, 0, 640, 360]])


def test_merge_boxes_joins_overlaps_but_not_wasteful_diagonals():
    a, b = [0, 0, 10, 10], [5, 0, 20, 10]  # overlap, union is their bounding box
    np.testing.assert_allclose(merge_boxes([a, b]), [[0, 0, 20, 10]])
    c, d = [0, 0, 100, 100], [90, 90, 190, 190]  # overlap on a corner: bounding box wastes half
    assert len(merge_boxes([c, d])) == 2
    assert len(merge_boxes([c, d], max_waste=None)) == 1
    assert len(merge_boxes([[0, 0, 5, 5], [50, 50, 60, 60]])) == 2


def test_plan_rois_rounds_pads_and_stays_inside():
    cfg = MotionConfig()
    assert plan_rois((640, 360), np.zeros((0, 4)), np.zeros((0, 4)), cfg) == []
    hint = np.array([[600, 10, 612, 22]], np.float32)  # a 12 px face near the top-right corner
    rois = plan_rois((640, 360), np.zeros((0, 4)), hint, cfg)
    assert len(rois) == 1
    x0, y0, x1, y1 = rois[0]
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 360
    # on the anchor-aligned grid (the frame edge excepted)
    assert x0 % ROI_ROUND == 0 and y0 % ROI_ROUND == 0
    assert x1 % ROI_ROUND == 0 or x1 == 640
    assert y1 % ROI_ROUND == 0 or y1 == 360
    assert x1 - x0 >= MIN_ROI and y1 - y0 >= MIN_ROI
    grow = cfg.track_margin_face_sizes * 12 + max(cfg.pad_px, cfg.pad_face_sizes * 12)
    assert x0 <= 600 - grow and y1 >= 22 + grow  # clipped at the frame on the other sides
    # overlapping ROIs come out as non-overlapping crops
    two = plan_rois((640, 360), np.array([[100, 100, 160, 160], [150, 100, 210, 160]]),
                    np.zeros((0, 4)), cfg)
    assert len(two) == 1


# ------------------------------------------------------------------ GatedDetector


@pytest.fixture(scope="module")
def still_face_frames(face_photo):
    """4.1 s of a static generated scene with one face that never moves (no motion at all)."""
    rng = np.random.default_rng(5)
    still = generated_background((640, 360), seed=7)
    actor = FaceActor("still", face_photo, 0.0, 10.0, (0, 0), (0, 0), 20, 20)
    truth = None
    frames = []
    for _ in range(41):
        img = noisy(still, rng)
        truth = render_actor(img, actor, 420.0, 250.0, 20.0)
        frames.append(img)
    return frames, truth


def _run(gated: GatedDetector, frames, use_hints: bool):
    found, prev = [], np.zeros((0, 4), np.float32)
    for i, img in enumerate(frames):
        det = gated.detect_frame(img, i, i / FPS, hints=prev if use_hints else ())
        prev = det.boxes
        found.append(det)
    return found


def test_still_face_kept_by_hints_and_not_searched_again_while_nothing_changes(
        detector, still_face_frames):
    frames, truth = still_face_frames
    centre = ((truth.box[0] + truth.box[2]) / 2, (truth.box[1] + truth.box[3]) / 2)
    cfg = DetectorConfig()
    gated = GatedDetector(detector, cfg)
    assert gated.name == detector.name and gated.model_sha256 == detector.model_sha256
    dets = _run(gated, frames, use_hints=True)
    hit = [any(contains(b, centre) for b in d.boxes) for d in dets]
    assert all(hit), hit
    st = gated.stats
    # one full pass (t = 0); then only the hint's crop is searched; the refreshes at 2 s and
    # 4 s add nothing: nothing changed since the full pass looked
    assert st["full_passes"] == 1 and st["roi_passes"] == 40 and st["empty_frames"] == 0
    assert st["refreshes"] == 2
    assert st["native_crops"] == 0  # a 20 px face keeps the enlarged pass
    assert st["mean_roi_area_fraction"] < 0.2  # one ~192 px crop of 640x360

    # without hints nothing moves: no model call after the first full pass, also not at the
    # refreshes (the picture equals what that pass examined)
    bare = GatedDetector(detector, cfg)
    dets = _run(bare, frames, use_hints=False)
    hit = [any(contains(b, centre) for b in d.boxes) for d in dets]
    assert [i for i, h in enumerate(hit) if h] == [0]
    assert bare.stats["empty_frames"] == 40 and bare.stats["refreshes"] == 2

    # given Frames, motion reads their luma and a frame with nothing to search is never
    # converted to BGR
    lazy = GatedDetector(detector, cfg)
    converted = []
    for i, img in enumerate(frames):
        frame = Frame(i, i / FPS, convert=lambda img=img: img,
                      luma=cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        det = lazy.detect_frame(frame, i, i / FPS)
        converted.append(frame.converted)
        if i == 0:
            assert any(contains(b, centre) for b in det.boxes)
    assert converted == [True] + [False] * 40
    assert lazy.stats["empty_frames"] == 40

    # the complete pass is the safety net, at full_pass_every_s
    every2 = GatedDetector(detector, DetectorConfig(motion=MotionConfig(full_pass_every_s=2.0)))
    dets = _run(every2, frames, use_hints=False)
    hit = [any(contains(b, centre) for b in d.boxes) for d in dets]
    assert [i for i, h in enumerate(hit) if h] == [0, 20, 40]
    assert every2.stats["full_passes"] == 3


def test_a_face_fading_in_too_slowly_for_motion_is_found_by_a_refresh(detector, face_photo):
    """A face that appears over 20 s never differs enough from the running background to
    be motion; the refresh compares with what the last search saw and finds it long before
    the 30 s full pass."""
    rng = np.random.default_rng(11)
    still = generated_background((640, 360), seed=9)
    actor = FaceActor("fade", face_photo, 0.0, 60.0, (0, 0), (0, 0), 22, 22)
    face = still.copy()
    truth = render_actor(face, actor, 300.0, 180.0, 22.0)
    centre = ((truth.box[0] + truth.box[2]) / 2, (truth.box[1] + truth.box[3]) / 2)
    gated = GatedDetector(detector, DetectorConfig())
    first_seen, moving_frames, refresh_frames = None, 0, []
    for i in range(int(25 * FPS)):
        a = min(1.0, i / (20 * FPS))
        img = noisy(((1 - a) * still + a * face).astype(np.uint8), rng)
        det = gated.detect_frame(img, i, i / FPS)  # no hints: only motion and refreshes
        if gated.last["refresh"] and gated.last["rois"]:
            refresh_frames.append(i)
        moving_frames += gated.last["mode"] == "roi" and not gated.last["refresh"]
        if first_seen is None and any(contains(b, centre) for b in det.boxes):
            first_seen = i
    st = gated.stats
    assert st["full_passes"] == 1  # only t = 0
    assert moving_frames == 0, "the fade was seen as motion: the test does not test refreshes"
    assert refresh_frames, "no refresh ever searched the fading face"
    assert first_seen is not None and first_seen in refresh_frames, (first_seen, refresh_frames)
    assert first_seen < 25 * FPS
    assert st["mean_roi_area_fraction"] < 0.2  # a crop around the face, not the frame


def test_large_tracked_faces_are_followed_by_the_native_pass_alone(detector, face_photo):
    rng = np.random.default_rng(3)
    still = generated_background((960, 540), seed=4)
    actor = FaceActor("big", face_photo, 0.0, 10.0, (0, 0), (0, 0), 40, 40)

    def run(native_track_px, face_px=40.0):
        tiles0 = detector.timings.tiles
        gated = GatedDetector(detector, DetectorConfig(
            motion=MotionConfig(native_track_px=native_track_px)))
        prev, found = np.zeros((0, 4), np.float32), 0
        for i in range(30):
            img = noisy(still, rng)
            t = render_actor(img, actor, 200.0 + 12 * i, 300.0, face_px)
            det = gated.detect_frame(img, i, i / FPS, hints=prev)
            prev = det.boxes
            c = ((t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2)
            found += any(contains(b, c) for b in det.boxes)
        return gated, found, detector.timings.tiles - tiles0

    native, found, native_tiles = run(24.0)
    assert found == 30
    assert native.stats["native_crops"] >= 25  # the moving face is motion inside its crop
    assert native.stats["crops"] - native.stats["native_crops"] <= 3
    both, found_both, both_tiles = run(0.0)
    assert found_both == 30 and both.stats["native_crops"] == 0
    assert both.stats["scaled_crops"] == 0
    # the native pass alone is the cheaper search: half the model inputs
    assert native_tiles < 0.6 * both_tiles
    # a face of 24 px (a detector box of ~30) keeps the full enlargement
    mid, found_mid, _ = run(40.0, face_px=24.0)
    assert found_mid == 30
    assert mid.stats["scaled_crops"] == 0 and mid.stats["native_crops"] == 0


def test_motion_disabled_means_a_full_pass_every_frame(detector, still_face_frames):
    frames, _ = still_face_frames
    cfg = DetectorConfig(motion=MotionConfig(enabled=False))
    gated = GatedDetector(detector, cfg)
    full = [detector.detect(img, i) for i, img in enumerate(frames[:4])]
    dets = _run(gated, frames[:4], use_hints=True)
    assert gated.stats["full_passes"] == 4 and gated.stats["roi_passes"] == 0
    for a, b in zip(full, dets):
        np.testing.assert_allclose(a.boxes, b.boxes)


def test_camera_override_switches_motion_off():
    from cctv_id.config import build_config, camera_detector_config

    cfg = build_config(overrides={"cameras": {"ptz": {"url": "rtsp://cam/ptz",
                                                      "detector": {"motion": {"enabled": False}}}}})
    assert cfg.detector.motion.enabled
    assert not camera_detector_config(cfg, "ptz").motion.enabled


@pytest.fixture(scope="module")
def street(tmp_path_factory, celeba_dir, vtest_path):
    import street_scenario

    from cctv_id.video.source import open_video

    sc = street_scenario.build(tmp_path_factory.mktemp("street"), celeba_dir, vtest_path, seconds=6.0)
    with open_video(sc.video) as src:
        frames = list(src)
    return sc, frames


@pytest.mark.parametrize("given", ["image", "frame"])
def test_gated_recall_matches_full_detection_on_the_street_clip(detector, street, given):
    """Also when given the decoded Frames (motion then works on their luma plane)."""
    import street_scenario

    sc, frames = street
    cfg = DetectorConfig()
    full = {f.index: detector.detect(f.image, f.index) for f in frames}
    gated = GatedDetector(detector, cfg)
    out, prev = {}, np.zeros((0, 4), np.float32)
    for f in frames:  # tracker hints simulated by the previous frame's detections
        assert f.luma is not None
        out[f.index] = gated.detect_frame(f.image if given == "image" else f, f.index,
                                          f.pts_s, hints=prev)
        prev = out[f.index].boxes
    r_full = street_scenario.detection_recall(sc.truth, full)
    r_gated = street_scenario.detection_recall(sc.truth, out)
    st = gated.stats
    print(f"\nrecall full  {r_full}\nrecall gated {r_gated}\nstats {st}")
    for band, (found, total) in r_full.items():
        if total == 0:
            continue
        g_found, g_total = r_gated[band]
        assert g_total == total
        assert g_found / total >= found / total - 0.05, (band, r_full, r_gated)
    assert st["frames"] == len(frames)
    assert st["full_passes"] < len(frames)
    assert st["roi_passes"] > 0


def _tracked_run(detector, frames, every: int):
    """Gated detection fed by a real tracker's hints, as the archive job runs it."""
    from cctv_id.track.tracker import FaceTracker

    gated = GatedDetector(detector, DetectorConfig(motion=MotionConfig(track_search_every=every)))
    tracker = FaceTracker(TrackerConfig(), FPS)
    found, rested, tracks = {}, {}, []
    for f in frames:
        due, resting = tracker.search_hints(f.pts_s, gated.track_search_every)
        found[f.index] = gated.detect_frame(f, f.index, f.pts_s, due, resting)
        rested[f.index] = gated.last["rested"]
        tracks += tracker.update(f, found[f.index])
    return gated, found, rested, tracks + tracker.flush()


def test_resting_tracks_wait_for_their_round_without_losing_faces(detector, street):
    """With ``track_search_every`` 2 a confirmed, predictable track's crop (and the motion
    inside it) is searched on every 2nd round: less to search, the same recall on the
    rounds that searched each face, the same people tracked."""
    import street_scenario

    sc, frames = street
    every, found_all, rested_all, tracks_all = _tracked_run(detector, frames, 1)
    rest, found, rested, tracks = _tracked_run(detector, frames, 2)
    assert every.stats["rested_tracks"] == 0 and not any(rested_all.values())
    assert rest.stats["rested_tracks"] > 20
    # less searched: the area of the crops (the busy street keeps other motion searched)
    assert (rest.stats["roi_area_fraction_sum"]
            < 0.8 * every.stats["roi_area_fraction_sum"]), (rest.stats, every.stats)
    r_all = street_scenario.detection_recall(sc.truth, found_all)
    r_rest = street_scenario.detection_recall(sc.truth, found, unsearched=rested)
    print(f"\nrecall every round {r_all}\nrecall on searched rounds {r_rest}")
    for band, (hit, total) in r_all.items():
        if total:
            assert r_rest[band][1] > 0.3 * total  # most faces were searched on some rounds
            assert r_rest[band][0] / r_rest[band][1] >= hit / total - 0.05, (band, r_all, r_rest)

    def long_tracks(ts):
        return sorted(round(float(t.best[0].box[1])) // 40 for t in ts if t.n_detections >= 5)

    # the same faces become tracks (compared by where their best shot lies, coarsely)
    assert abs(len(long_tracks(tracks)) - len(long_tracks(tracks_all))) <= 1


def test_gating_state_from_a_checkpoint_continues_the_stream_exactly(detector, street):
    """A detector restored from a checkpoint's state (as a resumed run gets it) searches
    the same places and finds the same faces as the one that never stopped."""
    from cctv_id.track.state import dump_tracker, load_checkpoint
    from cctv_id.track.tracker import FaceTracker

    _, frames = street
    frames = frames[:36]
    whole = GatedDetector(detector, DetectorConfig())
    first = GatedDetector(detector, DetectorConfig())
    prev = np.zeros((0, 4), np.float32)
    for f in frames[:18]:
        prev = whole.detect_frame(f, f.index, f.pts_s, hints=prev).boxes
        first.detect_frame(f, f.index, f.pts_s, hints=prev)
    blob = dump_tracker(FaceTracker(TrackerConfig(), FPS), first.state())
    resumed = GatedDetector(detector, DetectorConfig())
    resumed.restore(load_checkpoint(blob, TrackerConfig(), FPS)[1])
    for f in frames[18:]:
        a = whole.detect_frame(f, f.index, f.pts_s, hints=prev)
        b = resumed.detect_frame(f, f.index, f.pts_s, hints=prev)
        assert whole.last == resumed.last
        np.testing.assert_array_equal(a.boxes, b.boxes)
        prev = a.boxes
    assert resumed.stats["full_passes"] == 0  # no fresh start: the stream just went on
