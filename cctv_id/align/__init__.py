"""Face alignment: 5-point similarity warps to the chip each recogniser expects."""

from .degrade import shrink, shrink_and_restore
from .warp import ARCFACE_112, AlignSpec, align_faces, similarity_matrix, transform_points

__all__ = [
    "ARCFACE_112",
    "AlignSpec",
    "align_faces",
    "shrink",
    "shrink_and_restore",
    "similarity_matrix",
    "transform_points",
]
