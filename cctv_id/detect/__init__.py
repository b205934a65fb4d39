"""Face detection: FaceDetector backends and the tiny-face (upscale + tiles) strategy.

Importing this package is cheap: backends (onnxruntime, insightface) load on first use.
"""

from .base import FaceDetector, build_base_detector, build_detector
from .tiling import DetectTimings, TiledDetector, tile_grid

__all__ = [
    "FaceDetector",
    "build_detector",
    "build_base_detector",
    "TiledDetector",
    "DetectTimings",
    "tile_grid",
]
