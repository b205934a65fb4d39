"""dlib's ResNet v1 recogniser run by PyTorch (``DlibResNet``): same model, another engine.

It shares ``name``, ``model_sha256`` and ``align_spec`` with ``DlibResNetEncoder``, so its
embeddings go into the same index and are judged by the same thresholds (parity with dlib:
cosine >= 0.9999, see tests/unit/recognize/test_dlib_torch.py). Batched, channels_last, on
CUDA with fp16 autocast when a GPU is present.

``cfg.options``: ``threads`` (int: torch's CPU threads, a process-wide setting), ``device``
("auto" (default), "cpu", "cuda", "cuda:N"), ``fp16`` (bool, default true: autocast on CUDA;
never on the CPU).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, ModelError
from .base import FaceEncoder
from .dlib_resnet import DLIB_150, MODEL_FILE, MODEL_NAME, default_model_path

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RecognizerConfig

_OPTIONS = {"threads", "device", "fp16"}


def _options(options: dict[str, Any]) -> tuple[int | None, str, bool]:
    unknown = set(options) - _OPTIONS
    if unknown:
        raise ConfigError(f"unknown dlib-torch recognizer option(s): {', '.join(sorted(unknown))}")
    threads = options.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"dlib-torch option threads must be a positive integer, got {threads!r}")
    device = str(options.get("device", "auto"))
    if device != "auto" and device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"dlib-torch option device must be auto, cpu or cuda[:N], got {device!r}")
    fp16 = options.get("fp16", True)
    if not isinstance(fp16, bool):
        raise ConfigError(f"dlib-torch option fp16 must be true or false, got {fp16!r}")
    return threads, device, fp16


class DlibTorchEncoder(FaceEncoder):
    """dlib_face_recognition_resnet_model_v1 on 150 px ``DLIB_150`` chips, run by PyTorch."""

    name = MODEL_NAME
    dim = 128
    align_spec = DLIB_150

    def __init__(self, cfg: RecognizerConfig | None = None) -> None:
        threads, device, fp16 = _options(dict(cfg.options) if cfg is not None else {})
        self.batch_size = int(cfg.batch_size) if cfg is not None else 16
        path = Path(cfg.model_path).expanduser() if cfg is not None and cfg.model_path else default_model_path()
        if path.is_dir():
            path = path / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"dlib recogniser weights not found: {path}")
        try:
            import torch

            from .models.dlib_resnet_torch import load_teacher
        except ImportError as exc:  # pragma: no cover
            raise ModelError(f"the dlib-torch recognizer needs PyTorch: {exc}") from exc
        if threads is not None:
            torch.set_num_threads(threads)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"dlib-torch device {device!r} requested but CUDA is not available")
        self.device = torch.device(device)
        self.fp16 = fp16 and self.device.type == "cuda"
        model = load_teacher(path)
        self.model_path = path
        self.model_sha256 = str(model.dat_sha256)
        self._model = model.to(self.device, memory_format=torch.channels_last)

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        import torch

        from .models.dlib_resnet_torch import preprocess

        with torch.inference_mode():
            x = preprocess(chips, device=self.device, memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
                out = self._model(x)
            return out.float().cpu().numpy()
