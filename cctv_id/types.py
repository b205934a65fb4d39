"""Typed records exchanged between pipeline stages.

One result type per concept. Stages pass these small frozen dataclasses (holding numpy
arrays) forward and never reach into each other's internals; backends adapt their own
outputs to these types (``FaceDetections.from_...`` helpers live with the backend).

Conventions used everywhere:
- images are ``uint8`` BGR ``(H, W, 3)`` (OpenCV order);
- boxes are ``float32`` ``[x1, y1, x2, y2]`` in full-frame pixels;
- five landmarks per face, ``float32 (5, 2)`` as ``(x, y)`` in this order: eye on the image's
  left, eye on the image's right, nose tip, mouth corner on the image's left, mouth corner on
  the image's right (the RetinaFace / insightface order);
- face size ("face_px") is the height of the face box in full-frame pixels;
- times: ``pts_s`` is the presentation time in seconds from the start of the stream,
  wall-clock times are timezone-aware UTC ``datetime`` objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np


def _f32(a, shape_tail: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if arr.size == 0:
        return np.zeros((0, *shape_tail), dtype=np.float32)
    return arr.reshape((-1, *shape_tail))


class Frame:
    """One decoded video frame.

    The BGR ``image`` may be produced lazily: a reader can hand over a ``convert`` callable
    (and the frame's luma plane as ``luma``) instead of the array, and the conversion then
    runs on first access, in the thread that needs it - frames that only the motion model
    or the tracker's prediction look at are never converted. ``luma`` is the decoder's Y
    plane when the reader gave it (``grey_limited``: limited-range "TV" luma, 16..235).
    """

    __slots__ = ("index", "pts_s", "wall_time", "source", "grey_limited", "_image", "_convert",
                 "_luma")

    def __init__(self, index: int, pts_s: float, image: np.ndarray | None = None,
                 wall_time: datetime | None = None, source: str = "", *,
                 convert: Callable[[], np.ndarray] | None = None,
                 luma: np.ndarray | None = None, luma_limited: bool = False):
        if image is None and convert is None:
            raise ValueError("a Frame needs an image or a convert callable")
        self.index = index  # 0-based index in decode order over the whole source
        self.pts_s = pts_s  # presentation time in seconds from the start of the stream
        self.wall_time = wall_time  # UTC wall-clock time of this frame, when known
        self.source = source  # camera or source name
        self._image = image
        self._convert = convert
        self._luma = luma  # (H, W) uint8 Y plane, when the reader has it
        self.grey_limited = luma is not None and luma_limited

    @property
    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR (converted on first access when the reader deferred it)."""
        if self._image is None:
            self._image = self._convert()
            self._convert = None
        return self._image

    @property
    def converted(self) -> bool:
        """Whether the BGR image exists yet (for measurements and tests)."""
        return self._image is not None

    @property
    def luma(self) -> np.ndarray | None:
        """(H, W) uint8 Y plane when the reader gave one (``grey_limited``: 16..235), else
        None (use ``image``)."""
        return self._luma

    @property
    def height(self) -> int:
        return int((self.image if self._luma is None else self._luma).shape[0])

    @property
    def width(self) -> int:
        return int((self.image if self._luma is None else self._luma).shape[1])

    def __repr__(self) -> str:
        return f"Frame(index={self.index}, pts_s={self.pts_s:.3f}, source={self.source!r})"


@dataclass(frozen=True)
class FaceDetections:
    """All faces found in one frame (or one still image)."""

    frame_index: int
    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray  # (N,) float32 detector confidence
    landmarks: np.ndarray  # (N, 5, 2) float32

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _f32(self.boxes, (4,)))
        object.__setattr__(self, "scores", _f32(self.scores, ()).reshape(-1))
        object.__setattr__(self, "landmarks", _f32(self.landmarks, (5, 2)))
        n = len(self.boxes)
        if len(self.scores) != n or len(self.landmarks) != n:
            raise ValueError(
                f"FaceDetections: {n} boxes, {len(self.scores)} scores, "
                f"{len(self.landmarks)} landmark sets"
            )

    @classmethod
    def empty(cls, frame_index: int = -1) -> FaceDetections:
        return cls(frame_index, np.zeros((0, 4)), np.zeros((0,)), np.zeros((0, 5, 2)))

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def heights(self) -> np.ndarray:
        """Face size of each detection: box height in pixels."""
        return self.boxes[:, 3] - self.boxes[:, 1]

    @property
    def widths(self) -> np.ndarray:
        return self.boxes[:, 2] - self.boxes[:, 0]

    @property
    def centers(self) -> np.ndarray:
        return np.stack(
            [(self.boxes[:, 0] + self.boxes[:, 2]) / 2, (self.boxes[:, 1] + self.boxes[:, 3]) / 2],
            axis=1,
        ) if len(self) else np.zeros((0, 2), np.float32)

    def select(self, keep) -> FaceDetections:
        """A subset by boolean mask or index array."""
        keep = np.asarray(keep)
        return FaceDetections(
            self.frame_index, self.boxes[keep], self.scores[keep], self.landmarks[keep]
        )

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> FaceDetections:
        """Coordinates multiplied by ``factor`` then shifted by ``offset`` (x, y)."""
        ox, oy = offset
        boxes = self.boxes * factor + np.array([ox, oy, ox, oy], np.float32)
        lms = self.landmarks * factor + np.array([ox, oy], np.float32)
        return FaceDetections(self.frame_index, boxes, self.scores.copy(), lms)

    @staticmethod
    def concat(items: list[FaceDetections], frame_index: int | None = None) -> FaceDetections:
        if not items:
            return FaceDetections.empty(-1 if frame_index is None else frame_index)
        fi = items[0].frame_index if frame_index is None else frame_index
        return FaceDetections(
            fi,
            np.concatenate([d.boxes for d in items]),
            np.concatenate([d.scores for d in items]),
            np.concatenate([d.landmarks for d in items]),
        )


