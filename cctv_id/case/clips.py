"""Short video clips around hits, re-decoded from the source file, with the face boxed.

One pass over a source makes every clip of that source: frames are decoded with the same
reader as processing (``video.source.open_video``, so frame indices match the stored
trajectories), and each frame inside a clip's window is written to that clip with the face
box drawn where the track's trajectory puts it (interpolated between the stored detection
points; no box before the track starts or after it ends) and a caption (hit, person, time).
Encoded with PyAV: libx264 when the wheel has it, else h264, else mpeg4.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np

BOX_BGR = (255, 0, 255)  # magenta: rare in street scenes, easy to find in a test
BOX_THICKNESS = 3
MAX_LONG_SIDE = 1920  # larger sources are downscaled in clips
_CODECS = ("libx264", "h264", "mpeg4")


def pick_codec() -> str:
    import av

    for name in _CODECS:
        if name in av.codecs_available:
            return name
    raise RuntimeError("PyAV has none of the video encoders " + ", ".join(_CODECS))


def clip_window(first_s: float, last_s: float, best_s: float, margin_s: float,
                max_s: float) -> tuple[float, float]:
    """[first - margin, last + margin], at most ``max_s`` long (then centred on the best
    shot, kept inside that span), never before 0."""
    lo, hi = max(0.0, first_s - margin_s), last_s + margin_s
    if hi - lo > max_s:
        start = min(max(lo, best_s - max_s / 2), hi - max_s)
        lo, hi = start, start + max_s
    return lo, hi


def box_at(trajectory, frame_index: int) -> np.ndarray | None:
    """The face box at ``frame_index`` from ``((frame, x1, y1, x2, y2), ...)`` (frame order):
    exact at a stored point, linear between two, None outside the track."""
    if not trajectory:
        return None
    frames = [p[0] for p in trajectory]
    if frame_index < frames[0] or frame_index > frames[-1]:
        return None
    i = bisect.bisect_left(frames, frame_index)
    a = np.asarray(trajectory[i][1:5], np.float64)
    if frames[i] == frame_index or i == 0:
        return a
    f0, f1 = frames[i - 1], frames[i]
    b = np.asarray(trajectory[i - 1][1:5], np.float64)
    w = (frame_index - f0) / (f1 - f0)
    return b + (a - b) * w


@dataclass
class ClipJob:
    """One clip to make: hit ``hit_id``'s window of the source, into ``path``."""

    hit_id: int
    path: Path
    start_s: float
    end_s: float
    trajectory: list
    caption: str
    frames: int = 0
    first_frame: int | None = None
    last_frame: int | None = None
    _container: object = field(default=None, repr=False)
    _stream: object = field(default=None, repr=False)

    def result(self, codec: str, fps: float) -> dict:
        return {"hit_id": self.hit_id, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "frames": self.frames,
                "first_frame": self.first_frame, "last_frame": self.last_frame,
                "codec": codec, "fps": round(fps, 3)}


def _even(n: int) -> int:
    return max(2, n - n % 2)


def _draw(image: np.ndarray, box, scale: float, caption: str) -> np.ndarray:
    import cv2

    out = image
    if box is not None:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in box)
        pad = BOX_THICKNESS  # drawn just outside the face, so the face itself stays visible
        cv2.rectangle(out, (x1 - pad, y1 - pad), (x2 + pad, y2 + pad), BOX_BGR, BOX_THICKNESS)
    (tw, th), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
    cv2.rectangle(out, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(out, caption, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def render_clips(source_path: Path, jobs: list[ClipJob], start_time=None,
                 on_frame=None) -> tuple[str, float]:
    """Write every job's clip from one decoding pass of ``source_path``; returns (codec,
    fps). ``on_frame(seconds)`` is called once per frame written with the frame's duration
    (progress). A clip's frames are
    those whose time lies in its window; ``start_time`` (the run's) stamps captions."""
    import av
    import cv2

    from ..video.source import open_video

    codec = pick_codec()
    jobs = sorted(jobs, key=lambda j: j.start_s)
    end_all = max(j.end_s for j in jobs)
    open_jobs: list[ClipJob] = []
    fps = 25.0
    try:
        with open_video(source_path, start_time=start_time) as source:
            fps = source.fps or 25.0
            rate = Fraction(fps).limit_denominator(1001)
            h, w = source.height, source.width
            scale = min(1.0, MAX_LONG_SIDE / max(h, w))
            ow, oh = _even(int(w * scale)), _even(int(h * scale))
            pending = list(jobs)
            for frame in source:
                t = frame.pts_s
                if t > end_all:
                    break
                while pending and pending[0].start_s <= t:
                    job = pending.pop(0)
                    job.path.parent.mkdir(parents=True, exist_ok=True)
                    job._container = av.open(str(job.path), mode="w")
                    stream = job._container.add_stream(codec, rate=rate)
                    stream.width, stream.height, stream.pix_fmt = ow, oh, "yuv420p"
                    if codec == "libx264":
                        stream.options = {"crf": "23", "preset": "veryfast"}
                    job._stream = stream
                    open_jobs.append(job)
                if not open_jobs:
                    continue
                base = frame.image
                if scale < 1.0 or (ow, oh) != (w, h):
                    base = cv2.resize(base, (ow, oh), interpolation=cv2.INTER_AREA)
                for job in list(open_jobs):
                    if t > job.end_s:
                        _close(job)
                        open_jobs.remove(job)
                        continue
                    when = (frame.wall_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                            if frame.wall_time is not None else f"{timedelta(seconds=t)}")
                    img = _draw(base.copy(), box_at(job.trajectory, frame.index),
                                ow / w, f"{job.caption}  {when}")
                    vf = av.VideoFrame.from_ndarray(img, format="bgr24")
                    vf.pts = job.frames
                    vf.time_base = 1 / rate
                    for packet in job._stream.encode(vf):
                        job._container.mux(packet)
                    job.frames += 1
                    job.first_frame = frame.index if job.first_frame is None else job.first_frame
                    job.last_frame = frame.index
                    if on_frame is not None:
                        on_frame(1.0 / fps)
        for job in open_jobs:
            _close(job)
        open_jobs = []
    finally:
        for job in open_jobs:  # an error part-way: close what is open (the caller discards)
            try:
                _close(job)
            except Exception:  # noqa: BLE001 - already failing
                pass
    return codec, fps


def _close(job: ClipJob) -> None:
    if job._container is None:
        return
    try:
        for packet in job._stream.encode():
            job._container.mux(packet)
    finally:
        job._container.close()
        job._container = job._stream = None
