"""Live-stream helpers: reconnect backoff, the drop-oldest buffer, readable stream errors."""

from __future__ import annotations

import random
import threading

import numpy as np

from cctv_id.types import Frame
from cctv_id.video.live import Backoff, LiveBuffer, StreamStalled, explain_stream_error


def _frame(i: int) -> Frame:
    return Frame(index=i, pts_s=i / 10, image=np.zeros((4, 4, 3), np.uint8))


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter_and_resets():
    b = Backoff(0.5, 4.0, jitter=0.0)
    assert [b.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    b.reset()
    assert b.next_delay() == 0.5
    j = Backoff(1.0, 8.0, jitter=0.3, rng=random.Random(3))
    delays = [j.next_delay() for _ in range(200)]
    bases = [min(8.0, 2.0 ** k) for k in range(200)]
    assert all(0.7 * base <= d <= 1.3 * base for d, base in zip(delays, bases))
    assert len({round(d, 6) for d in delays[10:]}) > 100  # really random, not a fixed cap


def test_live_buffer_drops_the_oldest_and_counts():
    buf = LiveBuffer(capacity=2)
    assert not buf.put(_frame(0))
    assert not buf.put(_frame(1))
    assert buf.put(_frame(2))  # frame 0 goes
    assert (buf.dropped, buf.received, len(buf)) == (1, 3, 2)
    assert [buf.get(0)[1].index for _ in range(2)] == [1, 2]
    assert buf.get(0.01) is None


def test_live_buffer_wakes_a_waiting_reader_and_closes():
    buf = LiveBuffer(capacity=1)
    got = []
    t = threading.Thread(target=lambda: got.append(buf.get(5.0)))
    t.start()
    buf.put(_frame(7))
    t.join(5)
    assert got and got[0][1].index == 7
    buf.close()
    assert buf.get(5.0) is None  # closed and empty: returns at once


def test_stream_errors_are_one_readable_line_without_credentials():
    assert "authentication failed" in explain_stream_error(
        OSError("[Errno 1094995529] Server returned 401 Unauthorized (authorization failed): "
                "'rtsp://admin:pw@127.0.0.1:8554/cam'"))
    assert "not found" in explain_stream_error(OSError("Server returned 404 Not Found"))
    assert "connection refused" in explain_stream_error(
        ConnectionRefusedError(111, "Connection refused"))
    assert "stalled" in explain_stream_error(StreamStalled("stalled: no frame for 5.2 s"))
    # the URL's digits are no status code: a refused connection to port 40323 is not a 403
    for port in (40123, 40323, 14041):
        assert "connection refused" in explain_stream_error(
            ConnectionRefusedError(111, f"Connection refused: 'rtsp://u:pw@127.0.0.1:{port}/cam'"))
    text = explain_stream_error(RuntimeError("odd failure at rtsp://u:secret@h/x"))
    assert "secret" not in text and "***" in text
