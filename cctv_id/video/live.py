"""Live camera streams: a PyAV RTSP reader thread per camera and its drop-oldest buffer.

Owns connecting to a stream (TCP transport, open and read timeouts), decoding it into
``Frame`` records, reconnecting with exponential backoff and jitter after any failure, the
stall watchdog (no decoded frame for ``stall_timeout_s`` -> reconnect) and the live buffer
that keeps only the newest frames (``LiveBuffer``: a live camera must stay current, so when
the pipeline falls behind the oldest frame is dropped and counted; files never drop).

Time: frame indices and ``pts_s`` run on across reconnects (one time line per reader, in
seconds since its first frame), so a tracker sees an outage as a gap; ``wall_time`` is the
UTC clock at the first frame of a connection plus the stream's own timestamps since then.
Credentials in the URL never reach a log line or an error message (``redact_url``).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..redact import redact_url
from ..types import Frame

log = logging.getLogger(__name__)


class Backoff:
    """Delays for reconnecting: ``initial`` doubling up to ``maximum``, +- ``jitter``."""

    def __init__(self, initial: float, maximum: float, jitter: float = 0.3,
                 rng: random.Random | None = None):
        self.initial, self.maximum, self.jitter = float(initial), float(maximum), float(jitter)
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * (2 ** self.attempt))
        self.attempt += 1
        spread = base * self.jitter
        return max(0.0, base + self._rng.uniform(-spread, spread))

    def reset(self) -> None:
        self.attempt = 0


class LiveBuffer:
    """A bounded frame buffer that drops the OLDEST frame when full (thread-safe)."""

    def __init__(self, capacity: int = 2):
        self._frames: deque = deque()
        self.capacity = max(1, int(capacity))
        self._cond = threading.Condition()
        self.dropped = 0
        self.received = 0
        self._closed = False

    def put(self, frame: Frame) -> bool:
        """Add ``frame``; returns True when an older frame had to be dropped for it."""
        with self._cond:
            dropped = False
            if len(self._frames) >= self.capacity:
                self._frames.popleft()
                self.dropped += 1
                dropped = True
            self._frames.append((time.monotonic(), frame))
            self.received += 1
            self._cond.notify()
            return dropped

    def get(self, timeout: float | None = None) -> tuple[float, Frame] | None:
        """The oldest buffered (arrival monotonic time, frame), or None after ``timeout`` or
        once closed and empty."""
        with self._cond:
            if not self._frames and not self._closed:
                self._cond.wait(timeout)
            if self._frames:
                return self._frames.popleft()
            return None

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


class StreamStalled(Exception):
    """No frame was decoded for longer than the stall timeout."""


def explain_stream_error(exc: BaseException) -> str:
    """One readable reason for a failed connection or read (credentials redacted)."""
    text = redact_url(str(exc)).strip() or type(exc).__name__
    if isinstance(exc, StreamStalled):
        return text
    # classify on the words around the URL, never on its digits (a port like 40323 is no 403)
    low = _URL.sub(" ", text).lower()
    if re.search(r"\b401\b", low) or "unauthorized" in low:
        return "authentication failed (401 Unauthorized): check the camera's user and password"
    if re.search(r"\b403\b", low) or "forbidden" in low:
        return "access refused by the camera (403 Forbidden)"
    if re.search(r"\b404\b", low) or "not found" in low:
        return "stream not found on the server (404): check the URL's path"
    if "connection refused" in low:
        return "connection refused: the camera or server is not listening"
    if "timed out" in low or "timeout" in low or "immediate exit" in low:
        return "no answer in time (timeout)"
    if "name or service not known" in low or "temporary failure in name resolution" in low:
        return "unknown host name"
    return text


@dataclass
class ReaderStats:
    frames: int = 0  # frames decoded and handed to the buffer
    connects: int = 0  # successful connections
    reconnects: int = 0  # connections after the first (or attempts after a failure)
    failures: int = 0  # failed connection attempts and broken connections
    connected: bool = False
    last_error: str | None = None
    last_frame_monotonic: float | None = None


class StreamReader(threading.Thread):
    """Reads one camera into a ``LiveBuffer`` until ``stop()``; never raises out of ``run``."""

    def __init__(self, camera: str, url: str, cfg, buffer: LiveBuffer,
                 rng: random.Random | None = None):
        super().__init__(name=f"reader-{camera}", daemon=True)
        self.camera = camera
        self._url = url
        self.safe_url = redact_url(url)
        self.cfg = cfg  # config.StreamConfig
        self.buffer = buffer
        self.stats = ReaderStats()
        self._halt = threading.Event()
        self._backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s, cfg.backoff_jitter, rng)
        self._next_index = 0
        self._epoch_mono: float | None = None  # monotonic time of the very first frame
        self._epoch_wall: datetime | None = None
        self._last_pts = -1.0

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        self._halt.set()

    @property
    def stopping(self) -> bool:
        return self._halt.is_set()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self._read_connection()
                if self._halt.is_set():
                    break
                reason = "the stream ended"
            except Exception as exc:  # noqa: BLE001 - every failure means: reconnect later
                reason = explain_stream_error(exc)
            self.stats.connected = False
            self.stats.failures += 1
            self.stats.last_error = reason
            if self._halt.is_set():
                break
            delay = self._backoff.next_delay()
            log.warning("camera %s: %s (%s); reconnecting in %.1f s", self.camera, reason,
                        self.safe_url, delay, extra={"camera": self.camera, "event": "stream_error"})
            self.stats.reconnects += 1
            self._halt.wait(delay)
        self.buffer.close()

    # ------------------------------------------------------------------ one connection
    def _open(self):
        import av  # heavy: only where streams are read

        cfg = self.cfg
        options = {
            "rtsp_transport": cfg.transport,
            "timeout": str(int(cfg.read_timeout_s * 1_000_000)),  # socket I/O, microseconds
            "fflags": "nobuffer",
            "flags": "low_delay",
            "max_delay": "500000",
            "fpsprobesize": "0",  # do not read 20 frames to guess the rate (~2.5 s)
            "analyzeduration": "500000",
        }
        return av.open(self._url, mode="r", options=options,
                       timeout=(cfg.open_timeout_s, cfg.read_timeout_s))

    def _read_connection(self) -> None:
        container = self._open()
        try:
            if not container.streams.video:
                raise RuntimeError("the stream has no video")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = stream.time_base
            self.stats.connected = True
            self.stats.connects += 1
            log.info("camera %s: connected to %s", self.camera, self.safe_url,
                     extra={"camera": self.camera, "event": "connected"})
            offset = None  # our time line minus the stream's clock, for this connection
            last_frame = time.monotonic()
            for packet in container.demux(stream):
                if self._halt.is_set():
                    return
                now = time.monotonic()
                if now - last_frame > self.cfg.stall_timeout_s:
                    raise StreamStalled(f"stalled: no frame for {now - last_frame:.1f} s")
                for av_frame in packet.decode():
                    now = time.monotonic()
                    last_frame = now
                    if self._epoch_mono is None:
                        self._epoch_mono = now
                        self._epoch_wall = datetime.now(timezone.utc)
                    arrival_s = now - self._epoch_mono
                    raw = (float(av_frame.pts * tb) if av_frame.pts is not None and tb
                           else None)  # a connection's first frame often has none
                    if raw is not None and offset is None:
                        offset = arrival_s - raw  # anchor the stream's clock at arrival
                    pts_s = arrival_s if raw is None else raw + offset
                    pts_s = max(pts_s, self._last_pts + 1e-3)
                    self._last_pts = pts_s
                    image = av_frame.to_ndarray(format="bgr24")
                    frame = Frame(index=self._next_index, pts_s=pts_s, image=image,
                                  wall_time=self._epoch_wall + timedelta(seconds=pts_s),
                                  source=self.camera)
                    self._next_index += 1
                    self.stats.frames += 1
                    self.stats.last_frame_monotonic = now
                    self._backoff.reset()
                    self.buffer.put(frame)
        finally:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
