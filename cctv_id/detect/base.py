"""The face-detector interface and the factory that builds one from configuration.

Every backend takes ``(cfg: DetectorConfig)`` and returns ``FaceDetections`` in the
conventions of ``cctv_id.types`` (float32 xyxy boxes in the pixels of the image it was
given, five landmarks in insightface order). ``build_detector`` wraps the backend in the
tiny-face strategy (``TiledDetector``) so the rest of the pipeline sees one detector.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from ..config import DetectorConfig
from ..errors import ConfigError
from ..registry import resolve
from ..types import FaceDetections, Frame

__all__ = ["FaceDetector", "build_detector", "build_base_detector", "sha256_hex", "parse_options"]

_M = TypeVar("_M", bound=BaseModel)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_options(model: type[_M], options: dict, backend: str) -> _M:
    """``cfg.options`` validated by a backend's own pydantic model (a ConfigError if bad)."""
    try:
        return model.model_validate(options or {})
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                parts.append(f"unknown option '{loc}'")
            else:
                parts.append(f"{loc}: {err['msg']}")
        raise ConfigError(f"invalid detector.options for '{backend}': " + "; ".join(parts)) from None


def check_image(image: np.ndarray) -> np.ndarray:
    """The image as a contiguous uint8 (H, W, 3) BGR array; ValueError if it cannot be."""
    if isinstance(image, Frame):  # convenience: a Frame is accepted where an image is
        image = image.image
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"expected a (H, W, 3) BGR image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {arr.dtype}")
    return arr


class FaceDetector(abc.ABC):
    """Finds faces in uint8 BGR (H, W, 3) images of any size.

    ``name`` identifies the detector (and its strategy) in run provenance;
    ``model_sha256`` is the sha256 hex digest of the model bytes.
    """

    name: str = "detector"
    model_sha256: str = ""

    @abc.abstractmethod
    def detect_batch(
        self, images: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None
    ) -> list[FaceDetections]:
        """One ``FaceDetections`` per image, in order. Images may differ in size."""

    def detect(self, image: np.ndarray, frame_index: int = -1) -> FaceDetections:
        if isinstance(image, Frame) and frame_index == -1:
            frame_index = image.index
        return self.detect_batch([image], [frame_index])[0]

    @staticmethod
    def _indices(n: int, frame_indices: Sequence[int] | None) -> list[int]:
        if frame_indices is None:
            return [-1] * n
        out = [int(i) for i in frame_indices]
        if len(out) != n:
            raise ValueError(f"{n} images but {len(out)} frame indices")
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def build_base_detector(cfg: DetectorConfig) -> FaceDetector:
    """The bare backend named by ``cfg.backend`` (no tiling)."""
    factory = resolve("detector", cfg.backend)
    return factory(cfg)


def build_detector(cfg: DetectorConfig) -> FaceDetector:
    """The configured backend wrapped in the tiny-face strategy (upscale, tiles, merge)."""
    from .tiling import TiledDetector

    return TiledDetector(build_base_detector(cfg), cfg)
