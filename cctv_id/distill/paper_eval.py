"""Verification of the paper trainer's iResNet checkpoints at low resolution.

Owns: reading a checkpoint written by ``paper_trainer`` back into a model (its recipe gives the
architecture), embedding faces at a given LR size (``faces112.make_lr`` on the face brought to
the model's input size, as in training; ``flip``: the embedding of the face plus that of its
mirror, mirrored before the LR is made), and insightface's verification protocol on a .bin
set (pair ``k`` = images ``2k, 2k+1``; 10 contiguous folds, each scored with the threshold
that is best on the other nine; ``evaluate.metrics`` does the counting). Modes: ``lr-lr``
(both faces at the LR size) and ``hr-lr`` (the first at full resolution, the second LR).

``IResNetEncoder`` wraps such a model as a ``FaceEncoder`` (ArcFace 112 template) so the
evaluation protocols (TinyFace) can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ModelError
from ..recognize.base import FaceEncoder, file_sha256

N_FOLDS = 10
FAR = 1e-3
MODES = ("lr-lr", "hr-lr")


def read_checkpoint(path: str | Path) -> dict:
    """A paper-trainer checkpoint (``checkpoint.pt`` or ``best.pt``) as a dict (``ModelError``)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot read checkpoint {path}: {why}") from None
    if not isinstance(ck, dict) or not isinstance(ck.get("model"), dict):
        raise ModelError(f"{path} is not a checkpoint of the paper trainer (no 'model' section)")
    return ck


def model_from_checkpoint(path: str | Path, ck: dict | None = None):
    """``(IResNet in eval mode, its recipe dict)`` from a paper-trainer checkpoint."""
    from ..recognize.models.iresnet import build_iresnet

    ck = read_checkpoint(path) if ck is None else ck
    recipe = ck.get("recipe") or {}
    m = recipe.get("model")
    if not isinstance(m, dict):
        raise ModelError(f"{path} carries no recipe (model section): not written by the paper trainer")
    model = build_iresnet(m["arch"], cbam=m["cbam"], embedding_size=m["embedding_size"],
                          input_size=m["input_size"], dropout=m["dropout"])
    try:
        model.load_state_dict(strip_module_prefix(ck["model"]))
    except RuntimeError as exc:
        raise ModelError(f"{path}: weights do not fit {m['arch']}: {str(exc).splitlines()[0]}") from None
    return model.eval(), recipe


def strip_module_prefix(state: dict) -> dict:
    """A state dict without DDP's ``module.`` prefix (checkpoints written elsewhere)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return state


def embed_faces(
    model,
    images: Sequence[np.ndarray],
    lr_size: int | None,
    *,
    blur: bool = True,
    flip: bool = True,
    device: Any = "cpu",
    batch_size: int = 256,
    amp: str = "off",
    channels_last: bool = False,
) -> np.ndarray:
    """Unit embeddings ``(N, D)`` of BGR uint8 faces, each brought to the model's input size
    and made LR at ``lr_size`` (None or >= the input size: full resolution)."""
    import torch
    import torch.nn.functional as F

    from .faces112 import make_lr, to_tensor
    from .faces112 import resize_face

    size = model.input_size
    device = torch.device(device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    out = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            chunk = np.stack([resize_face(im, size) for im in images[s:s + batch_size]])
            hr = to_tensor(chunk).to(device)
            views = [hr, hr.flip(-1)] if flip else [hr]
            total = None
            for v in views:
                x = make_lr(v, lr_size, blur) if lr_size is not None and lr_size < size else v
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(device_type=device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    e = model(x).float()
                total = e if total is None else total + e
            out.append(F.normalize(total, dim=1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.embedding_size), np.float32)


def verification_figures(scores: np.ndarray, issame: np.ndarray, n_folds: int = N_FOLDS) -> dict:
    """10-fold accuracy (threshold from the other folds) and TAR at FAR 1e-3 of pair scores."""
    from ..evaluate.metrics import kfold_accuracy, tar_at_far

    n = len(scores)
    folds = np.arange(n) * min(n_folds, n) // max(n, 1)  # contiguous folds, as insightface's KFold
    res = kfold_accuracy(scores, issame, folds)
    tar, thr = tar_at_far(scores, issame, FAR)
    return {"accuracy": res["accuracy"], "std": res["std"], "threshold_from": res["threshold_from"],
            "thresholds": res["thresholds"], "tar_at_far_1e-3": tar, "threshold_at_far_1e-3": thr,
            "n_pairs": int(n), "n_genuine": int(np.sum(issame)), "n_impostor": int(n - np.sum(issame))}


def verify_bin(
    model,
    images: Sequence[np.ndarray],
    issame: np.ndarray,
    sizes: Sequence[int],
    mode: str = "lr-lr",
    **embed_kw: Any,
) -> dict[int, dict]:
    """``{size: verification_figures}`` of one .bin set for each LR size."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    first, second = list(images[0::2]), list(images[1::2])
    hr_first = embed_faces(model, first, None, **embed_kw) if mode == "hr-lr" else None
    out: dict[int, dict] = {}
    for size in sizes:
        a = hr_first if hr_first is not None else embed_faces(model, first, size, **embed_kw)
        b = embed_faces(model, second, size, **embed_kw)
        out[int(size)] = verification_figures((a * b).sum(1), np.asarray(issame, bool))
    return out


