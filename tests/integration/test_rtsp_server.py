"""The real RTSP test camera (tests/helpers/rtsp_server.py), read with PyAV as the daemon will.

Needs Debian's GStreamer RTSP server under /usr/bin/python3 (skips with the reason otherwise);
the vtest case also needs ../shared/data. The other cases serve a short clip made here.
"""

from __future__ import annotations

import os
import threading
import time

import av
import numpy as np
import pytest
from rtsp import RtspServer, rtsp_available

_reason = rtsp_available()
if _reason:
    pytest.skip(_reason, allow_module_level=True)

OPTS = {"rtsp_transport": "tcp"}
CLIP_FPS = 10
CLIP_FRAMES = 15  # 1.5 s
BASE, STEP = 20, 14  # frame i of the clip is uniform grey BASE + STEP * i


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_frames(url: str, n: int, deadline_s: float, gray: bool = False):
    """Open url, decode n frames. Returns (open_s, frames); frame = (pts_s|None, wall_s, w, h, v).

    v is the frame's mean luma when gray, else None. wall_s counts from before av.open.
    """
    t0 = time.monotonic()
    out = []
    with av.open(url, options=OPTS, timeout=(5, 5)) as c:
        open_s = time.monotonic() - t0
        stream = c.streams.video[0]
        for frame in c.decode(stream):
            v = float(frame.to_ndarray(format="gray").mean()) if gray else None
            pts = float(frame.pts * frame.time_base) if frame.pts is not None else None
            out.append((pts, time.monotonic() - t0, frame.width, frame.height, v))
            if len(out) >= n or time.monotonic() - t0 > deadline_s:
                break
    return open_s, out


def clip_index(v: float) -> int:
    return round((v - BASE) / STEP) % CLIP_FRAMES


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """1.5 s, 10 fps, 320x240 MPEG-4 AVI; frame i is flat grey BASE + STEP*i (readable back)."""
    path = tmp_path_factory.mktemp("rtsp") / "clip.avi"
    with av.open(str(path), "w") as out:
        st = out.add_stream("mpeg4", rate=CLIP_FPS)
        st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
        st.codec_context.bit_rate = 2_000_000
        for i in range(CLIP_FRAMES):
            img = np.full((240, 320, 3), BASE + STEP * i, np.uint8)
            for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


def test_serves_vtest_live(vtest_path, record_property):
    t_start = time.monotonic()
    with RtspServer({"street": vtest_path}) as srv:
        ready_s = time.monotonic() - t_start
        cpu0, w0 = _cpu_seconds(srv.pid), time.monotonic()
        open_s, frames = read_frames(srv.url("street"), 30, deadline_s=15)
        cpu = (_cpu_seconds(srv.pid) - cpu0) / (time.monotonic() - w0)
        assert srv.running
    first_frame_s = ready_s + frames[0][1]
    record_property("rtsp_ready_s", round(ready_s, 2))
    record_property("rtsp_first_frame_s", round(first_frame_s, 2))
    record_property("rtsp_server_cpu", round(cpu, 3))
    print(f"ready {ready_s:.2f} s, open {open_s:.2f} s, first frame {first_frame_s:.2f} s after start, "
          f"server CPU {cpu:.0%} of a core while streaming")
    assert len(frames) >= 20, f"only {len(frames)} frames in 15 s"
    assert all((w, h) == (768, 576) for _, _, w, h, _ in frames)
    pts = [p for p, *_ in frames if p is not None]
    assert len(pts) >= len(frames) - 1  # FFmpeg leaves the very first frame without a pts
    assert all(b > a for a, b in zip(pts, pts[1:])), pts
    # about 10 fps of stream time, delivered in real time (not faster than the pts advance)
    span = pts[-1] - pts[0]
    assert span == pytest.approx((len(pts) - 1) / 10, abs=0.15)
    assert frames[-1][1] >= span - 0.3


