"""Video file sources on PyAV: decode every frame, yield ``Frame`` records, fail in one line.

``open_video(path)`` returns a ``VideoSource``: a context manager and a one-pass iterator of
``cctv_id.types.Frame``. What it promises:

- ``Frame.index`` counts every decoded frame (0-based), also those skipped by ``stride``;
- ``Frame.pts_s`` is the presentation time from the stream's first timestamp, never
  decreasing: decoders that emit frames in the right order but with shuffled timestamps
  (packed-bitstream XviD AVIs such as OpenCV's ``Megamind_bugy.avi``) get the timestamps
  re-sorted over a small window; a frame without a timestamp gets the previous one plus one
  frame period; ``source.pts_fixes`` counts the frames so repaired;
- ``Frame.wall_time`` is ``start_time + pts_s`` (UTC), with ``start_time`` taken from the
  argument or else the container's ``creation_time`` metadata, or ``None``;
- packets the decoder rejects are skipped and counted (``source.decode_errors``); a run of
  ``max_consecutive_errors`` rejected packets, or a read error from the demuxer, raises
  ``VideoError("<file>: decoding failed at frame N: ...")`` after the frames before it were
  yielded;
- a file that ends early without an error (a cut AVI) sets ``source.incomplete`` and logs a
  warning; nothing raises a raw ``av`` exception.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import os
import sys
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import VideoError
from ..types import Frame

__all__ = ["VideoSource", "open_video", "file_sha256", "video_info"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# Timestamps are re-sorted over this many frames. Display order is the decoder's job; this only
# repairs the labels (B-frame timestamps swapped by the container). Adds no latency to images
# beyond this many frames.
_REORDER_WINDOW = 4
# creation_time values that mean "not set" (0 in the Unix and in the QuickTime epoch).
_BOGUS_YEARS = (1904, 1970)


def file_sha256(path: str | os.PathLike, chunk_size: int = _CHUNK) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while True:
                block = fh.read(chunk_size)
                if not block:
                    break
                h.update(block)
    except OSError as exc:
        raise VideoError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    return h.hexdigest()


def _parse_creation_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    if dt.year in _BOGUS_YEARS and dt.month == 1 and dt.day == 1:
        return None
    return dt


def _as_utc(dt: datetime) -> datetime:
    """A naive datetime is taken to be UTC already; an aware one is converted."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def _check_path(path: Path) -> None:
    """One clear line for the failures that need no decoder to explain."""
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise VideoError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if size == 0:
        raise VideoError(f"{path}: file is empty (0 bytes)")


# 8-bit pixel formats whose first plane is the luma (Y) plane; "yuvj" ones are full range
_LUMA_FIRST = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p",
                         "yuv411p", "yuv440p", "yuvj440p", "nv12", "nv21", "gray"})
_AVCOL_RANGE_JPEG = 2  # FFmpeg's full-range ("JPEG") colour range


def _luma_plane(frame) -> tuple[np.ndarray | None, bool]:
    """(Y plane as an (H, W) uint8 view of the decoded frame, limited range?), or (None,
    False) for formats without an 8-bit luma plane (the motion model then uses BGR)."""
    name = frame.format.name
    if name not in _LUMA_FIRST:
        return None, False
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(frame.height, plane.line_size)
    full = name.startswith("yuvj") or name == "gray" or frame.color_range == _AVCOL_RANGE_JPEG
    return rows[:, : frame.width], not full


