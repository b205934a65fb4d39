"""Composite test footage with known ground truth: real face photos pasted into real frames.

A ``FaceActor`` is one person walking through the scene: a face-centred photo, a time
interval, a straight (optionally wobbling) path and a face size that changes over time.
``compose_video`` pastes each actor's head, with some context and a soft elliptical edge,
into background frames (a video looped, a list of frames, a still image, or a generated
scene), encodes the result with PyAV (H.264 via libx264 when present, else MPEG-4 part 2) and
returns the ``GroundTruth``: for every frame, which face was drawn where and how big.

Face box convention: in the source photo the face box is ``FaceActor.face_box`` when given,
else the central square of side ``photo_height / 2.2`` (LFW/CelebA-style crops are the dlib
box enlarged 2.2 times). It goes through the same scale and shift as the pasted pixels, so the
recorded box is exact for what was drawn (before compression).

The demo scene (``cctv-id demo``) is built from these pieces in ``demo_scene.py``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError, VideoError

__all__ = [
    "FaceActor",
    "GroundTruthFace",
    "ActorInterval",
    "GroundTruth",
    "compose_video",
    "make_1080p_clip",
    "generated_background",
    "default_face_box",
    "render_actor",
    "available_video_codec",
]

CROP_FACE_RATIO = 2.2  # photo side / face box side in LFW/CelebA-style crops
VTEST_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "video" / "vtest.avi"


# --- specs and results ------------------------------------------------------------------------


@dataclass
class FaceActor:
    """One person in a composite clip.

    ``start_xy``/``end_xy`` are the face-box centre in output-frame pixels at ``start_s`` and
    ``end_s``; ``start_px``/``end_px`` the face-box height there (linear in between).
    ``wobble_px`` adds a sideways sway of that amplitude (a walking gait, ``wobble_hz``).
    ``context`` is the pasted width in face heights; the edge fades over ``feather`` (a
    fraction of the patch radius). ``face_box`` overrides the central-square estimate
    (photo pixels, x1 y1 x2 y2). ``blur_sigma`` (output pixels) softens the patch like optics.
    """

    name: str
    photo: np.ndarray
    start_s: float
    end_s: float
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    start_px: float
    end_px: float
    face_box: tuple[float, float, float, float] | None = None
    wobble_px: float = 0.0
    wobble_hz: float = 0.8
    context: float = 1.7
    feather: float = 0.35
    blur_sigma: float = 0.0

    def __post_init__(self) -> None:
        photo = np.asarray(self.photo)
        if photo.ndim == 2:
            photo = cv2.cvtColor(photo, cv2.COLOR_GRAY2BGR)
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise ValueError(f"FaceActor {self.name!r}: photo must be uint8 BGR (H, W, 3)")
        self.photo = photo
        if not self.end_s > self.start_s:
            raise ValueError(f"FaceActor {self.name!r}: end_s must be after start_s")
        if min(self.start_px, self.end_px) <= 0:
            raise ValueError(f"FaceActor {self.name!r}: face sizes must be positive")
        if self.context < 1.0:
            raise ValueError(f"FaceActor {self.name!r}: context must be >= 1 face height")

    @property
    def source_face_box(self) -> tuple[float, float, float, float]:
        if self.face_box is not None:
            return tuple(float(v) for v in self.face_box)  # type: ignore[return-value]
        return default_face_box(self.photo.shape[:2])

    def state_at(self, t: float, phase: float = 0.0) -> tuple[float, float, float] | None:
        """(centre x, centre y, face px) at time ``t``, or None outside [start_s, end_s)."""
        if not (self.start_s <= t < self.end_s):
            return None
        u = (t - self.start_s) / (self.end_s - self.start_s)
        x = self.start_xy[0] + u * (self.end_xy[0] - self.start_xy[0])
        y = self.start_xy[1] + u * (self.end_xy[1] - self.start_xy[1])
        if self.wobble_px:
            w = math.sin(2 * math.pi * self.wobble_hz * (t - self.start_s) + phase)
            x += self.wobble_px * w
            y += 0.3 * self.wobble_px * abs(w)  # a small bob with each step
        px = self.start_px + u * (self.end_px - self.start_px)
        return x, y, px


@dataclass(frozen=True)
class GroundTruthFace:
    name: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels, clipped to it
    face_px: float  # height of the full (unclipped) face box
    visible: float = 1.0  # fraction of the face box inside the frame


@dataclass(frozen=True)
class ActorInterval:
    name: str
    start_s: float
    end_s: float
    first_frame: int  # -1 when the actor never appears in the clip
    last_frame: int


@dataclass
class GroundTruth:
    """What ``compose_video`` drew; JSON round-trips with ``to_json``/``from_json``."""

    fps: float
    width: int
    height: int
    n_frames: int
    codec: str
    actors: list[ActorInterval]
    frames: dict[int, list[GroundTruthFace]] = field(default_factory=dict)
    video_path: str = ""

    def faces_at(self, index: int) -> list[GroundTruthFace]:
        return self.frames.get(index, [])

    @property
    def identities(self) -> list[str]:
        return sorted({a.name for a in self.actors})

    def to_dict(self) -> dict:
        return {
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "n_frames": self.n_frames,
            "codec": self.codec,
            "video_path": self.video_path,
            "actors": [asdict(a) for a in self.actors],
            "frames": {
                str(i): [
                    {"name": f.name, "box": list(f.box), "face_px": f.face_px, "visible": f.visible}
                    for f in faces
                ]
                for i, faces in sorted(self.frames.items())
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> GroundTruth:
        return cls(
            fps=float(d["fps"]),
            width=int(d["width"]),
            height=int(d["height"]),
            n_frames=int(d["n_frames"]),
            codec=str(d.get("codec", "")),
            video_path=str(d.get("video_path", "")),
            actors=[ActorInterval(**a) for a in d.get("actors", [])],
            frames={
                int(i): [
                    GroundTruthFace(
                        name=f["name"],
                        box=tuple(float(v) for v in f["box"]),  # type: ignore[arg-type]
                        face_px=float(f["face_px"]),
                        visible=float(f.get("visible", 1.0)),
                    )
                    for f in faces
                ]
                for i, faces in d.get("frames", {}).items()
            },
        )

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> GroundTruth:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls.from_dict(json.loads(text))


# --- geometry and pasting -----------------------------------------------------------------------


def default_face_box(shape_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """The face box of a face-centred crop: the central square of side height / 2.2."""
    h, w = shape_hw[:2]
    side = h / CROP_FACE_RATIO
    cx, cy = w / 2.0, h / 2.0
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def render_actor(
    frame: np.ndarray,
    actor: FaceActor,
    cx: float,
    cy: float,
    face_px: float,
) -> GroundTruthFace | None:
    """Paste ``actor`` into ``frame`` (in place) with its face centre at (cx, cy) and face
    height ``face_px``; the drawn face box, or None when nothing of it lands in the frame."""
    H, W = frame.shape[:2]
    ph, pw = actor.photo.shape[:2]
    fx1, fy1, fx2, fy2 = actor.source_face_box
    fh = fy2 - fy1
    fcx, fcy = (fx1 + fx2) / 2, (fy1 + fy2) / 2
    half = actor.context * fh / 2
    rx1, ry1 = max(0, int(math.floor(fcx - half))), max(0, int(math.floor(fcy - half)))
    rx2, ry2 = min(pw, int(math.ceil(fcx + half))), min(ph, int(math.ceil(fcy + half)))
    if rx2 - rx1 < 2 or ry2 - ry1 < 2:
        return None
    scale = face_px / fh
    out_w = max(1, int(round((rx2 - rx1) * scale)))
    out_h = max(1, int(round((ry2 - ry1) * scale)))
    sx, sy = out_w / (rx2 - rx1), out_h / (ry2 - ry1)
    region = actor.photo[ry1:ry2, rx1:rx2]
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    patch = cv2.resize(region, (out_w, out_h), interpolation=interp)
    if actor.blur_sigma > 0:
        patch = cv2.GaussianBlur(patch, (0, 0), actor.blur_sigma)
    # top-left of the patch in the frame, so that the face centre lands on (cx, cy)
    ox = int(round(cx - (fcx - rx1) * sx))
    oy = int(round(cy - (fcy - ry1) * sy))
    box = (
        ox + (fx1 - rx1) * sx,
        oy + (fy1 - ry1) * sy,
        ox + (fx2 - rx1) * sx,
        oy + (fy2 - ry1) * sy,
    )
    # ellipse centred on the face centre in patch coordinates (the region may be clipped)
    alpha = _placed_ellipse(out_h, out_w, (fcx - rx1) * sx, (fcy - ry1) * sy, half * sx, half * sy,
                            actor.feather)
    x1, y1 = max(0, ox), max(0, oy)
    x2, y2 = min(W, ox + out_w), min(H, oy + out_h)
    if x2 > x1 and y2 > y1:
        p = patch[y1 - oy : y2 - oy, x1 - ox : x2 - ox].astype(np.float32)
        a = alpha[y1 - oy : y2 - oy, x1 - ox : x2 - ox, None]
        dst = frame[y1:y2, x1:x2].astype(np.float32)
        frame[y1:y2, x1:x2] = np.clip(dst + a * (p - dst) + 0.5, 0, 255).astype(np.uint8)
    bw, bh = box[2] - box[0], box[3] - box[1]
    cb = (max(0.0, box[0]), max(0.0, box[1]), min(float(W), box[2]), min(float(H), box[3]))
    if cb[2] <= cb[0] or cb[3] <= cb[1]:
        return None
    visible = (cb[2] - cb[0]) * (cb[3] - cb[1]) / max(bw * bh, 1e-9)
    return GroundTruthFace(
        name=actor.name,
        box=tuple(round(float(v), 3) for v in cb),  # type: ignore[arg-type]
        face_px=round(float(bh), 3),
        visible=round(float(visible), 4),
    )


def _placed_ellipse(h, w, cx, cy, rx, ry, feather) -> np.ndarray:
    ys = (np.arange(h, dtype=np.float32) + 0.5 - cy) / max(ry, 1e-3)
    xs = (np.arange(w, dtype=np.float32) + 0.5 - cx) / max(rx, 1e-3)
    r = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    f = max(1e-3, min(1.0, feather))
    a = np.clip((1.0 - r) / f, 0.0, 1.0)
    return (a * a * (3 - 2 * a)).astype(np.float32)


# --- backgrounds --------------------------------------------------------------------------------


def generated_background(size: tuple[int, int] = (960, 540), seed: int = 0) -> np.ndarray:
    """A street-like still (BGR, ``size`` = (width, height)): sky/ground gradient, blurred
    blocks for buildings and cars, sensor noise. Deterministic for a seed."""
    w, h = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    base = np.empty((h, w, 3), np.float32)
    top = np.array([190, 170, 150], np.float32)  # BGR, pale sky
    bottom = np.array([70, 80, 85], np.float32)  # tarmac
    g = np.clip(y * 1.2 + 0.1 * x, 0, 1)[..., None]
    base[:] = top * (1 - g) + bottom * g
    for _ in range(14):  # buildings along the horizon
        bw, bh = rng.integers(w // 14, w // 5), rng.integers(h // 6, h // 2)
        bx = rng.integers(-bw // 2, w)
        by = int(h * 0.55) - bh
        color = _muted(rng, 50, 190)
        base[max(0, by) : by + bh, max(0, bx) : bx + bw] = color
        for _ in range(int(rng.integers(3, 10))):  # windows
            wx, wy = bx + rng.integers(0, max(1, bw - 8)), by + rng.integers(0, max(1, bh - 8))
            if wx >= 0 and wy >= 0:
                base[wy : wy + 6, wx : wx + 5] = color * 0.5
    for _ in range(6):  # parked cars / street furniture
        cw, ch = rng.integers(w // 20, w // 8), rng.integers(h // 30, h // 12)
        cx, cy = rng.integers(0, w), rng.integers(int(h * 0.55), h)
        base[cy : cy + ch, cx : cx + cw] = _muted(rng, 25, 220)
    base = cv2.GaussianBlur(base, (0, 0), max(1.0, w / 400))
    base += rng.normal(0, 4.0, base.shape).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def _muted(rng: np.random.Generator, lo: int, hi: int) -> np.ndarray:
    """A greyish BGR colour (concrete, brick, glass), not a saturated one."""
    grey = float(rng.uniform(lo, hi))
    return np.clip(grey + rng.normal(0, 12, 3), 0, 255).astype(np.float32)


def _fit(img: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize to cover ``size`` (w, h) keeping the aspect, then centre-crop; even sides."""
    if size is None:
        h, w = img.shape[:2]
        if w % 2 == 0 and h % 2 == 0:
            return img
        return img[: h - h % 2, : w - w % 2]
    tw, th = size
    h, w = img.shape[:2]
    if (w, h) == (tw, th):
        return img
    s = max(tw / w, th / h)
    nw, nh = max(tw, int(round(w * s))), max(th, int(round(h * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(img, (nw, nh), interpolation=interp)
    x0, y0 = (nw - tw) // 2, (nh - th) // 2
    return r[y0 : y0 + th, x0 : x0 + tw]


def _background_frames(background, seed: int, size) -> Iterator[np.ndarray]:
    """Endless BGR frames from a path (looped), an image (with fresh noise), or frames."""
    from .source import open_video

    if background is None:
        background = generated_background(size or (960, 540), seed)
    if isinstance(background, (str, os.PathLike)):
        path = Path(background)
        n = 0
        while True:
            with open_video(path) as src:
                for f in src:
                    n += 1
                    yield f.image
            if n == 0:
                raise VideoError(f"{path}: no frames to use as background")
    elif isinstance(background, np.ndarray) and background.ndim == 3:
        rng = np.random.default_rng(seed + 1)
        still = background.astype(np.int16)
        while True:  # a static camera still has sensor noise
            yield np.clip(still + rng.normal(0, 2.0, still.shape), 0, 255).astype(np.uint8)
    else:
        cache: list[np.ndarray] = []
        for img in background:
            img = np.asarray(img)
            cache.append(img)
            yield img
        if not cache:
            raise InputError("compose_video: the background frame list is empty")
        while True:
            yield from cache


# --- encoding -----------------------------------------------------------------------------------


def available_video_codec(preferred: str = "h264") -> str:
    """The encoder name PyAV can write here: libx264 for "h264" when present, else mpeg4."""
    import av

    names = {"h264": ["libx264", "h264", "mpeg4"], "mpeg4": ["mpeg4"], "mjpeg": ["mjpeg"]}
    for name in names.get(preferred, [preferred]) + ["mpeg4"]:
        try:
            av.Codec(name, "w")
            return name
        except Exception:
            continue
    raise VideoError("no usable video encoder in PyAV's ffmpeg (tried libx264, mpeg4)")


class _Writer:
    def __init__(self, path: Path, fps: float, size: tuple[int, int], codec: str, crf: int,
                 gop: int | None):
        import av
        from fractions import Fraction

        self.av = av
        self.codec = available_video_codec(codec)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.container = av.open(str(path), "w")
        except Exception as exc:
            raise VideoError(f"{path}: cannot create video file: {exc}") from None
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream(self.codec, rate=rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        if gop:
            self.stream.codec_context.gop_size = int(gop)
        if self.codec in ("libx264", "h264"):
            self.stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
        else:  # MPEG-4 part 2: fixed quantiser 2 (best) .. 31; crf 18..51 mapped onto it
            q = int(np.clip(round(2 + (crf - 18) * 29 / 33), 2, 31))
            self.stream.codec_context.qscale = True
            self.stream.codec_context.global_quality = q * 118  # FF_QP2LAMBDA

    def write(self, img: np.ndarray) -> None:
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)

    def close(self) -> None:
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()


# --- the builders -------------------------------------------------------------------------------


def compose_video(
    out_path: str | os.PathLike,
    background,
    actors: Sequence[FaceActor],
    *,
    fps: float | None = None,
    duration_s: float,
    size: tuple[int, int] | None = None,
    codec: str = "h264",
    crf: int = 23,
    gop: int | None = None,
    seed: int = 0,
) -> GroundTruth:
    """Write a composite clip to ``out_path`` and return its ground truth.

    ``background``: a video path (looped), a list/iterable of BGR frames (looped), one BGR
    image (static, with fresh noise per frame), or None (``generated_background``).
    ``fps``: output rate; default the background video's rate, else 10.
    ``size``: (width, height) of the output; backgrounds are scaled to cover it and
    centre-cropped. Default: the background's own size (made even).
    ``codec``: "h264" (libx264, falling back to mpeg4) or "mpeg4"; ``crf`` its quality
    (x264 CRF; mapped to a fixed quantiser for mpeg4). ``gop``: keyframe interval in frames.
    ``seed`` fixes the wobble phases and the background noise.
    """
    out_path = Path(out_path)
    if fps is None:
        fps = 10.0
        if isinstance(background, (str, os.PathLike)):
            from .source import open_video

            with open_video(background) as src:
                fps = src.fps
    if fps <= 0 or duration_s <= 0:
        raise ValueError("fps and duration_s must be positive")
    n_frames = int(round(duration_s * fps))
    rng = np.random.default_rng(seed)
    phases = [float(rng.uniform(0, 2 * math.pi)) for _ in actors]
    frames_gt: dict[int, list[GroundTruthFace]] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    bg = _background_frames(background, seed, size)
    writer = None
    try:
        for i in range(n_frames):
            img = _fit(np.asarray(next(bg)), size)
            img = np.array(img, dtype=np.uint8, copy=True)
            if writer is None:
                h, w = img.shape[:2]
                writer = _Writer(out_path, fps, (w, h), codec, crf, gop)
            t = i / fps
            drawn = []
            for k, actor in enumerate(actors):
                st = actor.state_at(t, phases[k])
                if st is None:
                    continue
                gt = render_actor(img, actor, *st)
                if gt is not None:
                    drawn.append(gt)
                    first.setdefault(k, i)
                    last[k] = i
            if drawn:
                frames_gt[i] = drawn
            writer.write(img)
    finally:
        close = getattr(bg, "close", None)
        if close:
            close()
        if writer is not None:
            writer.close()
    assert writer is not None
    return GroundTruth(
        fps=float(fps),
        width=int(writer.stream.width),
        height=int(writer.stream.height),
        n_frames=n_frames,
        codec=writer.codec,
        video_path=str(out_path),
        actors=[
            ActorInterval(
                a.name, float(a.start_s), float(a.end_s), first.get(k, -1), last.get(k, -1)
            )
            for k, a in enumerate(actors)
        ],
        frames=frames_gt,
    )


def make_1080p_clip(
    out_path: str | os.PathLike,
    seconds: float,
    actors: Sequence[FaceActor],
    *,
    background=None,
    fps: float = 10.0,
    codec: str = "h264",
    crf: int = 23,
    seed: int = 0,
) -> GroundTruth:
    """A 1920x1080 clip for benchmarks: the background (default ``vtest.avi`` when the shared
    data is present, else a generated scene) scaled up to cover 1080p."""
    if background is None:
        background = VTEST_PATH if VTEST_PATH.exists() else generated_background((1920, 1080), seed)
    return compose_video(
        out_path,
        background,
        actors,
        fps=fps,
        duration_s=seconds,
        size=(1920, 1080),
        codec=codec,
        crf=crf,
        seed=seed,
    )
