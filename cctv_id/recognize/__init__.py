"""Face recognition: FaceEncoder backends producing Embeddings from aligned FaceCrops.

Heavy backends (dlib, onnxruntime, insightface) are imported only when built.
"""

from .aggregate import aggregate
from .base import FaceEncoder, build_encoder, l2_normalise
from .manifest import (
    Band,
    band_for,
    entry_sha256_ok,
    load_manifest,
    resolve_model_file,
    thresholds_for,
)

__all__ = [
    "Band",
    "FaceEncoder",
    "aggregate",
    "band_for",
    "build_encoder",
    "l2_normalise",
    "entry_sha256_ok",
    "load_manifest",
    "resolve_model_file",
    "thresholds_for",
]
