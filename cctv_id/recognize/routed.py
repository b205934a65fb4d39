"""Routing by face size: the teacher for large faces, the distilled student for small ones.

Both live in the teacher's 128-d embedding space, so one watchlist (enrolled by the teacher
from full-size photos) serves both: ``RoutedEncoder.name`` is the teacher's. A whole track is
embedded by one recogniser, chosen by the face size the decision stage will use
(``decide.representative_face_px``), so the threshold of its face-size band always comes from
the calibration of the recogniser that embedded it: ``threshold_bands`` takes the student's
bands below ``below_px`` and the teacher's from there on (``below_px`` must be a band edge).
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import ConfigError
from .base import FaceEncoder


class RoutedEncoder(FaceEncoder):
    def __init__(self, large: FaceEncoder, small: FaceEncoder, below_px: float) -> None:
        if large.dim != small.dim:
            raise ConfigError(f"small-face recogniser {small.name} ({small.dim}-d) does not share the "
                              f"embedding space of {large.name} ({large.dim}-d)")
        self.large, self.small, self.below_px = large, small, float(below_px)
        self.name = large.name
        self.dim = large.dim
        self.align_spec = large.align_spec
        self.batch_size = large.batch_size
        digest = hashlib.sha256(f"{large.model_sha256}|{small.model_sha256}|{self.below_px:g}".encode())
        self.model_sha256 = digest.hexdigest()
        self.component_sha256s = {"recognizer": large.model_sha256, "recognizer_small": small.model_sha256}

    def encoder_for(self, face_px: float) -> FaceEncoder:
        return self.small if face_px < self.below_px else self.large

    def _forward(self, chips: np.ndarray) -> np.ndarray:  # photos and other large faces
        return self.large._forward(chips)

    def threshold_bands(self, fmr: float):
        from .manifest import thresholds_for

        large = thresholds_for(self.large.name, fmr)
        small = thresholds_for(self.small.name, fmr)
        edges = {b.min_px for b in large} | {b.max_px for b in large}
        if self.below_px not in edges:
            raise ConfigError(f"recognizer.small_faces.below_px must be a face-size band edge "
                              f"({', '.join(f'{e:g}' for e in sorted(edges) if e != float('inf'))}), "
                              f"got {self.below_px:g}")
        return [b for b in small if b.max_px <= self.below_px] + [b for b in large if b.min_px >= self.below_px]

    def __repr__(self) -> str:
        return f"RoutedEncoder(large={self.large!r}, small={self.small!r}, below_px={self.below_px:g})"
