"""Training recipes: pydantic models (unknown keys rejected) read from ``pipelines/distill/*.yaml``.

A recipe says everything that shapes a trained student: data and split, architecture and
initialisation, degradations, loss weights, optimiser and schedule, seed. The resolved recipe
is written next to every checkpoint, and its hash guards resumption: a checkpoint trained
under another recipe is refused with one clear line.

``load_recipe`` also reads the paper's iResNet recipes (``kind: askd-paper``, schema in
``paper_recipe``); a file without ``kind`` is this module's dlib-student ``Recipe``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..config import REPO_ROOT, read_yaml
from ..errors import ConfigError
from .common import validation_message

if TYPE_CHECKING:
    from .paper_recipe import PaperRecipe


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataRecipe(_Strict):
    root: str = "../shared/data/faces"  # relative paths: from the repository root
    sets: list[Literal["celeba", "yaleb", "att"]] = Field(default_factory=lambda: ["celeba", "yaleb", "att"])
    val_people: int = Field(12, ge=0)  # CelebA training people held out for validation
    variants_per_image: int = Field(8, ge=1)  # degraded chips generated per training image
    max_images_per_person: int | None = Field(None, ge=1)
    max_people: int | None = Field(None, ge=1)  # per set; smoke runs

    def root_path(self) -> Path:
        p = Path(self.root).expanduser()
        return p if p.is_absolute() else (REPO_ROOT / p).resolve()


class StudentRecipe(_Strict):
    arch: Literal["compact", "dlib"] = "compact"  # dlib: the teacher's own architecture (150 px)
    init: Literal["scratch", "teacher"] = "scratch"
    input_size: int = Field(48, ge=16, le=160)
    widths: list[int] = Field(default_factory=lambda: [32, 64, 128, 256])
    blocks: list[int] = Field(default_factory=lambda: [2, 2, 2, 1])
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    freeze_from_stage: int | None = Field(None, ge=0)  # blocks of this stage and later + head stay fixed
    # illumination normalisation of the input chips (cctv_id.recognize.input_norm), in training
    # and, recorded in the weights file, at inference
    input_norm: Literal["none", "equalize", "equalize-half"] = "none"


class DegradeRecipe(_Strict):
    min_face_px: float = Field(10.0, gt=0)
    max_face_px: float = Field(32.0, gt=0)
    large_face_prob: float = Field(0.15, ge=0, le=1)
    large_face_max_px: float = Field(80.0, gt=0)
    interpolations: list[Literal["area", "bilinear", "nearest"]] = Field(
        default_factory=lambda: ["area", "bilinear", "nearest"]
    )
    blur_prob: float = Field(0.4, ge=0, le=1)
    blur_sigma_max: float = Field(1.2, ge=0.3)
    noise_prob: float = Field(0.4, ge=0, le=1)
    noise_sigma_max: float = Field(6.0, ge=1.0)
    jpeg_prob: float = Field(0.4, ge=0, le=1)
    jpeg_quality: tuple[int, int] = (20, 85)
    h264_prob: float = Field(0.25, ge=0, le=1)
    h264_crf: tuple[int, int] = (28, 42)
    restore_prob: float = Field(0.5, ge=0, le=1)
    landmark_jitter: float = Field(0.04, ge=0)
    grey_prob: float = Field(0.1, ge=0, le=1)
    plain_prob: float = Field(0.0, ge=0, le=1)  # probes made as the evaluation protocol makes them
    relight_prob: float = Field(0.0, ge=0, le=1)
    relight_ambient: tuple[float, float] = (0.02, 0.35)
    relight_sharpness: tuple[float, float] = (3.0, 15.0)


class LossRecipe(_Strict):
    embedding: float = Field(1.0, ge=0)  # weight of 1 - cos(student(LR), teacher(HR))
    # the target: (1 - w) x the teacher's embedding of the same face at full size + w x the mean
    # of the teacher's embeddings of all that person's training faces (normalised)
    identity_target: float = Field(0.0, ge=0, le=1)
    centered: bool = True  # also 1 - cos on vectors centred on the teacher's mean embedding
    contrastive: float = Field(0.0, ge=0)  # label-free InfoNCE against the batch's teacher embeddings
    temperature: float = Field(0.1, gt=0)
    attention: float = Field(0.0, ge=0)  # lambda of the A-SKD attention-similarity term
    attention_min_size: int = Field(5, ge=1)  # stages with smaller maps are left out
    # feature hint: 1 - cos of the whole output (before the relu) of the last block of
    # feature_stage, student on the degraded chip vs teacher on the full-size face; with
    # freeze_from_stage = feature_stage + 1 it is everything the frozen layers will read
    feature: float = Field(0.0, ge=0)
    feature_stage: int = Field(2, ge=0)
    classification: float = Field(0.0, ge=0)  # CosFace on training identities (no teacher)
    cosface_scale: float = Field(30.0, gt=0)
    cosface_margin: float = Field(0.2, ge=0)


class OptimRecipe(_Strict):
    name: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    batch_size: int = Field(128, ge=2)
    steps: int = Field(3000, ge=1)
    schedule: Literal["cosine", "steps", "constant"] = "cosine"
    milestones: list[int] = Field(default_factory=list)  # for "steps": steps where lr x 0.1
    warmup_steps: int = Field(100, ge=0)
    grad_clip: float | None = Field(None, gt=0)


class TrainRecipe(_Strict):
    checkpoint_every: int = Field(250, ge=1)
    log_every: int = Field(25, ge=1)
    val_every: int = Field(500, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True  # mixed precision on CUDA (ignored on CPU)
    threads: int = Field(0, ge=0)  # torch intra-op threads; 0 = library default
    flip: bool = True  # horizontal flips (teacher targets cached for both views)


class ExportRecipe(_Strict):
    # weight-space ensemble with the teacher when the weights file is written (WiSE-FT,
    # Wortsman et al., CVPR 2022): theta = (1 - b) x student + b x teacher, tensor by tensor.
    # Needs the teacher's architecture initialised from it (student.arch dlib, init teacher).
    teacher_blend: float = Field(0.0, ge=0, lt=1)


class Recipe(_Strict):
    name: str
    description: str = ""
    seed: int = 0
    data: DataRecipe = Field(default_factory=DataRecipe)
    student: StudentRecipe = Field(default_factory=StudentRecipe)
    degrade: DegradeRecipe = Field(default_factory=DegradeRecipe)
    loss: LossRecipe = Field(default_factory=LossRecipe)
    optim: OptimRecipe = Field(default_factory=OptimRecipe)
    train: TrainRecipe = Field(default_factory=TrainRecipe)
    export: ExportRecipe = Field(default_factory=ExportRecipe)

    @model_validator(mode="after")
    def _blend_needs_teacher_init(self) -> "Recipe":
        if self.export.teacher_blend > 0 and (self.student.arch != "dlib" or self.student.init != "teacher"):
            raise ValueError("export.teacher_blend needs student.arch 'dlib' with init 'teacher' "
                             "(weights can only be blended with the network they started from)")
        return self

    def resolved(self) -> dict:
        return self.model_dump(mode="json")

    def fingerprint(self) -> str:
        """Hash of everything that shapes the weights (``--max-steps`` is not part of the
        recipe: a run stopped early that way resumes to the recipe's end). ``export`` is left
        out too: it shapes only the file written at the end, so a finished run given another
        ``export`` section resumes at its last step and writes its weights again."""
        data = self.resolved()
        data.pop("description", None)
        data.pop("export", None)
        data["train"] = {k: v for k, v in data["train"].items() if k in ("flip",)}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def load_recipe(path: str | Path) -> "Recipe | PaperRecipe":
    """Read a recipe file; its top-level ``kind`` picks the schema: absent -> the dlib-student
    ``Recipe``, ``askd-paper`` -> ``paper_recipe.PaperRecipe`` (the paper's iResNet recipe)."""
    from .paper_recipe import RECIPE_KINDS

    data = read_yaml(path)
    kind = data.get("kind")
    if kind is None:
        schema = Recipe
    elif kind in RECIPE_KINDS:
        schema = RECIPE_KINDS[kind]
    else:
        raise ConfigError(f"invalid recipe {path}: unknown kind '{kind}' (known: {', '.join(RECIPE_KINDS)}; "
                          "no kind: the dlib-student recipe)")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid recipe {path}: {validation_message(exc)}") from None