def evaluate_bins(
    checkpoint: str | Path,
    bins: Sequence[str | Path],
    sizes: Sequence[int],
    mode: str = "lr-lr",
    flip: bool = True,
    blur: bool | None = None,
    device: str = "auto",
    batch_size: int = 256,
) -> dict:
    """``cctv-id eval bin``: every .bin at every size, for one checkpoint."""
    from .common import select_device
    from .verification_bin import load_verification_bin

    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    for b in bins:
        if not Path(b).is_file():
            raise InputError(f"verification file not found: {b}")
    bad = [s for s in sizes if not 8 <= int(s) <= 224]
    if bad or not sizes:
        raise InputError(f"sizes must be face sizes in pixels between 8 and 224, got {list(sizes)}")
    model, recipe = model_from_checkpoint(checkpoint)
    dev = select_device(device)
    model.to(dev)
    use_blur = bool(recipe.get("lr_image", {}).get("blur", True)) if blur is None else blur
    result = {"checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
              "recipe": recipe.get("name"), "arch": recipe["model"]["arch"],
              "input_size": model.input_size, "trained_lr_size": recipe.get("lr_image", {}).get("size"),
              "mode": mode, "flip": flip, "blur": use_blur, "sets": []}
    for b in bins:
        images, issame = load_verification_bin(b)
        per_size = verify_bin(model, images, issame, sizes, mode, blur=use_blur, flip=flip, device=dev,
                              batch_size=batch_size)
        result["sets"].append({"bin": str(b), "name": Path(b).stem, "n_pairs": int(len(issame)),
                               "sizes": {str(k): v for k, v in per_size.items()}})
    return result


class IResNetEncoder(FaceEncoder):
    """A paper-trainer checkpoint as a ``FaceEncoder`` on the ArcFace 112 template (scaled to
    the model's input size); chips are used as they are (no LR simulation)."""

    def __init__(self, checkpoint: str | Path, device: str = "auto", batch_size: int = 64):
        from ..align import ARCFACE_112
        from .common import select_device

        self.model, recipe = model_from_checkpoint(checkpoint)
        self.device = select_device(device)
        self.model.to(self.device)
        self.name = f"iresnet:{recipe.get('name') or Path(checkpoint).stem}"
        self.dim = self.model.embedding_size
        self.align_spec = ARCFACE_112.scaled(self.model.input_size)  # the training faces' layout
        self.model_sha256 = file_sha256(checkpoint)
        self.batch_size = batch_size

    def _forward(self, chips: np.ndarray) -> np.ndarray:
        return embed_faces(self.model, list(chips), None, flip=False, device=self.device, batch_size=len(chips))


class Validator:
    """The trainer's validation: every ``data.val_bins`` set at the recipe's LR size, lr-lr,
    flip-fused; ``run(model)`` -> ``{set name: accuracy, ..., "mean": mean}``. The files are
    checked when it is built (``InputError``) and decoded once, at the first run."""

    def __init__(self, recipe, device):
        self.paths = recipe.data.val_paths()
        missing = [str(p) for p in self.paths if not p.is_file()]
        if missing:
            raise InputError(f"validation file not found: {missing[0]}"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        self.names = [p.stem for p in self.paths]
        if len(set(self.names)) != len(self.names):
            raise InputError(f"validation files need distinct names, got {', '.join(self.names)}")
        self.size = recipe.lr_image.size
        self.blur = recipe.lr_image.blur
        self.amp = recipe.train.amp if recipe.train.amp == "bf16" else "off"
        self.channels_last = recipe.train.channels_last
        self.device = device
        self._sets: list | None = None

    def run(self, model) -> dict[str, float]:
        from .verification_bin import load_verification_bin

        if self._sets is None:
            self._sets = [load_verification_bin(p) for p in self.paths]
        res = {}
        for name, (images, issame) in zip(self.names, self._sets):
            figs = verify_bin(model, images, issame, [self.size], "lr-lr", blur=self.blur, flip=True,
                              device=self.device, amp=self.amp, channels_last=self.channels_last)
            res[name] = figs[self.size]["accuracy"]
        if res:
            res["mean"] = float(np.mean(list(res.values())))
        return res
