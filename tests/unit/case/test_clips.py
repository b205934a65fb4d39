"""Clip windows, boxes interpolated along a trajectory, and clips rendered from a real
encoded video (PyAV) with the box drawn where the trajectory says."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cctv_id.case.clips import BOX_BGR, ClipJob, box_at, clip_window, pick_codec, render_clips


def test_window_is_first_minus_margin_to_last_plus_margin():
    assert clip_window(5.0, 9.0, 7.0, 2.0, 20.0) == (3.0, 11.0)
    assert clip_window(1.0, 3.0, 2.0, 2.0, 20.0) == (0.0, 5.0)  # never before the start


def test_long_window_is_capped_around_the_best_shot_inside_the_span():
    assert clip_window(0.0, 100.0, 50.0, 2.0, 20.0) == (40.0, 60.0)
    lo, hi = clip_window(10.0, 100.0, 11.0, 2.0, 20.0)  # best shot near the start
    assert (lo, hi) == (8.0, 28.0)
    lo, hi = clip_window(10.0, 100.0, 101.0, 2.0, 20.0)  # near the end
    assert (lo, hi) == (82.0, 102.0)


def test_box_is_exact_at_points_linear_between_and_absent_outside():
    traj = [(10, 0, 0, 10, 10), (20, 100, 50, 120, 80), (21, 100, 50, 120, 80)]
    assert box_at(traj, 9) is None and box_at(traj, 22) is None and box_at([], 5) is None
    assert np.allclose(box_at(traj, 10), [0, 0, 10, 10])
    assert np.allclose(box_at(traj, 15), [50, 25, 65, 45])
    assert np.allclose(box_at(traj, 21), [100, 50, 120, 80])


def _video(path, n=40, fps=10, size=(160, 120)):
    import av

    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(pick_codec(), rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.full((h, w, 3), 90, np.uint8)
            img[:, : 2 * i % w] = 140  # changes per frame
            vf = av.VideoFrame.from_ndarray(img, format="bgr24")
            vf.pts = i
            vf.time_base = Fraction(1, fps)
            for p in stream.encode(vf):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    return path


def _frames(path):
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(c.streams.video[0])]


def _is_box_colour(px):
    b, g, r = (int(v) for v in px)
    return abs(b - BOX_BGR[0]) < 60 and abs(g - BOX_BGR[1]) < 60 and abs(r - BOX_BGR[2]) < 60


def test_rendered_clips_hold_their_window_with_the_face_boxed(tmp_path):
    src = _video(tmp_path / "src.mp4")
    # a face moving right from frame 10 to 30
    traj = [(10, 20, 40, 50, 80), (30, 100, 40, 130, 80)]
    a = ClipJob(1, tmp_path / "out" / "a.mp4", 0.5, 3.45, traj, "hit 1")
    b = ClipJob(2, tmp_path / "out" / "b.mp4", 3.0, 9.0, traj, "hit 2")  # runs past the end
    codec, fps = render_clips(src, [b, a])
    assert fps == pytest.approx(10.0) and codec == pick_codec()
    assert (a.frames, a.first_frame, a.last_frame) == (30, 5, 34)
    assert (b.frames, b.first_frame, b.last_frame) == (10, 30, 39)
    frames = _frames(a.path)
    assert len(frames) == 30
    # clip frame 15 is source frame 20: the box is halfway (x 60..90), drawn 3 px outside
    img = frames[15]
    x1, y1, x2, y2 = 60 - 3, 40 - 3, 90 + 3, 80 + 3
    top = [img[y1, x] for x in range(x1 + 4, x2 - 4)]
    assert np.mean([_is_box_colour(p) for p in top]) > 0.8
    assert np.mean([_is_box_colour(img[y, x1]) for y in range(y1 + 4, y2 - 4)]) > 0.8
    assert not _is_box_colour(img[60, 75])  # inside the box: the picture itself
    # before the track starts (clip frame 0 = source frame 5) no box anywhere
    assert not any(_is_box_colour(p) for p in frames[0][20:110].reshape(-1, 3)[::7])


def test_a_window_after_the_end_makes_no_clip(tmp_path):
    src = _video(tmp_path / "src.mp4", n=10)
    job = ClipJob(1, tmp_path / "late.mp4", 50.0, 60.0, [], "hit 1")
    render_clips(src, [job])
    assert job.frames == 0 and not job.path.exists()
