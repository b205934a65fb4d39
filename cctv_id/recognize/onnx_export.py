"""Export the student to ONNX and prove that onnxruntime gives the same embeddings as torch.

The exported graph takes the normalised float input ``(N, 3, S, S)`` (see
``models.dlib_resnet_torch.preprocess``: RGB, (pixel - dlib mean) / 256) and returns the raw
128-d embedding (normalise it before comparing); the batch dimension is dynamic. A student
whose weights name an illumination normalisation (``input_norm``, see ``input_norm``) expects
chips already normalised so: the report names it, and the parity check applies it. Parity is
checked on real chips when given, else on a fixed random batch.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError


def export_student_onnx(weights: Path | None, out: Path, chips: np.ndarray | None = None,
                        opset: int = 17) -> dict:
    """Write ``out`` and return parity figures ``{max_abs_diff, min_cosine, n, input_size}``."""
    import torch

    from ..config import RecognizerConfig
    from .input_norm import normalise_chips
    from .models.dlib_resnet_torch import preprocess as preprocess_bgr
    from .student import StudentEncoder

    out = Path(out)
    if out.exists() and out.is_dir():
        raise InputError(f"{out} is a folder; give the .onnx file to write")
    encoder = StudentEncoder(RecognizerConfig(backend="student", model_path=str(weights) if weights else None,
                                              small_faces=None))
    model = encoder.model.float().cpu().eval()
    size = encoder.align_spec.size
    example = torch.zeros(1, 3, size, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, str(tmp), input_names=["input"], output_names=["embedding"],
                          dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    tmp.replace(out)
    if chips is None:
        rng = np.random.default_rng(0)
        chips = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
    x = preprocess_bgr(normalise_chips(chips, encoder.input_norm))
    with torch.inference_mode():
        ref = model(x).numpy()
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover
        raise ModelError(f"onnxruntime is not installed: {exc}") from None
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    a = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    b = got / np.linalg.norm(got, axis=1, keepdims=True)
    return {
        "onnx": str(out),
        "model": encoder.name,
        "model_sha256": encoder.model_sha256,
        "input_size": size,
        "input_norm": encoder.input_norm,
        "n": int(len(chips)),
        "max_abs_diff": float(np.abs(ref - got).max()),
        "min_cosine": float((a * b).sum(1).min()),
    }