def test_basic_auth(clip):
    with RtspServer({"cam": clip}, user="viewer", password="pa:ss@/w") as srv:
        for url in (srv.url("cam", with_credentials=False), srv.url("cam").replace("pa%3Ass", "nope")):
            with pytest.raises(av.error.HTTPUnauthorizedError, match="401 Unauthorized"):
                av.open(url, options=OPTS, timeout=(5, 5))
        _, frames = read_frames(srv.url("cam"), 5, deadline_s=10)
        assert len(frames) == 5
        assert (frames[0][2], frames[0][3]) == (320, 240)
        with pytest.raises(av.error.HTTPNotFoundError, match="404 Not Found"):
            av.open(srv.url("no-such-mount"), options=OPTS, timeout=(5, 5))


def test_loops_forever_with_monotonic_pts(clip):
    n = 3 * CLIP_FRAMES + 5
    with RtspServer({"loop": clip}) as srv:
        _, frames = read_frames(srv.url("loop"), n, deadline_s=20, gray=True)
    assert len(frames) == n
    pts = [p for p, *_ in frames if p is not None]
    assert len(pts) >= n - 1
    steps = np.diff(pts)
    assert (steps > 0).all(), pts
    assert np.allclose(steps, 1 / CLIP_FPS, atol=0.02), steps  # no gap or jump at the seams
    idx = [clip_index(v) for *_, v in frames]
    # every frame is the one after the previous, round and round the clip: nothing dropped,
    # repeated or frozen at the seam (the mean grey level says which clip frame it is)
    assert all((b - a) % CLIP_FRAMES == 1 for a, b in zip(idx, idx[1:])), idx
    assert idx.count(0) >= 3


def test_shared_between_clients(clip):
    with RtspServer({"cam": clip}) as srv:
        results = {}

        def reader(key):
            results[key] = read_frames(srv.url("cam"), 25, deadline_s=15, gray=True)[1]

        threads = [threading.Thread(target=reader, args=(k,)) for k in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    a, b = results["a"], results["b"]
    assert len(a) == len(b) == 25
    # one live stream: the same pts shows the same picture to both readers
    pa = {p: clip_index(v) for p, _, _, _, v in a if p is not None}
    pb = {p: clip_index(v) for p, _, _, _, v in b if p is not None}
    common = set(pa) & set(pb)
    assert len(common) >= 10
    assert all(pa[p] == pb[p] for p in common)


def test_outage_kill_then_restart(clip):
    srv = RtspServer({"cam": clip}, fps=20)
    try:
        srv.start()
        port = srv.port
        _, frames = read_frames(srv.url("cam"), 5, deadline_s=10)
        assert len(frames) == 5
        # a reader that is connected when the camera dies sees an error or the end of stream
        c = av.open(srv.url("cam"), options=OPTS, timeout=(5, 5))
        next(c.decode(video=0))
        srv.kill()
        assert not srv.running
        t0 = time.monotonic()
        with pytest.raises((av.error.FFmpegError, StopIteration, OSError)):
            for _ in range(100):
                next(c.decode(video=0))
        assert time.monotonic() - t0 < 8
        c.close()
        with pytest.raises(av.error.ConnectionRefusedError):
            av.open(srv.url("cam"), options=OPTS, timeout=(5, 5))
        srv.restart()
        assert srv.running and srv.port == port
        _, frames = read_frames(srv.url("cam"), 10, deadline_s=10)
        assert len(frames) == 10
        pts = [p for p, *_ in frames if p is not None]
        assert np.allclose(np.diff(pts), 1 / 20, atol=0.01)  # the --fps override
    finally:
        srv.stop()
    assert not srv.running


def test_start_failure_reports_stderr(tmp_path):
    bad = tmp_path / "not-a-video.avi"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(RuntimeError, match="before READY") as e:
        RtspServer({"x": bad}).start(timeout=20)
    assert "cannot load" in str(e.value)


def test_url_forms():
    srv = RtspServer({"cam": __file__}, port=8554, user="a b", password="p@ss")
    assert srv.url("cam") == "rtsp://a%20b:p%40ss@127.0.0.1:8554/cam"
    assert srv.url("/cam", with_credentials=False) == "rtsp://127.0.0.1:8554/cam"
    assert not srv.running

