"""The recogniser interface: aligned chips in, L2-normalised embeddings out."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..align import AlignSpec, align_faces
from ..types import Embeddings, FaceCrops

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RecognizerConfig


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (float32); all-zero rows stay zero."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.maximum(norms, eps)).astype(np.float32)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class FaceEncoder(ABC):
    """A face recogniser. Subclasses set the four attributes and implement ``_forward``.

    ``embed`` takes chips already aligned with ``align_spec`` (uint8 BGR, size x size) and
    returns unit-length float32 descriptors; ``embed_faces`` aligns first.
    """

    name: str
    dim: int
    align_spec: AlignSpec
    model_sha256: str
    batch_size: int = 16

    @abstractmethod
    def _forward(self, chips: np.ndarray) -> np.ndarray:
        """Raw descriptors ``(n, dim)`` for ``(n, S, S, 3)`` uint8 BGR chips, n <= batch_size."""

    def embed(self, crops: FaceCrops) -> Embeddings:
        return self.embed_chips(crops.images)

    def embed_chips(self, chips: np.ndarray) -> Embeddings:
        """Embeddings of aligned chips ``(N, S, S, 3)`` uint8 BGR."""
        chips = np.asarray(chips)
        size = self.align_spec.size
        if len(chips) == 0:
            return Embeddings(np.zeros((0, self.dim), np.float32), self.name)
        if chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
            raise ValueError(
                f"{self.name} expects aligned chips of shape (N, {size}, {size}, 3), got {chips.shape}"
            )
        if chips.dtype != np.uint8:
            raise ValueError(f"{self.name} expects uint8 chips, got {chips.dtype}")
        out = []
        for start in range(0, len(chips), max(1, int(self.batch_size))):
            out.append(np.asarray(self._forward(chips[start : start + self.batch_size]), np.float32))
        vectors = l2_normalise(np.concatenate(out, axis=0).reshape(len(chips), -1))
        return Embeddings(vectors, self.name)

    def align(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """Chips ``(N, S, S, 3)`` for ``(N, 5, 2)`` landmarks (types.py order) in ``image``."""
        return align_faces(image, landmarks, self.align_spec)

    def embed_faces(self, image: np.ndarray, landmarks: np.ndarray) -> Embeddings:
        """Align the faces at ``landmarks`` in ``image`` (uint8 BGR) and embed them."""
        return self.embed_chips(self.align(image, landmarks))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, chip={self.align_spec.size})"


def build_encoder(cfg: RecognizerConfig) -> FaceEncoder:
    """The recogniser named by ``cfg.backend`` (see ``cctv_id.registry``), built from ``cfg``."""
    from ..registry import resolve

    factory = resolve("recognizer", cfg.backend)
    return factory(cfg)


def build_small_face_encoder(cfg: RecognizerConfig) -> FaceEncoder:
    """The recogniser ``cfg`` names, routed to ``cfg.small_faces`` for small faces when that
    is enabled (``recognize.routed.RoutedEncoder``)."""
    large = build_encoder(cfg)
    small_cfg = cfg.small_faces
    if small_cfg is None or not small_cfg.enabled:
        return large
    from ..config import RecognizerConfig as _Cfg
    from .routed import RoutedEncoder

    small = build_encoder(_Cfg(backend=small_cfg.backend, model_path=small_cfg.model_path,
                               batch_size=small_cfg.batch_size, options=small_cfg.options,
                               small_faces=None))
    return RoutedEncoder(large, small, small_cfg.below_px)
