"""The paper recipe (``kind: askd-paper``): A-SKD as "Teaching Where to Look" (ECCV 2022) trains it.

Owns the schema of ``pipelines/distill/askd-*.yaml`` and its fingerprint. One recipe trains
either a teacher (``teacher.checkpoint: null``; the model sees faces at ``lr_image.size``,
112 px for the paper's teacher, smaller for the paper's "no distillation" baselines) or a
student (a frozen teacher checkpoint; the student sees the face made low-resolution, the
teacher the original, and ``loss.attention`` weighs the CBAM attention similarity).

Relative paths are taken from the repository root; ``data.val_bins`` relative to
``data.root``. Unknown keys are rejected (``load_recipe`` names them in one line).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..config import REPO_ROOT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def repo_path(value: str) -> Path:
    """``value`` as a path; relative ones from the repository root."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p).resolve()


class PaperData(_Strict):
    root: str = "data/faces_webface_112x112"  # insightface train.rec/.idx, or <root>/<id>/*.jpg
    val_bins: list[str] = Field(default_factory=lambda: ["lfw.bin", "agedb_30.bin", "cfp_fp.bin"])
    num_workers: int = Field(4, ge=0)
    max_images: int | None = Field(None, ge=2)  # the first N images only (smoke runs)

    def root_path(self) -> Path:
        return repo_path(self.root)

    def val_paths(self) -> list[Path]:
        root = self.root_path()
        return [p if p.is_absolute() else root / p for p in (Path(v).expanduser() for v in self.val_bins)]


class PaperModel(_Strict):
    arch: str = "iresnet50"  # iresnet18 | iresnet34 | iresnet50 | iresnet100 (models/iresnet.py)
    cbam: bool = True
    embedding_size: int = Field(512, ge=8)
    input_size: int = Field(112, ge=16, le=224)  # the networks' input; the data is resized to it
    dropout: float = Field(0.4, ge=0.0, lt=1.0)


class PaperHead(_Strict):
    name: Literal["arcface", "cosface"] = "arcface"
    s: float = Field(32.0, gt=0)
    m: float = Field(0.5, ge=0)


class PaperTeacher(_Strict):
    checkpoint: str | None = None  # null: this recipe trains a teacher (no distillation)

    def path(self) -> Path | None:
        return None if self.checkpoint is None else repo_path(self.checkpoint)


class LRImage(_Strict):
    size: int = Field(112, ge=8, le=224)  # the face is shrunk to size x size and brought back
    blur: bool = True  # the paper's fixed Gaussian blur after the up-sampling


class PaperLoss(_Strict):
    attention: float = Field(0.0, ge=0)  # lambda of the A-SKD term (the paper: 5)
    ce: float = Field(1.0, ge=0)  # weight of the cross-entropy over the margin head's logits


class PaperOptim(_Strict):
    name: Literal["sgd"] = "sgd"
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(128, ge=2)  # global: split over the processes under torchrun
    epochs: int = Field(20, ge=1)
    total_steps: int | None = Field(None, ge=1)  # stop earlier (the authors stop at 47,000 steps)
    milestones: list[int] = Field(default_factory=lambda: [6, 11, 15, 17])  # epochs; lr x 0.1
    scheduler_step: Literal["epoch_end", "epoch_start"] = "epoch_end"
    grad_clip: float | None = Field(None, gt=0)
    warmup_steps: int = Field(0, ge=0)  # linear warm-up from lr/warmup_steps (the paper: none)

    @field_validator("milestones")
    @classmethod
    def _sorted(cls, v: list[int]) -> list[int]:
        if any(m < 1 for m in v) or v != sorted(v):
            raise ValueError("milestones must be increasing epoch numbers >= 1")
        return v


class PaperTrain(_Strict):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: Literal["off", "bf16", "fp16"] = "off"  # fp16 (GradScaler) needs CUDA; bf16 also on the CPU
    channels_last: bool = True
    deterministic: bool = False  # CUDA: deterministic kernels (slower); bit-exact resume on a GPU
    checkpoint_every_steps: int = Field(2000, ge=1)  # and at every epoch end
    log_every_steps: int = Field(50, ge=1)
    val_every_epochs: int = Field(1, ge=1)  # and after the last epoch
    threads: int = Field(0, ge=0)  # torch intra-op threads; 0 = library default


class PaperRecipe(_Strict):
    kind: Literal["askd-paper"]
    name: str
    description: str = ""
    seed: int = 0
    data: PaperData = Field(default_factory=PaperData)
    model: PaperModel = Field(default_factory=PaperModel)
    head: PaperHead = Field(default_factory=PaperHead)
    teacher: PaperTeacher = Field(default_factory=PaperTeacher)
    lr_image: LRImage = Field(default_factory=LRImage)
    loss: PaperLoss = Field(default_factory=PaperLoss)
    optim: PaperOptim = Field(default_factory=PaperOptim)
    train: PaperTrain = Field(default_factory=PaperTrain)

    @model_validator(mode="after")
    def _consistent(self) -> PaperRecipe:
        if self.lr_image.size > self.model.input_size:
            raise ValueError(f"lr_image.size {self.lr_image.size} is larger than model.input_size "
                             f"{self.model.input_size}")
        if self.loss.attention > 0 and self.teacher.checkpoint is None:
            raise ValueError("loss.attention > 0 needs teacher.checkpoint (the frozen teacher to distil from)")
        if self.teacher.checkpoint is not None and not self.model.cbam:
            raise ValueError("a student distilled by attention needs model.cbam: true (its maps are CBAM's)")
        if self.loss.attention == 0 and self.loss.ce == 0:
            raise ValueError("loss.attention and loss.ce are both 0: nothing to train")
        return self

    @property
    def is_student(self) -> bool:
        return self.teacher.checkpoint is not None

    def resolved(self) -> dict:
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        """Hash of everything that shapes the weights. Left out: description, where the data
        loader's workers and validation files are, and the ``train`` settings that change
        speed, logging or checkpoint frequency but not the arithmetic (``amp``,
        ``channels_last`` and ``deterministic`` stay in)."""
        data = self.resolved()
        data.pop("description", None)
        data["data"] = {k: v for k, v in data["data"].items() if k in ("root", "max_images")}
        data["train"] = {k: v for k, v in data["train"].items() if k in ("amp", "channels_last", "deterministic")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


RECIPE_KINDS: dict[str, type[PaperRecipe]] = {"askd-paper": PaperRecipe}
