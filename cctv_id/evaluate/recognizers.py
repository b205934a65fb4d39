"""Evaluation recognisers: which encoder embeds the gallery (high-resolution) side and which
the probe (low-resolution) side.

A name maps to two registry backends (``cctv_id.registry``, kind ``recognizer``):

| name           | gallery side  | probe side   | ``--weights`` goes to |
|----------------|---------------|--------------|-----------------------|
| ``dlib``       | dlib          | dlib         | both sides            |
| ``dlib-torch`` | dlib-torch    | dlib-torch   | both sides            |
| ``student``    | dlib-torch    | student      | the probe side        |
| ``student-only``| student      | student      | both sides            |

A backend that is not registered in this installation (the student before it ships) is a
one-line ``ModelError``. Sides built from the same backend and weights share one encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError


@dataclass(frozen=True)
class RecognizerSpec:
    name: str
    gallery_backend: str
    probe_backend: str
    weights_to: str  # "both" | "probe"
    description: str


RECOGNIZERS: dict[str, RecognizerSpec] = {
    s.name: s
    for s in (
        RecognizerSpec("dlib", "dlib", "dlib", "both", "dlib's ResNet on both sides"),
        RecognizerSpec("dlib-torch", "dlib-torch", "dlib-torch", "both",
                       "dlib's ResNet on the PyTorch engine, both sides"),
        RecognizerSpec("student", "dlib-torch", "student", "probe",
                       "gallery by the teacher (dlib's ResNet on the PyTorch engine, parity >= 0.9999 "
                       "with dlib), probes by the low-resolution student"),
        RecognizerSpec("student-only", "student", "student", "both", "the student on both sides"),
    )
}
DEFAULT_RECOGNIZER = "student"


@dataclass
class EvalRecognizer:
    """A named pair of encoders; ``gallery`` embeds full-size faces, ``probe`` degraded ones."""

    name: str
    gallery: object  # FaceEncoder
    probe: object  # FaceEncoder

    def describe(self) -> dict:
        return {
            "recognizer": self.name,
            "gallery_model": getattr(self.gallery, "name", "?"),
            "probe_model": getattr(self.probe, "name", "?"),
            "gallery_sha256": getattr(self.gallery, "model_sha256", ""),
            "probe_sha256": getattr(self.probe, "model_sha256", ""),
        }


def _build(backend: str, weights: str | None, batch_size: int):
    from ..config import RecognizerConfig
    from ..registry import names, resolve

    if backend not in names("recognizer"):
        raise ModelError(
            f"recogniser backend '{backend}' is not available in this installation "
            f"(registered: {', '.join(names('recognizer'))}); try --recognizer dlib"
        )
    cfg = RecognizerConfig(backend=backend, model_path=weights, batch_size=batch_size)
    return resolve("recognizer", backend)(cfg)


def build_recognizer(name: str, weights: str | Path | None = None, batch_size: int = 32) -> EvalRecognizer:
    """The evaluation recogniser ``name`` (see the table above); ``weights`` -> model_path."""
    spec = RECOGNIZERS.get(name)
    if spec is None:
        raise ModelError(f"unknown evaluation recogniser '{name}'; choose one of: {', '.join(RECOGNIZERS)}")
    if weights is not None and not Path(weights).expanduser().exists():
        raise ModelError(f"weights file not found: {weights}")
    w = str(Path(weights).expanduser()) if weights is not None else None
    gallery_w = w if spec.weights_to == "both" else None
    probe_w = w
    gallery = _build(spec.gallery_backend, gallery_w, batch_size)
    if spec.probe_backend == spec.gallery_backend and probe_w == gallery_w:
        probe = gallery
    else:
        probe = _build(spec.probe_backend, probe_w, batch_size)
    return EvalRecognizer(name, gallery, probe)