@dataclass(frozen=True)
class FaceCrops:
    """Aligned face chips ready for a recogniser, one row per face."""

    images: np.ndarray  # (N, S, S, 3) uint8 BGR, aligned to the recogniser's template
    face_px: np.ndarray  # (N,) float32 face size in the source frame
    quality: np.ndarray  # (N,) float32 in [0, 1]
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # (N,) or empty

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class Embeddings:
    """L2-normalised face descriptors from one recogniser."""

    vectors: np.ndarray  # (N, D) float32, unit length
    model: str  # recogniser name, e.g. "dlib-resnet-v1"

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1]) if self.vectors.ndim == 2 else 0


@dataclass(frozen=True)
class FaceSample:
    """One observation of a tracked face, kept as a candidate for recognition.

    ``patch`` is a copy of the frame region around the face (with context, so that the
    aligner can warp it) and ``patch_landmarks`` are the landmarks in patch coordinates.
    """

    frame_index: int
    pts_s: float
    wall_time: datetime | None
    box: np.ndarray  # (4,) float32, frame coordinates
    landmarks: np.ndarray  # (5, 2) float32, frame coordinates
    score: float  # detector confidence
    face_px: float
    quality: float  # in [0, 1]; higher is better for recognition
    patch: np.ndarray  # (h, w, 3) uint8 BGR
    patch_origin: tuple[int, int]  # (x, y) of the patch's top-left corner in the frame

    @property
    def patch_landmarks(self) -> np.ndarray:
        return self.landmarks - np.array(self.patch_origin, np.float32)


@dataclass(frozen=True)
class ContextFrame:
    """The whole frame of a track's best shot, downscaled and JPEG-encoded (kept as bytes
    so that a live track holds kilobytes, not a decoded frame). ``scale`` maps frame
    coordinates to this image's: a box in the frame times ``scale`` is the box in it."""

    frame_index: int
    jpeg: bytes
    scale: float  # this image's size / the frame's size (<= 1)
    width: int  # of the encoded image
    height: int


@dataclass(frozen=True)
class Track:
    """A finished face track: where and when one face was seen, and its best samples."""

    track_id: int  # unique within one run
    camera: str
    first_frame: int
    last_frame: int
    first_pts_s: float
    last_pts_s: float
    first_wall_time: datetime | None
    last_wall_time: datetime | None
    n_detections: int
    max_face_px: float
    best: tuple[FaceSample, ...]  # best-K samples, best first
    # where the face was: ((frame_index, x1, y1, x2, y2), ...) in frame order, first and last
    # detection always included, thinned evenly for very long tracks
    trajectory: tuple[tuple[float, float, float, float, float], ...] = ()
    context: ContextFrame | None = None  # the whole frame of ``best[0]``, when kept


@dataclass(frozen=True)
class TrackIdentity:
    """A track after recognition: its aggregated embedding and the samples it came from."""

    track: Track
    embedding: np.ndarray | None  # (D,) float32 unit vector, None if nothing was embedded
    model: str
    quality: float  # quality-weighted summary of the embedded samples


@dataclass(frozen=True)
class Match:
    """Similarity of one track to one watchlist person."""

    track_id: int
    person_id: int
    person_name: str
    score: float  # cosine similarity


@dataclass(frozen=True)
class Hit:
    """A decided identity hit: one per (track, person)."""

    track_id: int
    person_id: int
    person_name: str
    score: float
    threshold: float
    face_px: float
    quality: float
    first_frame: int
    last_frame: int
    first_pts_s: float
    last_pts_s: float
    first_wall_time: datetime | None
    last_wall_time: datetime | None
    best_shot_frame: int
    best_shot_pts_s: float
    best_shot_wall_time: datetime | None
    best_shot_bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class TrackDecision:
    """What the decision stage concluded about one track."""

    identity: TrackIdentity
    status: str  # "matched" | "unknown" | "too_small" | "too_short"
    hits: tuple[Hit, ...]
    best_score: float | None  # best similarity to anyone on the watchlist
    best_person: str | None
