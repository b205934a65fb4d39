"""The distilled low-resolution student as a ``FaceEncoder`` backend (registry name "student").

Weights files are written by ``cctv_id.distill.trainer.export_student`` (format
``cctv-id-student-v1``): fp16 state_dict, architecture, chip template, normalisation (with the
illumination normalisation of the chips, ``input_norm``, applied here before the network) and
the teacher's sha256. The student's output lives in the teacher's 128-d space, so its embeddings
share the teacher's watchlist index.

By default the shipped weights named in ``weights/MANIFEST.yaml`` (``DEFAULT_STUDENT``) are
loaded, and their sha256 is checked against the manifest before anything is read.
``cfg.model_path`` may name any other weights file (a run's ``student.pt``); its name is then
``student:<first 12 hex of its sha256>`` and it has no calibrated thresholds unless the
manifest lists that sha256. ``cfg.options``: ``threads`` (torch intra-op threads).
Inference is batched under ``torch.inference_mode``; with a GPU present it runs on CUDA with
fp16 autocast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..align import AlignSpec
from ..errors import ConfigError, ModelError
from .base import FaceEncoder, file_sha256

if TYPE_CHECKING:  # pragma: no cover
    from ..config import RecognizerConfig

DEFAULT_STUDENT = "askd-student-v2"
STUDENT_FORMAT = "cctv-id-student-v1"


def _manifest_entry_for(sha: str) -> tuple[str, dict] | None:
    from .manifest import load_manifest

    for name, entry in load_manifest()["models"].items():
        if entry.get("role") == "recognizer" and entry.get("sha256") == sha:
            return name, entry
    return None


def default_weights() -> tuple[Path, str]:
    """The shipped student's file and manifest sha256 (ModelError when missing)."""
    from .manifest import model_entry, resolve_model_file

    entry = model_entry(DEFAULT_STUDENT)
    path = resolve_model_file(entry)
    if path is None:
        raise ModelError(f"manifest entry '{DEFAULT_STUDENT}' names no file")
    return path, str(entry.get("sha256"))


def load_student_module(path: Path):
    """``(torch module in eval mode, AlignSpec, payload)`` from a weights file."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same problem to the user
        raise ModelError(f"cannot read student weights {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(payload, dict) or payload.get("format") != STUDENT_FORMAT:
        raise ModelError(f"{path} is not a cctv-id student weights file (format {STUDENT_FORMAT})")
    arch = payload.get("arch")
    if arch == "compact":
        from .models.compact import CompactSpec, CompactStudent

        model = CompactStudent(CompactSpec.from_dict(payload["spec"]))
    elif arch == "dlib":
        from .models.dlib_resnet_torch import DlibResNet

        model = DlibResNet(input_size=int(payload.get("input_size", 150)))
    else:
        raise ModelError(f"{path}: unknown student architecture {arch!r}")
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit the {arch} student: {str(exc).splitlines()[0]}") from None
    a = payload["align"]
    spec = AlignSpec(int(a["size"]), np.asarray(a["template"], np.float32), a.get("border", "constant"),
                     name=f"dlib-template-{int(a['size'])}")
    return model.eval(), spec, payload


class StudentEncoder(FaceEncoder):
    dim = 128

    def __init__(self, cfg: RecognizerConfig | None = None) -> None:
        import torch

        options = dict(cfg.options) if cfg is not None else {}
        unknown = set(options) - {"threads"}
        if unknown:
            raise ConfigError(f"unknown student recognizer option(s): {', '.join(sorted(unknown))}")
        if options.get("threads"):
            torch.set_num_threads(int(options["threads"]))
        self.batch_size = int(cfg.batch_size) if cfg is not None else 64
        if cfg is not None and cfg.model_path:
            path = Path(cfg.model_path).expanduser()
            if not path.is_file():
                raise ModelError(f"student weights not found: {path}")
            sha = file_sha256(path)
            known = _manifest_entry_for(sha)
            self.name = known[0] if known else f"student:{sha[:12]}"
        else:
            path, expected = default_weights()
            if not path.is_file():
                raise ModelError(f"shipped student weights missing: {path} (reinstall cctv-id)")
            sha = file_sha256(path)
            if sha != expected:
                raise ModelError(f"student weights {path} do not match the manifest "
                                 f"(sha256 {sha[:12]}... != {expected[:12]}...); refusing to load them")
            self.name = DEFAULT_STUDENT
        self.model_path = path
        self.model_sha256 = sha
        model, self.align_spec, self.payload = load_student_module(path)
        from .input_norm import INPUT_NORMS

        self.input_norm = str(self.payload.get("input_norm", "none"))  # v1 weights name none
        if self.input_norm not in INPUT_NORMS:
            raise ModelError(f"{path}: unknown input normalisation {self.input_norm!r} "
                             f"(this cctv-id knows {', '.join(INPUT_NORMS)})")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        # channels_last is ~15-25 % faster on this CPU as well as on CUDA
        self.model = model.to(self.device).to(memory_format=torch.channels_last)

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        import torch

        from .input_norm import normalise_chips
        from .models.dlib_resnet_torch import preprocess as preprocess_bgr

        x = preprocess_bgr(normalise_chips(chips, self.input_norm)).to(self.device)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.float16):
                    out = self.model(x)
            else:
                out = self.model(x)
        return out.float().cpu().numpy()
