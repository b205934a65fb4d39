"""User-supplied ArcFace-style recognition ONNX, loaded through insightface's own model classes.

``cfg.model_path`` is either an ``.onnx`` file or a model-pack folder:
- a folder with an insightface V2 ``manifest.json`` is loaded with
  ``get_model(folder, model_task="recognition")`` (the manifest's preprocessing and sha256
  are honoured by insightface);
- any other folder: its ``*.onnx`` files (or ``cfg.options["file"]``) are routed by
  insightface's ``get_model`` and the first recognition model (``ArcFaceONNX``) is used.
Nothing is ever downloaded. Chips are aligned with the ArcFace 112 template, scaled to the
model's input size.

``cfg.options``: ``file`` (ONNX file name inside the folder), ``name`` (model name written
into Embeddings; default ``insightface-<file stem>``), ``providers`` (onnxruntime providers;
default CPU only).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..align import ARCFACE_112, AlignSpec
from ..errors import ConfigError, ModelError
from .base import FaceEncoder, file_sha256

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RecognizerConfig

_OPTIONS = {"file", "name", "providers"}


def arcface_spec(size: int) -> AlignSpec:
    """The ArcFace template for a ``size`` px chip, as insightface's ``estimate_norm`` scales it."""
    if size % 112 == 0:
        return ARCFACE_112.scaled(size)
    if size % 128 == 0:
        ratio = size / 128.0
        tpl = ARCFACE_112.template * ratio + np.array([8.0 * ratio, 0.0], np.float32)
        return AlignSpec(size, tpl, border="constant", name=f"arcface-{size}")
    raise ModelError(f"unsupported recognition input size {size} (insightface needs a multiple of 112 or 128)")


def _load(path: Path, file_name: str | None, providers: list) -> object:
    from insightface.model_zoo import ArcFaceONNX, get_model
    from insightface.model_zoo.package_manifest import has_model_package_manifest

    kwargs = {"providers": providers, "download": False, "root": str(path.parent if path.is_file() else path)}
    if path.is_dir() and has_model_package_manifest(path):
        model = get_model(str(path), model_task="recognition", **kwargs)
        if not isinstance(model, ArcFaceONNX):
            raise ModelError(f"the model pack at {path} has no recognition model")
        return model
    if path.is_file():
        candidates = [path]
    else:
        candidates = [path / file_name] if file_name else sorted(path.glob("*.onnx"))
        if not candidates or not all(c.is_file() for c in candidates):
            raise ModelError(f"no recognition ONNX file in {path}")
    for onnx_file in candidates:
        model = get_model(str(onnx_file), **kwargs)
        if isinstance(model, ArcFaceONNX):
            return model
    raise ModelError(f"no ArcFace-style recognition model among {[c.name for c in candidates]} in {path}")


class InsightFaceEncoder(FaceEncoder):
    """An insightface ``ArcFaceONNX`` recogniser (e.g. ``w600k_r50.onnx`` of buffalo_l)."""

    def __init__(self, cfg: RecognizerConfig) -> None:
        options = dict(cfg.options)
        unknown = set(options) - _OPTIONS
        if unknown:
            raise ConfigError(f"unknown insightface recognizer option(s): {', '.join(sorted(unknown))}")
        if not cfg.model_path:
            raise ModelError(
                "the insightface recognizer needs recognizer.model_path: a model-pack folder or an "
                ".onnx file (nothing is downloaded)"
            )
        path = Path(cfg.model_path).expanduser()
        if not path.exists():
            raise ModelError(f"insightface model not found: {path}")
        try:
            import insightface  # noqa: F401
        except ImportError as exc:
            raise ModelError("insightface is not installed (pip install insightface)") from exc
        providers = list(options.get("providers") or ["CPUExecutionProvider"])
        try:
            model = _load(path, options.get("file"), providers)
        except ModelError:
            raise
        except Exception as exc:  # onnx/onnxruntime/insightface raise many kinds
            raise ModelError(f"cannot load insightface recognition model from {path}: {exc}") from exc
        self._model = model
        self.model_path = Path(model.model_file)
        self.model_sha256 = file_sha256(self.model_path)
        self.name = str(options.get("name") or f"insightface-{self.model_path.stem}")
        size = int(model.input_size[0])
        if model.input_size[0] != model.input_size[1]:
            raise ModelError(f"{self.model_path}: non-square input {model.input_size}")
        self.align_spec = arcface_spec(size)
        batch_dim = model.input_shape[0]
        self.batch_size = int(batch_dim) if isinstance(batch_dim, int) and batch_dim > 0 else int(cfg.batch_size)
        out_dim = model.output_shape[-1] if model.output_shape else None
        if isinstance(out_dim, int) and out_dim > 0:
            self.dim = out_dim
        else:
            self.dim = int(np.asarray(self._forward(np.zeros((1, size, size, 3), np.uint8))).shape[-1])

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        # ArcFaceONNX.get_feat takes BGR chips (it swaps to RGB and applies the model's
        # mean/std, from the pack manifest or insightface's own detection).
        feats = self._model.get_feat([np.ascontiguousarray(c) for c in chips])
        return np.asarray(feats, np.float32).reshape(len(chips), -1)