def _explain_open_failure(path: Path, exc: Exception) -> str:
    """Why libav could not open ``path``, in words a user can act on."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except OSError:
        head = b""
    if len(head) >= 8 and head[4:8] in (b"ftyp", b"mdat", b"wide", b"free", b"skip"):
        return (
            "cannot open: MP4/MOV container is incomplete (no 'moov' index; the file is "
            "truncated or was still being written)"
        )
    if head.startswith(b"RIFF"):
        return f"cannot open: damaged AVI header ({_short(exc)})"
    if head and _looks_like_text(head):
        return "not a video: the file contains text, not a recognisable container"
    return f"not a video, or a damaged one: {_short(exc)}"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _short(exc: Exception) -> str:
    """An av/ffmpeg error as a short phrase, without errno noise or the repeated file name."""
    msg = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(msg).split())


class VideoSource:
    """A decoded video file; iterate for ``Frame`` records. Use ``open_video`` to build one."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        stride: int = 1,
        start_time: datetime | None = None,
        camera: str = "",
        progress: bool = False,
        max_consecutive_errors: int = 50,
    ) -> None:
        import av  # heavy: imported only where video is read

        if int(stride) < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self._av = av
        self._path = Path(os.fspath(path))
        self.stride = int(stride)
        self.camera = camera
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.decode_errors = 0  # packets the decoder rejected and that were skipped
        self.pts_fixes = 0  # frames whose timestamp was missing or out of order
        self.frames_decoded = 0
        self.incomplete = False  # True when the file ended early without a decoder error
        self.last_error: str | None = None
        self._tail_errors = 0
        self._sha256: str | None = None
        self._closed = False
        self._bar = None

        _check_path(self._path)
        try:
            self._container = av.open(str(self._path), mode="r")
        except av.FFmpegError as exc:
            raise VideoError(f"{self._path}: {_explain_open_failure(self._path, exc)}") from None
        except OSError as exc:
            raise VideoError(f"{self._path}: cannot open: {_short(exc)}") from None
        try:
            if not self._container.streams.video:
                kinds = sorted({s.type for s in self._container.streams}) or ["no streams"]
                raise VideoError(
                    f"{self._path}: not a video: no video stream (has {', '.join(kinds)})"
                )
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            cc = self._stream.codec_context
            if cc is None or not cc.name:
                raise VideoError(f"{self._path}: video stream has no decodable codec")
            self._time_base: Fraction | None = self._stream.time_base
            self._fps = self._read_fps()
            if start_time is not None:
                self._start_time: datetime | None = _as_utc(start_time)
            else:
                self._start_time = self._read_creation_time()
        except VideoError:
            self._container.close()
            raise
        except Exception as exc:  # any av surprise while reading headers
            self._container.close()
            raise VideoError(f"{self._path}: cannot read video stream: {_short(exc)}") from None

        if progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.frame_count,
                unit="frame",
                desc=self._path.name,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._iter = self._frames()

    # -- header facts ---------------------------------------------------------------------
    def _read_fps(self) -> float:
        s = self._stream
        for rate in (s.average_rate, s.guessed_rate, s.base_rate):
            try:
                if rate and float(rate) > 0 and math.isfinite(float(rate)):
                    return float(rate)
            except (TypeError, ZeroDivisionError):
                continue
        log.warning("%s: frame rate unknown; assuming 25 fps", self._path)
        return 25.0

    def _read_creation_time(self) -> datetime | None:
        for meta in (self._container.metadata, self._stream.metadata):
            dt = _parse_creation_time((meta or {}).get("creation_time"))
            if dt is not None:
                return dt
        return None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def width(self) -> int:
        return int(self._stream.codec_context.width or self._stream.width or 0)

    @property
    def height(self) -> int:
        return int(self._stream.codec_context.height or self._stream.height or 0)

    @property
    def codec(self) -> str:
        return str(self._stream.codec_context.name)

    @property
    def start_time(self) -> datetime | None:
        """UTC time of the first frame (argument, else container ``creation_time``), or None."""
        return self._start_time

    @property
    def duration_s(self) -> float | None:
        s = self._stream
        if s.duration and self._time_base:
            return float(s.duration * self._time_base)
        if self._container.duration:
            return float(self._container.duration) / 1_000_000  # AV_TIME_BASE
        return None

    @property
    def frame_count(self) -> int | None:
        """Frames the header declares, else duration x fps; an estimate, may be None."""
        if self._stream.frames and self._stream.frames > 0:
            return int(self._stream.frames)
        d = self.duration_s
        if d:
            return int(round(d * self._fps))
        return None

    @property
    def sha256(self) -> str:
        """sha256 of the file bytes (computed on first use, then cached)."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self._path)
        return self._sha256

    # -- iteration ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._closed:
            raise StopIteration
        return next(self._iter)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._iter.close()
        except Exception:  # pragma: no cover - generator cleanup
            pass
        if self._bar is not None:
            self._bar.close()
        try:
            self._container.close()
        except Exception:  # pragma: no cover
            pass

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return (
            f"VideoSource({str(self._path)!r}, {self.width}x{self.height}, {self.fps:g} fps, "
            f"{self.codec}, ~{self.frame_count} frames)"
        )

    def _converter(self, frame, index: int):
        """The deferred BGR conversion of one decoded frame (run where it is first needed:
        frames only the motion model or the tracker look at are never converted)."""

        def convert():
            try:
                return frame.to_ndarray(format="bgr24")
            except Exception as exc:
                self.last_error = f"cannot convert frame to BGR ({_short(exc)})"
                raise VideoError(f"{self._path}: decoding failed at frame {index}: "
                                 f"{self.last_error}") from None

        return convert

    def _fail(self, what: str) -> VideoError:
        self.last_error = what
        return VideoError(f"{self._path}: decoding failed at frame {self.frames_decoded}: {what}")

    def _decoded(self) -> Iterator:
        """Raw av frames in decode order; skips and counts rejected packets."""
        av = self._av
        run = 0  # consecutive rejected packets
        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.EOFError:
                break
            except (av.FFmpegError, OSError) as exc:
                raise self._fail(f"cannot read from file ({_short(exc)})") from None
            try:
                frames = packet.decode()  # a flush packet (size 0) drains the decoder
            except (av.FFmpegError, ValueError) as exc:
                self.decode_errors += 1
                run += 1
                self.last_error = _short(exc)
                log.debug("%s: skipped undecodable packet: %s", self._path, self.last_error)
                if run >= self.max_consecutive_errors:
                    raise self._fail(
                        f"{run} packets in a row could not be decoded ({self.last_error})"
                    ) from None
                continue
            if frames:
                run = 0
            yield from frames
        self._tail_errors = run

    def _frames(self) -> Iterator[Frame]:
        tb = self._time_base
        period_tb = None
        if tb:
            period_tb = 1.0 / (self._fps * float(tb))  # one frame period in time-base units
        pending: deque = deque()  # (decode index, av frame), images in decode order
        heap: list[float] = []  # raw timestamps (time-base units) of the pending frames
        state = {"origin": None, "last_raw": None, "last_out": None}
        stride = self.stride

        def raw_pts(frame) -> float:
            if frame.pts is not None and tb:
                value = float(frame.pts)
                last = state["last_raw"]
                if last is not None and value < last:
                    self.pts_fixes += 1
                state["last_raw"] = value if last is None else max(last, value)
                return value
            self.pts_fixes += 1
            last = state["last_raw"]
            value = 0.0 if last is None else last + (period_tb or 1.0)
            state["last_raw"] = value
            return value

        def emit() -> Frame | None:
            index, frame = pending.popleft()
            raw = heapq.heappop(heap)
            if state["origin"] is None:
                state["origin"] = raw
            if tb:
                pts_s = float((Fraction(raw) - Fraction(state["origin"])) * tb)
            else:
                pts_s = index / self._fps
            if state["last_out"] is not None and pts_s < state["last_out"]:
                pts_s = state["last_out"]
            state["last_out"] = pts_s
            if index % stride:
                return None
            wall = None
            if self._start_time is not None:
                wall = self._start_time + timedelta(seconds=pts_s)
            luma, limited = _luma_plane(frame)
            return Frame(index=index, pts_s=pts_s, wall_time=wall, source=self.camera,
                         convert=self._converter(frame, index), luma=luma, luma_limited=limited)

        decoded = self._decoded()
        try:
            while True:
                try:
                    frame = next(decoded)
                except StopIteration:
                    break
                except VideoError:
                    # yield what was decoded before the failure, then raise
                    while pending:
                        out = emit()
                        if out is not None:
                            yield out
                    raise
                index = self.frames_decoded
                self.frames_decoded += 1
                if self._bar is not None:
                    self._bar.update(1)
                pending.append((index, frame))
                heapq.heappush(heap, raw_pts(frame))
                if len(pending) > _REORDER_WINDOW:
                    out = emit()
                    if out is not None:
                        yield out
            while pending:
                out = emit()
                if out is not None:
                    yield out
        finally:
            decoded.close()
        self._check_complete()

    def _check_complete(self) -> None:
        declared = self._stream.frames
        if declared and declared > 0 and self.frames_decoded < 0.98 * declared - 1:
            self.incomplete = True
            log.warning(
                "%s: ended after %d of %d frames the header declares (file cut short?)",
                self._path,
                self.frames_decoded,
                declared,
            )
        elif self._tail_errors:
            self.incomplete = True
            log.warning(
                "%s: the last %d packets could not be decoded (%s)",
                self._path,
                self._tail_errors,
                self.last_error,
            )


def open_video(
    path: str | os.PathLike,
    *,
    stride: int = 1,
    start_time: datetime | None = None,
    camera: str = "",
    progress: bool = False,
    max_consecutive_errors: int = 50,
) -> VideoSource:
    """Open a video file for decoding; see ``VideoSource`` and the module notes.

    ``start_time``: wall-clock time of the first frame (a naive datetime is taken as UTC);
    when None, the container's ``creation_time`` is used if present.
    ``stride``: yield every stride-th decoded frame (all frames are still decoded).
    ``progress``: show a tqdm bar on stderr over the estimated frame count.
    Raises ``VideoError`` (one line naming the file) when the file cannot be opened.
    """
    return VideoSource(
        path,
        stride=stride,
        start_time=start_time,
        camera=camera,
        progress=progress,
        max_consecutive_errors=max_consecutive_errors,
    )


def video_info(path: str | os.PathLike) -> dict:
    """Header facts of a video file (no decoding): fps, size, codec, frame count, duration."""
    with open_video(path) as src:
        return {
            "path": str(src.path),
            "fps": src.fps,
            "width": src.width,
            "height": src.height,
            "codec": src.codec,
            "frame_count": src.frame_count,
            "duration_s": src.duration_s,
            "start_time": src.start_time,
        }
