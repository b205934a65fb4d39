"""The live stream reader against a real RTSP server: stall watchdog and reconnect.

A frozen server (SIGSTOP: the TCP connection stays open, nothing arrives) must be noticed
within the stall/read timeout and retried with backoff; once it thaws (SIGCONT) the reader
reconnects and frames flow again, with frame indices and timestamps running on.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from rtsp import RtspServer, rtsp_available

from cctv_id.config import StreamConfig
from cctv_id.video.live import LiveBuffer, StreamReader


def _wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_stalled_stream_is_detected_and_reconnected(vtest_path):
    reason = rtsp_available()
    if reason:
        pytest.skip(reason)
    cfg = StreamConfig(stall_timeout_s=2.0, read_timeout_s=2.0, open_timeout_s=2.0,
                       backoff_initial_s=0.3, backoff_max_s=1.0, buffer_frames=4)
    with RtspServer({"cam": vtest_path}) as server:
        buffer = LiveBuffer(cfg.buffer_frames)
        reader = StreamReader("cam", server.url("cam"), cfg, buffer)
        reader.start()
        try:
            _wait(lambda: reader.stats.frames >= 20, 30, "first frames")
            before = reader.stats.frames
            os.kill(server.pid, signal.SIGSTOP)
            try:
                t0 = time.monotonic()
                _wait(lambda: reader.stats.failures >= 1, 15, "the stall to be noticed")
                noticed_s = time.monotonic() - t0
                assert not reader.stats.connected
                assert reader.stats.last_error and (
                    "stalled" in reader.stats.last_error or "timeout" in reader.stats.last_error)
                assert noticed_s < 10, f"stall noticed only after {noticed_s:.1f} s"
            finally:
                os.kill(server.pid, signal.SIGCONT)
            _wait(lambda: reader.stats.frames >= before + 20, 40, "frames after the thaw")
            assert reader.stats.connects >= 2 and reader.stats.reconnects >= 1
            frames = []
            while (item := buffer.get(0.5)) is not None and len(frames) < 4:
                frames.append(item[1])
            assert frames and all(b.index > a.index and b.pts_s > a.pts_s
                                  for a, b in zip(frames, frames[1:]))
            assert buffer.dropped > 0  # nobody consumed: the live buffer kept only the newest
        finally:
            reader.stop()
            reader.join(10)
        assert not reader.is_alive()
